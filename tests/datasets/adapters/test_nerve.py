"""The Ultrasound Nerve adapter on a tiny tree in the competition's exact layout, through prepare, folds and submit."""
from __future__ import annotations

import gzip
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from indexing import index_then_download
from PIL import Image

from segpipe import datasets, rle
from segpipe.cache import folds, prepare
from segpipe.core.errors import InputError
from segpipe.datasets.adapters import nerve
from segpipe.datasets.base import SubmissionSpec
from segpipe.evaluation.postprocess import Rule
from segpipe.inference.probmaps import write_maps
from segpipe.submission import submit

# Subjects and image numbers are not zero-padded: 10 must sort after 2, numerically.
SUBJECTS, IMAGES = [10, 2, 1], [10, 1, 2]
H, W = 21, 29
# Test ids in sample_submission.csv order (not sorted, so nothing may sort them); test/3.tif
# is 4x4 and carries the hand-worked RLE example of DATASETS.md.
TEST = {2: (H, W), 3: (4, 4), 1: (H, W), 10: (H, W)}


def _tiff(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)  # 8-bit grayscale ("L") TIFF, like the competition's


def _noise(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)


def _nerve_mask(subject: int, img: int) -> np.ndarray:
    """{0,255}; empty for image 2 of every subject (the competition has many empty masks)."""
    mask = np.zeros((H, W), np.uint8)
    if img != 2:
        mask[5:15, 4 + subject : 20] = 255
    return mask


def _build(root: Path) -> Path:
    """train/ (images and _mask.tif side by side), test/<n>.tif, train_masks.csv, sample_submission.csv."""
    rows = []
    for subject in SUBJECTS:
        for img in IMAGES:
            _tiff(root / "train" / f"{subject}_{img}.tif", _noise(H, W, seed=100 * subject + img))
            _tiff(root / "train" / f"{subject}_{img}_mask.tif", _nerve_mask(subject, img))
            rows.append(f"{subject},{img},{rle.encode(_nerve_mask(subject, img) > 0, order='F')}")
    (root / "train_masks.csv").write_text("subject,img,pixels\n" + "\n".join(rows) + "\n")
    for number, (height, width) in TEST.items():
        _tiff(root / "test" / f"{number}.tif", _noise(height, width, seed=number))
    (root / "sample_submission.csv").write_text("img,pixels\n" + "".join(f"{n},1 1\n" for n in TEST))
    return root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return _build(tmp_path / "nerve")


def test_download_takes_the_whole_competition(tmp_path: Path, monkeypatch) -> None:
    from segpipe import kaggle

    source = _build(tmp_path / "server")
    calls = []

    def fake_download(slug: str, dest: Path, files=None) -> None:
        calls.append((slug, files))
        buffer = io.BytesIO()  # the competition zip: train/, test/ and the two csvs
        with zipfile.ZipFile(buffer, "w") as archive:
            for path in sorted(source.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(source))
        dest.mkdir(parents=True, exist_ok=True)
        (dest / f"{slug}.zip").write_bytes(buffer.getvalue())  # kept zipped: members are read in place
        (dest / ".complete").touch()

    monkeypatch.setattr(kaggle, "download_competition", fake_download, raising=False)
    sources, raw = tmp_path / "sources", tmp_path / "raw" / "nerve"
    options = dict(sources=sources, kaggle_input=tmp_path / "no-kaggle-input", source=str(sources / "nerve"))
    index_then_download("nerve", raw, **options)
    assert calls == [(nerve.SLUG, None)]
    assert len(datasets.load("nerve", raw, **options).train) == len(SUBJECTS) * len(IMAGES)


def test_load(root: Path) -> None:
    competition = nerve.load(root)
    train, test = competition.train, competition.test
    assert list(train.columns) == ["id", "group", "image", "mask"]
    assert train["id"].tolist() == [f"{s}_{i}" for s in (1, 2, 10) for i in (1, 2, 10)]
    assert train["group"].tolist() == [str(s) for s in (1, 2, 10) for _ in range(3)]
    assert [m.name for m in train["mask"]] == [f"{i}_mask.tif" for i in train["id"]]
    assert test["id"].tolist() == [str(n) for n in TEST]  # bare integers, sample order
    assert [p.name for p in test["image"]] == [f"{n}.tif" for n in TEST]
    assert competition.submission == SubmissionSpec("img", "pixels", "F", root / "sample_submission.csv",
                                                    competition="ultrasound-nerve-segmentation")
    image, original = competition.read_image(train["image"][0], at_least=(32, 32))
    assert image.shape == (H, W, 1) and image.dtype == np.uint8 and original == (H, W)
    np.testing.assert_array_equal(competition.read_mask(train["mask"][0]), _nerve_mask(1, 1) > 0)


def test_prepare_folds_and_submit(root: Path, tmp_path: Path) -> None:
    competition = nerve.load(root)
    out = tmp_path / "prepared"
    prepare.prepare_competition(competition, out, size=(32, 32), workers=1)
    assert np.load(out / "train_images.npy").shape == (9, 32, 32, 1)
    index = pd.read_csv(out / "train.csv", dtype={"id": str, "group": str})
    assert ((index["mask_area"] == 0) == index["id"].str.endswith("_2")).all()
    assignment = folds.stratified_group_folds(index, n_splits=2, seed=0)
    assert (assignment.groupby("group")["fold"].nunique() == 1).all()  # a subject never straddles folds
    assert set(assignment["fold"]) == {0, 1}

    test_index = pd.read_csv(out / "test.csv", dtype={"id": str})
    assert test_index["id"].tolist() == [str(n) for n in TEST]
    assert list(zip(test_index["height"], test_index["width"])) == list(TEST.values())
    probs = np.zeros((len(TEST), 32, 32), np.uint8)
    probs[1, 8:24, 16:32] = 255  # 8x8 blocks: at 4x4, ones at rows 1-2, columns 2-3
    probs[2] = 255
    probs[3, :2, :2] = 255  # a speck, removed by min_area
    write_maps(tmp_path / "probs.npz", probs)
    written = tmp_path / "submission.csv.gz"
    submit.write_submission(tmp_path / "probs.npz", test_index, competition.submission, Rule(0.5, 0.5, 5), written,
                            workers=1)
    lines = gzip.open(written, "rt").read().splitlines()
    assert lines == ["img,pixels", "2,", "3,10 2 14 2", f"1,1 {H * W}", "10,"]


def test_hand_worked_rle_example_is_column_major(root: Path) -> None:
    probs = np.zeros((32, 32), np.uint8)
    probs[8:24, 16:32] = 200
    mask = submit.probability_to_mask(probs, 4, 4, Rule(0.5, 0.5, 0))
    assert np.argwhere(mask).tolist() == [[1, 2], [1, 3], [2, 2], [2, 3]]
    assert rle.encode(mask, order=nerve.load(root).submission.rle_order) == "10 2 14 2"


@pytest.mark.parametrize("victim, named", [
    ("train/2_10_mask.tif", "2_10_mask.tif"),  # image without mask
    ("train/2_10.tif", "2_10_mask.tif"),  # mask without image
    ("test/3.tif", "test: 3"),  # sample id without test image
])
def test_load_names_the_missing_file(root: Path, victim: str, named: str) -> None:
    (root / victim).unlink()
    with pytest.raises(InputError, match=re.escape(named)):
        nerve.load(root)


def test_load_names_an_extra_test_image_odd_names_and_an_empty_train_folder(root: Path) -> None:
    _tiff(root / "test" / "77.tif", _noise(H, W, seed=0))
    with pytest.raises(InputError, match=r"not in the sample: 77\.tif"):
        nerve.load(root)
    (root / "test" / "77.tif").unlink()
    _tiff(root / "train" / "scan.tif", _noise(H, W, seed=0))
    with pytest.raises(InputError, match=r"scan\.tif"):
        nerve.load(root)
    for path in (root / "train").iterdir():
        path.unlink()
    with pytest.raises(InputError, match=re.escape(str(root / "train"))):
        nerve.load(root)
