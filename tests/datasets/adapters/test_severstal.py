"""The Severstal adapter on a tiny tree in the competition's exact layout, with train.csv in both of its formats."""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segpipe import rle
from segpipe.core.errors import InputError
from segpipe.datasets import rle_labels
from segpipe.datasets.adapters import severstal
from segpipe.datasets.base import SubmissionSpec

H, W = severstal.SHAPE
# Defects per training image: ClassId -> (rows, columns), drawn bright on dark steel.
# 0002cc93b.jpg proves the RLE order: one off-centre, non-square bar. 000a4bcdd.jpg has
# three classes that do not overlap (one reaching the last pixel of the column-major
# flattening); 0007a71bf.jpg has none, so today's train.csv does not list it.
DEFECTS = {
    "0002cc93b.jpg": {1: (slice(40, 104), slice(1000, 1240))},
    "0007a71bf.jpg": {},
    "000a4bcdd.jpg": {1: (slice(0, 32), slice(0, 64)), 3: (slice(96, 200), slice(304, 336)),
                      4: (slice(200, 256), slice(1504, 1600))},
    "0014fce06.jpg": {2: (slice(8, 24), slice(8, 1592))},
}
TEST = ["ff6e35e0a.jpg", "0000f269f.jpg", "a1b2c3d4e.jpg"]  # sample order: deliberately not sorted
FORMATS = ("new", "original")


def _kaggle_rle(mask: np.ndarray) -> str:
    """The encoder of the competition's public kernels (`mask2rle`): column-major, 1-indexed."""
    pixels = np.concatenate([[0], mask.T.flatten(), [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


def _class_mask(image_id: str, class_id: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    if class_id in DEFECTS[image_id]:
        mask[DEFECTS[image_id][class_id]] = 1
    return mask


def _expected(image_id: str) -> np.ndarray:
    """The bit-packed mask: bit k for ClassId k + 1."""
    return sum((_class_mask(image_id, k) << (k - 1) for k in range(1, 5)), np.zeros((H, W), np.uint8))


def _steel_jpeg(path: Path, bright: np.ndarray, seed: int) -> None:
    """Dark noisy steel, 230 where `bright`; grayscale saved as a 3-channel JPEG, as the competition's are."""
    gray = np.random.default_rng(seed).integers(20, 40, (H, W), dtype=np.uint8)
    gray[bright != 0] = 230
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.repeat(gray[..., None], 3, axis=2)).save(path, quality=95)


def _train_csv(form: str) -> str:
    if form == "new":  # one row per non-empty (image, class), sorted as Kaggle's are
        rows = [f"{i},{k},{_kaggle_rle(_class_mask(i, k))}" for i in DEFECTS for k in sorted(DEFECTS[i])]
        return "ImageId,ClassId,EncodedPixels\n" + "".join(r + "\n" for r in rows)
    rows = [f"{i}_{k},{_kaggle_rle(_class_mask(i, k)) if k in DEFECTS[i] else ''}"
            for i in DEFECTS for k in range(1, 5)]  # four rows per image, empty when none
    return "ImageId_ClassId,EncodedPixels\n" + "".join(r + "\n" for r in rows)


def _sample(form: str) -> str:
    if form == "new":
        return "ImageId,EncodedPixels,ClassId\n" + "".join(f"{i},1 409600,0\n" for i in TEST)
    return "ImageId_ClassId,EncodedPixels\n" + "".join(f"{i}_{k},1 1\n" for i in TEST for k in range(1, 5))


def _build(root: Path, form: str) -> Path:
    for n, image_id in enumerate(DEFECTS):
        _steel_jpeg(root / "train_images" / image_id, _expected(image_id), seed=n)
    for n, image_id in enumerate(TEST):
        _steel_jpeg(root / "test_images" / image_id, np.zeros((H, W)), seed=100 + n)
    (root / "train.csv").write_text(_train_csv(form))
    (root / "sample_submission.csv").write_text(_sample(form))
    return root


@pytest.fixture(params=FORMATS)
def form(request) -> str:
    return request.param


@pytest.fixture
def root(tmp_path: Path, form: str) -> Path:
    return _build(tmp_path / "severstal", form)


def _masks(competition) -> list[np.ndarray]:
    return [competition.read_mask(key) for key in competition.train["mask"]]


def test_load(root: Path, form: str) -> None:
    competition = severstal.load(root)
    train, test = competition.train, competition.test
    assert list(train.columns) == ["id", "group", "image", "mask"]
    assert train["id"].tolist() == sorted(DEFECTS) and train["group"].tolist() == sorted(DEFECTS)
    assert train["image"].tolist() == [root / "train_images" / i for i in sorted(DEFECTS)]
    assert [rle_labels.mask_file(key) for key in train["mask"]] == [str(root / "train.csv")] * len(DEFECTS)
    assert test["id"].tolist() == TEST and test["image"].tolist() == [root / "test_images" / i for i in TEST]
    assert competition.classes == ("defect1", "defect2", "defect3", "defect4")
    assert competition.labels.kind == "multilabel"
    common = dict(rle_column="EncodedPixels", rle_order="F", sample_submission=root / "sample_submission.csv",
                  competition="severstal-steel-defect-detection", labels=("1", "2", "3", "4"), code_competition=True)
    if form == "new":
        assert competition.submission == SubmissionSpec("ImageId", **common, class_column="ClassId")
        assert competition.submission.header() == ["ImageId", "EncodedPixels", "ClassId"]
    else:
        assert competition.submission == SubmissionSpec("ImageId_ClassId", **common, id_format="{id}_{label}")
        assert competition.submission.header() == ["ImageId_ClassId", "EncodedPixels"]
    image, original = competition.read_image(train["image"][0])
    assert image.shape == (H, W, 1) and image.dtype == np.uint8 and original == (H, W)
    reduced, original = competition.read_image(train["image"][0], at_least=(128, 800))
    assert reduced.shape == (128, 800, 1) and original == (H, W)  # a 1/2-scale DCT decode


def test_the_mask_reader_pickles_without_the_table(root: Path) -> None:
    """Prepare's pool pickles the reader with every chunk of rows: it must carry the key, not train.csv."""
    competition = severstal.load(root)
    pickled = pickle.dumps(competition.read_mask)
    assert len(pickled) < 1000
    key = competition.train["mask"][2]
    np.testing.assert_array_equal(pickle.loads(pickled)(str(key)), _expected("000a4bcdd.jpg"))


def test_rle_order_is_proven_on_the_image(root: Path) -> None:
    """The mask decoded from train.csv covers exactly the image's bright pixels; row-major would not."""
    competition = severstal.load(root)
    for image_file, key, image_id in zip(competition.train["image"], competition.train["mask"],
                                         competition.train["id"]):
        bright = competition.read_image(image_file)[0][..., 0] > 128
        mask = competition.read_mask(key)
        assert mask.shape == (H, W) and mask.dtype == np.uint8
        np.testing.assert_array_equal(mask != 0, bright, err_msg=image_id)
    proof = "0002cc93b.jpg"
    bright = competition.read_image(root / "train_images" / proof)[0][..., 0] > 128
    written = _kaggle_rle(_class_mask(proof, 1))
    assert np.array_equal(rle.decode(written, (H, W), "F"), bright)
    assert bright.sum() and not np.array_equal(rle.decode(written, (H, W), "C"), bright)


def test_both_train_csv_formats_give_the_same_masks(tmp_path: Path) -> None:
    new, original = (severstal.load(_build(tmp_path / form, form)) for form in FORMATS)
    assert new.train["id"].tolist() == original.train["id"].tolist()
    for a, b, image_id in zip(_masks(new), _masks(original), new.train["id"]):
        np.testing.assert_array_equal(a, b, err_msg=image_id)
        np.testing.assert_array_equal(a, _expected(image_id), err_msg=image_id)


def test_multi_class_image_sets_each_class_bit(root: Path) -> None:
    competition = severstal.load(root)
    masks = dict(zip(competition.train["id"], _masks(competition)))
    mask = masks["000a4bcdd.jpg"]
    for k, bit in ((1, 1), (3, 4), (4, 8)):
        np.testing.assert_array_equal(mask & bit != 0, _class_mask("000a4bcdd.jpg", k) != 0)
    assert not (mask & 2).any() and set(np.unique(mask)) == {0, 1, 4, 8}
    assert mask[H - 1, W - 1] == 8  # the run reaching the flattening's last pixel
    assert set(np.unique(masks["0014fce06.jpg"])) == {0, 2}
    assert not masks["0007a71bf.jpg"].any()  # no defect (and no row at all in today's format)


def test_reads_the_competition_zip_in_place(tmp_path: Path, form: str) -> None:
    folder = _build(tmp_path / "files", form)
    archive = tmp_path / "severstal-steel-defect-detection.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*")):
            out.write(path, path.relative_to(folder))
    competition = severstal.load(archive)
    assert rle_labels.mask_file(competition.train["mask"][0]) == f"{archive}!train.csv"
    for mask, image_id in zip(_masks(competition), competition.train["id"]):
        np.testing.assert_array_equal(mask, _expected(image_id), err_msg=image_id)
    assert competition.read_image(competition.test["image"][0])[0].shape == (H, W, 1)


def _write_row(root: Path, form: str, image_id: str, class_id: str, encoded: str) -> None:
    """Add the row to train.csv; in the original format, replace the pair's row if it has one."""
    if form == "new":
        row, pair = f"{image_id},{class_id},{encoded}", None
    else:
        row, pair = f"{image_id}_{class_id},{encoded}", f"{image_id}_{class_id},"
    lines = (root / "train.csv").read_text().splitlines()
    kept = [line for line in lines if pair is None or not line.startswith(pair)]
    (root / "train.csv").write_text("\n".join([*kept, row]) + "\n")


@pytest.mark.parametrize("image_id, class_id, encoded, problem", [
    ("0007a71bf.jpg", "5", "1 3", "class '5', which is not one of 1, 2, 3, 4"),
    ("0007a71bf.jpg", "0", "1 3", "class '0'"),
    ("0007a71bf.jpg", "2", "9 3 2 1", "class 2: malformed RLE: RLE run 2 '2 1': start 2 is not after"),
    ("0007a71bf.jpg", "3", "12 x", "class 3: malformed RLE: RLE token 'x'"),
    ("0007a71bf.jpg", "4", "409600 2", "class 4: malformed RLE: .* runs past the end of the mask \\(409600 pixels\\)"),
    ("deadbeef0.jpg", "1", "1 3", "rows for images not in .*train_images \\(1\\)"),
])
def test_bad_train_csv_names_the_file_and_the_id(root: Path, form: str, image_id: str, class_id: str, encoded: str,
                                                 problem: str) -> None:
    _write_row(root, form, image_id, class_id, encoded)
    with pytest.raises(InputError, match=rf"{re.escape(str(root / 'train.csv'))}: .*{re.escape(image_id)}"):
        severstal.load(root)
    with pytest.raises(InputError, match=problem):
        severstal.load(root)


def test_bad_train_csv_layout_names_the_file(root: Path, form: str) -> None:
    with open(root / "train.csv", "a") as csv:  # a class listed twice
        csv.write("0014fce06.jpg,2,1 3\n" if form == "new" else "0014fce06.jpg_2,1 3\n")
    with pytest.raises(InputError, match=r"train\.csv: image 0014fce06\.jpg lists class 2 twice"):
        severstal.load(root)
    (root / "train.csv").write_text("ImageId,EncodedPixels\n")
    with pytest.raises(InputError, match=r"train\.csv: expected the columns ImageId,ClassId,EncodedPixels"):
        severstal.load(root)
    (root / "train.csv").write_text("ImageId_ClassId,EncodedPixels\n0002cc93b.jpg,1 3\n")
    with pytest.raises(InputError, match=r"train\.csv: ImageId_ClassId '0002cc93b\.jpg' is not <ImageId>_<ClassId>"):
        severstal.load(root)


def test_test_images_must_match_the_sample(root: Path) -> None:
    _steel_jpeg(root / "test_images" / "0123456ab.jpg", np.zeros((H, W)), seed=0)
    with pytest.raises(InputError, match=r"sample_submission\.csv disagrees .*not in the sample: 0123456ab\.jpg"):
        severstal.load(root)
    (root / "test_images" / "0123456ab.jpg").unlink()
    (root / "test_images" / TEST[1]).unlink()
    with pytest.raises(InputError, match=rf"ids with no image in .*test_images: {re.escape(TEST[1])}"):
        severstal.load(root)


def test_an_edited_train_csv_is_parsed_again(root: Path, form: str) -> None:
    competition = severstal.load(root)
    key = competition.train["mask"][1]  # 0007a71bf.jpg: no defect yet
    assert not competition.read_mask(key).any()
    _write_row(root, form, "0007a71bf.jpg", "2", "1 3 300 2")
    os.utime(root / "train.csv", ns=(1, 1))  # whatever the clock's resolution
    assert np.argwhere(competition.read_mask(key)).tolist() == [[0, 0], [1, 0], [2, 0], [43, 1], [44, 1]]
    assert set(np.unique(competition.read_mask(key))) == {0, 2}


def _checksums(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_source_is_only_read(root: Path) -> None:
    before = _checksums(root)
    competition = severstal.load(root)
    _masks(competition)
    for image in [*competition.train["image"], *competition.test["image"]]:
        competition.read_image(image, at_least=(128, 800))
    assert _checksums(root) == before  # not one file added, removed or changed


@pytest.mark.parametrize("form", FORMATS)
def test_dvc_exp_run_writes_the_competitions_submission(tmp_path: Path, form: str) -> None:
    """`dvc exp run -S base.dataset=severstal -S severstal.source=...`: a row per (image, class), as Kaggle wants it."""
    from dvc_repo import make_repo, run

    source = _build(tmp_path / "severstal", form)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.rglob("*") if p.is_file()}
    repo = make_repo(tmp_path / "repo", {})
    run(["dvc", "exp", "run", "-S", "base.dataset=severstal", "-S", f"severstal.source={source}"], repo)
    text = gzip.decompress((repo / "submissions/submit.csv.gz").read_bytes()).decode()
    rows = [line.split(",") for line in text.splitlines()]
    if form == "new":
        assert rows[0] == ["ImageId", "EncodedPixels", "ClassId"]
        assert [(r[0], r[2]) for r in rows[1:]] == [(i, str(k)) for i in TEST for k in range(1, 5)]
    else:
        assert rows[0] == ["ImageId_ClassId", "EncodedPixels"]
        assert [r[0] for r in rows[1:]] == [f"{i}_{k}" for i in TEST for k in range(1, 5)]
    for row in rows[1:]:
        rle.validate(row[1], H * W)  # on the 256 x 1600 original
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.rglob("*") if p.is_file()} == before
