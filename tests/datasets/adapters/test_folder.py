"""The user's-own-folder adapter: mask rules, groups, mask encodings, copying, and prepare/submit."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from formats import dsb, union_mask
from indexing import index_then_download

from segpipe import datasets, rle
from segpipe.cache.prepare import prepare_competition
from segpipe.core.errors import InputError
from segpipe.datasets.adapters import folder
from segpipe.evaluation.postprocess import Rule
from segpipe.inference.probmaps import write_maps
from segpipe.submission.submit import write_submission

# Natural order; plain sorting would put case10 before case2.
TRAIN = ["case1_1", "case1_2", "case2_1", "case10_1", "case10_2"]
TEST = ["case3_1", "case20_1"]
RULES = {"beside": ("images/*.png", "{stem}_mask.png"), "parallel": ("images/*.png", "../masks/{stem}.png")}


def expected_mask(i: int) -> np.ndarray:
    mask = np.zeros((16, 16), bool)
    mask[2 + i, 3: 9 + i] = True  # lopsided, so row- and column-major RLE differ
    return mask


def _encoded(mask: np.ndarray, how: str) -> np.ndarray:
    """The same mask stored as {0,1}, {0,255} or an RGB drawing (red on black)."""
    if how == "rgb":
        return np.dstack([np.zeros_like(mask), np.zeros_like(mask), mask]).astype(np.uint8) * 255  # BGR
    return mask.astype(np.uint8) * (1 if how == "01" else 255)


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def make_source(base: Path, layout: str) -> Path:
    for i, stem in enumerate(TRAIN):
        _write(base / "images" / f"{stem}.png", np.full((16, 16, 3), 40 * i, np.uint8))
        where = base / "images" / f"{stem}_mask.png" if layout == "beside" else base / "masks" / f"{stem}.png"
        _write(where, _encoded(expected_mask(i), ("01", "0255", "rgb")[i % 3]))
    for stem in TEST:
        _write(base / "test" / f"{stem}.png", np.full((16, 16), 99, np.uint8))
    (base / "notes.txt").write_text("not matched, not copied")
    return base


def options(layout: str, **extra) -> dict:
    train_images, mask = RULES[layout]
    return {"train_images": train_images, "mask": mask, "test_images": "test/*.png", **extra}


@pytest.mark.parametrize("layout", RULES)
def test_both_mask_rules(tmp_path: Path, layout: str) -> None:
    source = make_source(tmp_path / "src", layout)
    competition = folder.load(source, **options(layout))
    train = competition.train
    assert train.id.tolist() == TRAIN and train.group.tolist() == TRAIN
    assert competition.test.id.tolist() == TEST
    for i, row in train.iterrows():
        assert np.array_equal(competition.read_mask(Path(row["mask"])), expected_mask(i))
        image, original = competition.read_image(Path(row.image))
        assert image.shape == (16, 16, 3) and original == (16, 16)
    spec = competition.submission
    assert (spec.id_column, spec.rle_column, spec.rle_order, spec.sample_submission) == ("id", "rle_mask", "F", None)


def test_group_regex(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src", "beside")
    train = folder.load(source, **options("beside", group_regex=r"^(case\d+)_")).train
    assert train.group.tolist() == ["case1", "case1", "case2", "case10", "case10"]
    with pytest.raises(InputError, match=r"\^\(patient.*case1_1"):
        folder.load(source, **options("beside", group_regex=r"^(patient\d+)_"))
    with pytest.raises(InputError, match="group"):
        folder.load(source, **options("beside", group_regex=r"^case\d+_"))


def test_no_test_glob_gives_an_empty_test_set(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src", "parallel")
    competition = folder.load(source, train_images="images/*.png", mask="../masks/{stem}.png", rle_order="C")
    assert competition.test.empty and list(competition.test.columns) == ["id", "image"]
    assert competition.submission.rle_order == "C"


def test_errors_name_the_file_or_setting(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src", "beside")
    (source / "images" / "case2_1_mask.png").unlink()
    with pytest.raises(InputError, match="case2_1_mask.png"):
        folder.load(source, **options("beside"))
    with pytest.raises(InputError, match="no files match 'scans/\\*.png'"):
        folder.load(source, **options("beside", train_images="scans/*.png"))
    with pytest.raises(InputError, match=r"\{id\}"):
        folder.load(source, **options("beside", mask="{id}_mask.png"))
    with pytest.raises(InputError, match="same file"):
        folder.load(source, **options("beside", mask="mask.png"))
    with pytest.raises(InputError, match="rle_order"):
        folder.load(source, **options("beside", rle_order="row-major"))


def _index(tmp_path: Path, source: Path, **extra) -> Path:
    """Run the source and download stages' indexing of `source`; the raw folder it fills."""
    return index_then_download("folder", tmp_path / "raw" / "folder", sources=tmp_path / "sources",
                               kaggle_input=tmp_path / "none", source=str(source), **extra)


@pytest.mark.parametrize("layout", RULES)
def test_download_indexes_the_matched_files_in_place(tmp_path: Path, layout: str) -> None:
    source = make_source(tmp_path / "src", layout)
    raw = _index(tmp_path, source, **options(layout))
    assert [p.name for p in raw.iterdir()] == ["manifest.csv"]  # nothing copied
    manifest = pd.read_csv(raw / "manifest.csv")
    on_disk = sorted(str(p.relative_to(source)) for p in source.rglob("*.png"))
    assert manifest.name.tolist() == on_disk  # every matched file, not notes.txt
    assert (manifest["size"] == [(source / n).stat().st_size for n in on_disk]).all()
    assert manifest.fingerprint.tolist() == [
        "blake2b:" + hashlib.blake2b((source / n).read_bytes(), digest_size=16).hexdigest() for n in on_disk]
    loaded = datasets.load("folder", raw, sources=tmp_path / "sources", kaggle_input=tmp_path / "none",
                           source=str(source), **options(layout))
    assert loaded.train.id.tolist() == TRAIN
    assert all(Path(p).is_relative_to(source) for p in loaded.train.image)  # read from the source itself


def test_a_changed_file_after_indexing_is_named(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src", "beside")
    raw = _index(tmp_path, source, **options("beside"))
    _write(source / "images" / "case1_1.png", np.full((20, 20, 3), 7, np.uint8))
    with pytest.raises(InputError, match="changed or missing since the source stage indexed them .*case1_1.png"):
        datasets.load("folder", raw, sources=tmp_path / "sources", kaggle_input=tmp_path / "none",
                      source=str(source), **options("beside"))


def test_a_full_disk_while_indexing_leaves_no_index_and_no_raw_folder(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    source = make_source(tmp_path / "src", "beside")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    with pytest.raises(InputError, match=re.escape(str(tmp_path / "raw" / "source.csv")) + r": no room to write it"):
        _index(tmp_path, source, **options("beside"))
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == []


def test_prepare_and_submit(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src", "parallel")
    competition = folder.load(source, **options("parallel", rle_order="C"))
    out = tmp_path / "prepared"
    prepare_competition(competition, out, size=(32, 32), workers=1)
    train = pd.read_csv(out / "train.csv", dtype={"id": str, "group": str})
    assert train.id.tolist() == TRAIN and (train.mask_area > 0).all()
    test_index = pd.read_csv(out / "test.csv", dtype={"id": str})
    masks = [expected_mask(i) for i in range(len(test_index))]
    write_maps(tmp_path / "probs.npz", np.stack([np.kron(m, np.ones((2, 2))) * 255 for m in masks]).astype(np.uint8))
    write_submission(tmp_path / "probs.npz", test_index, competition.submission, Rule(0.5, 0.5, 0),
                     tmp_path / "submission.csv.gz", workers=1)
    submission = pd.read_csv(tmp_path / "submission.csv.gz", dtype=str, keep_default_na=False)
    assert list(submission.columns) == ["id", "rle_mask"] and submission.id.tolist() == TEST
    for encoded, mask in zip(submission.rle_mask, masks):
        assert np.array_equal(rle.decode(encoded, (16, 16), order="C"), mask)


def test_overlapping_or_escaping_globs_are_refused(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src", "parallel")
    with pytest.raises(InputError, match="matches training files too: .*case1_1.png"):
        folder.load(source, **options("parallel", test_images="images/*.png"))
    _write(source / "test" / "case1_1.png", np.zeros((16, 16), np.uint8))
    with pytest.raises(InputError, match=r"share a file name \(ids must be unique\): .*images/case1_1.png.*test/"):
        folder.load(source, train_images="*/case1_*.png", mask="../masks/{stem}.png")
    with pytest.raises(InputError, match="outside the source folder"):
        _index(tmp_path, source / "images", train_images="*.png", mask="../masks/{stem}.png")
    assert not (tmp_path / "raw" / "folder").exists()


def test_a_folder_of_instance_masks_per_image_is_their_union(tmp_path):
    """The 2018 Data Science Bowl's layout: <id>/images/<id>.png and <id>/masks/*.png, a nucleus a file."""
    truth = dsb(tmp_path)
    competition = folder.load(tmp_path, train_images="stage1_train/*/images/*.png", mask="../masks/*.png",
                              metric="object_ap", submission_rows="instance")
    assert sorted(competition.train.id) == sorted(truth)
    for image_id, key in zip(competition.train.id, competition.train["mask"]):
        assert np.array_equal(competition.read_mask(key), union_mask(truth[image_id]))
    assert competition.submission.rows == "instance" and competition.metric == "object_ap"
    for nucleus in (tmp_path / "stage1_train" / competition.train.id[0] / "masks").iterdir():
        nucleus.unlink()
    with pytest.raises(InputError, match=r"training images without an instance mask \(1; mask rule '../masks/\*.png'\)"):
        folder.load(tmp_path, train_images="stage1_train/*/images/*.png", mask="../masks/*.png")
    with pytest.raises(InputError, match="instance masks .* for one class"):
        folder.load(tmp_path, train_images="stage1_train/*/images/*.png", mask="../masks/*.png", classes=["a"])
