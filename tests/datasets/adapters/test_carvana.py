"""The Carvana adapter on a tiny tree in the competition's exact layout, through prepare, folds and submit."""
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
from segpipe.datasets import readers
from segpipe.datasets.adapters import carvana
from segpipe.datasets.base import SubmissionSpec
from segpipe.evaluation.postprocess import Rule
from segpipe.inference.probmaps import write_maps
from segpipe.submission import submit

CARS = ["0cdf5b5d0ce1", "3c6acfceb552", "fff9b3a5373f"]  # 12-hex-digit car ids, as on Kaggle
VIEWS = ["01", "02", "16"]
H, W = 24, 36
# Test ids in sample_submission.csv order: deliberately not sorted. The 4x4 image carries
# the hand-worked RLE example of DATASETS.md.
TEST = {"fff9b3a5373f_16.jpg": (H, W), "0ce66b539f52_01.jpg": (4, 4), "0ce66b539f52_02.jpg": (H, W)}


def _jpeg(path: Path, height: int, width: int, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=90)


def _car_mask(view: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[4 + view : 18, 6 : 30 - view] = 1
    return mask


def _build(root: Path) -> Path:
    """train/, train_masks/ (palette GIFs, values {0,1} as PIL reads them), test/, two csvs."""
    rows = []
    for c, car in enumerate(CARS):
        for v, view in enumerate(VIEWS):
            _jpeg(root / "train" / f"{car}_{view}.jpg", H, W, seed=10 * c + v)
            (root / "train_masks").mkdir(exist_ok=True)
            Image.fromarray(_car_mask(v)).convert("P").save(root / "train_masks" / f"{car}_{view}_mask.gif")
            rows.append(f"{car}_{view}.jpg,1 1")
    (root / "train_masks.csv").write_text("img,rle_mask\n" + "\n".join(rows) + "\n")
    for k, (name, (height, width)) in enumerate(TEST.items()):
        _jpeg(root / "test" / name, height, width, seed=100 + k)
    (root / "sample_submission.csv").write_text("img,rle_mask\n" + "".join(f"{n},1 1\n" for n in TEST))
    return root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return _build(tmp_path / "carvana")


def test_gif_masks_read_as_drawn(root: Path) -> None:
    gif = root / "train_masks" / f"{CARS[0]}_02_mask.gif"
    assert Image.open(gif).mode == "P"
    np.testing.assert_array_equal(readers.read_binary_mask(gif), _car_mask(1).astype(bool))


def test_download_asks_for_exactly_the_parts_load_reads(tmp_path: Path, monkeypatch) -> None:
    from segpipe import kaggle

    source = _build(tmp_path / "server")
    # every part of the real competition zip, each a zip of one folder or file
    parts = {f"{name}.zip": name for name in ("train", "train_masks", "test", "train_hq", "test_hq",
                                              "train_masks.csv", "sample_submission.csv", "metadata.csv")}
    (source / "train_hq").mkdir(), (source / "test_hq").mkdir()
    (source / "metadata.csv").write_text("id,year\n")
    calls = []

    def fake_download(slug: str, dest: Path, files=None) -> None:
        calls.append((slug, list(files) if files is not None else None))
        for name in files:
            buffer = io.BytesIO()  # the part as Kaggle serves it: a zip of the folder or file
            with zipfile.ZipFile(buffer, "w") as archive:
                top = source / parts[name]
                for path in [top, *sorted(top.rglob("*"))]:
                    if path.is_file():
                        archive.write(path, path.relative_to(source))
            dest.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(buffer.getvalue())  # kept zipped: members are read in place
        (dest / ".complete").touch()

    monkeypatch.setattr(kaggle, "download_competition", fake_download, raising=False)
    sources, raw = tmp_path / "sources", tmp_path / "raw" / "carvana"
    options = dict(sources=sources, kaggle_input=tmp_path / "no-kaggle-input", source=str(sources / "carvana"))
    index_then_download("carvana", raw, **options)
    assert calls == [(carvana.SLUG, ["train.zip", "train_masks.zip", "train_masks.csv.zip", "test.zip",
                                     "sample_submission.csv.zip"])]
    competition = datasets.load("carvana", raw, **options)
    assert len(competition.train) == len(CARS) * len(VIEWS)
    assert all(".zip!train/" in str(path) for path in competition.train.image)
    index_then_download("carvana", raw, **options)  # a finished download is not fetched again
    assert len(calls) == 1


def test_load(root: Path) -> None:
    competition = carvana.load(root)
    train, test = competition.train, competition.test
    assert list(train.columns) == ["id", "group", "image", "mask"]
    assert train["id"].tolist() == [f"{car}_{view}.jpg" for car in CARS for view in VIEWS]
    assert train["group"].tolist() == [car for car in CARS for _ in VIEWS]
    assert all(m.name == f"{i[:-4]}_mask.gif" and m.parent.name == "train_masks"
               for i, m in zip(train["id"], train["mask"]))
    assert test["id"].tolist() == list(TEST) and [p.name for p in test["image"]] == list(TEST)
    assert competition.submission == SubmissionSpec("img", "rle_mask", "C", root / "sample_submission.csv",
                                                    competition="carvana-image-masking-challenge")
    image, original = competition.read_image(train["image"][0], at_least=(16, 16))
    assert image.shape == (H, W, 3) and original == (H, W)


def test_full_size_jpeg_is_decoded_reduced(root: Path) -> None:
    big = root / "train" / f"{CARS[0]}_01.jpg"
    _jpeg(big, 1280, 1918, seed=0)
    image, original = carvana.load(root).read_image(big, at_least=(320, 480))
    assert image.shape == (320, 480, 3) and original == (1280, 1918)  # 1/4-scale DCT decode


def test_prepare_folds_and_submit(root: Path, tmp_path: Path) -> None:
    competition = carvana.load(root)
    out = tmp_path / "prepared"
    prepare.prepare_competition(competition, out, size=(32, 32), workers=1)
    index = pd.read_csv(out / "train.csv", dtype={"id": str, "group": str})
    assert (index["mask_area"] > 0).all() and set(zip(index["height"], index["width"])) == {(H, W)}
    assignment = folds.stratified_group_folds(index, n_splits=2, seed=0)
    assert (assignment.groupby("group")["fold"].nunique() == 1).all()  # a car never straddles folds
    assert set(assignment["fold"]) == {0, 1}

    test_index = pd.read_csv(out / "test.csv", dtype={"id": str})
    assert test_index["id"].tolist() == list(TEST)
    assert list(zip(test_index["height"], test_index["width"])) == list(TEST.values())
    probs = np.zeros((len(TEST), 32, 32), np.uint8)
    probs[0] = 255  # the whole car image
    probs[1, 8:24, 16:32] = 255  # 8x8 blocks: at 4x4, ones at rows 1-2, columns 2-3
    write_maps(tmp_path / "probs.npz", probs)
    written = tmp_path / "submission.csv.gz"
    submit.write_submission(tmp_path / "probs.npz", test_index, competition.submission, Rule(0.5, 0.5, 0), written,
                            workers=1)
    lines = gzip.open(written, "rt").read().splitlines()
    assert lines == ["img,rle_mask", f"fff9b3a5373f_16.jpg,1 {H * W}", "0ce66b539f52_01.jpg,7 2 11 2",
                     "0ce66b539f52_02.jpg,"]


def test_hand_worked_rle_example_is_row_major(root: Path) -> None:
    probs = np.zeros((32, 32), np.uint8)
    probs[8:24, 16:32] = 200
    mask = submit.probability_to_mask(probs, 4, 4, Rule(0.5, 0.5, 0))
    assert np.argwhere(mask).tolist() == [[1, 2], [1, 3], [2, 2], [2, 3]]
    assert rle.encode(mask, order=carvana.load(root).submission.rle_order) == "7 2 11 2"


@pytest.mark.parametrize("victim, named", [
    ("train_masks/3c6acfceb552_02_mask.gif", "3c6acfceb552_02_mask.gif"),  # image without mask
    ("train/3c6acfceb552_02.jpg", "3c6acfceb552_02_mask.gif"),  # mask without image
    ("test/0ce66b539f52_01.jpg", "0ce66b539f52_01.jpg"),  # sample id without test image
])
def test_load_names_the_missing_file(root: Path, victim: str, named: str) -> None:
    (root / victim).unlink()
    with pytest.raises(InputError, match=re.escape(named)):
        carvana.load(root)


def test_load_names_an_extra_test_image_and_an_empty_train_folder(root: Path) -> None:
    _jpeg(root / "test" / "aaaaaaaaaaaa_03.jpg", H, W, seed=0)
    with pytest.raises(InputError, match="aaaaaaaaaaaa_03.jpg"):
        carvana.load(root)
    (root / "test" / "aaaaaaaaaaaa_03.jpg").unlink()
    for path in [*(root / "train").iterdir(), *(root / "train_masks").iterdir()]:
        path.unlink()
    with pytest.raises(InputError, match=re.escape(str(root / "train"))):
        carvana.load(root)
