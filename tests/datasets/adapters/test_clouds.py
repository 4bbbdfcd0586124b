"""The Understanding Clouds adapter on a tiny tree in the competition's exact layout: four overlapping
patterns, labels at 1400 x 2100, the submission at 350 x 525."""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from segpipe import rle
from segpipe.cache.images import resize_labels
from segpipe.core.errors import InputError
from segpipe.datasets import rle_labels
from segpipe.datasets.adapters import clouds
from segpipe.datasets.base import SubmissionSpec
from segpipe.evaluation.holdout import score_holdout
from segpipe.submission.submit import gzip_member

H, W = clouds.SHAPE
LABELS = clouds.CLASSES
# Patterns per training image: label -> (rows, columns). Every image has at least one, as in the
# competition; 002be4f.jpg's Fish and Sugar overlap; 0011165.jpg's one off-centre, non-square Fish
# proves the RLE order.
PATTERNS = {
    "0011165.jpg": {"Fish": (slice(200, 500), slice(1300, 1900))},
    "002be4f.jpg": {"Fish": (slice(0, 700), slice(0, 900)), "Sugar": (slice(400, 1400), slice(600, 2100))},
    "0031ae9.jpg": {"Gravel": (slice(700, 1100), slice(100, 700))},
    "0035239.jpg": {"Flower": (slice(100, 1300), slice(1000, 2000)), "Gravel": (slice(1200, 1400), slice(0, 300))},
}
TEST = ["f9b4e4a.jpg", "002f507.jpg", "0a1b2c3.jpg"]  # sample order: deliberately not sorted


def _kaggle_rle(mask: np.ndarray) -> str:
    """The competition kernels' `mask2rle`: column-major (`img.T.flatten()`), 1-indexed."""
    pixels = np.concatenate([[0], mask.T.flatten(), [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


def _pattern(image_id: str, label: str) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    if label in PATTERNS[image_id]:
        mask[PATTERNS[image_id][label]] = 1
    return mask


def _expected(image_id: str) -> np.ndarray:
    return sum((_pattern(image_id, label) << k for k, label in enumerate(LABELS)), np.zeros((H, W), np.uint8))


def _satellite_jpeg(path: Path, bright: np.ndarray, seed: int) -> None:
    """Dark noisy sea, white cloud where `bright`, RGB as the competition's are."""
    rgb = np.random.default_rng(seed).integers(10, 40, (H, W, 3), dtype=np.uint8)
    rgb[bright != 0] = 235
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=95)


def _build(root: Path) -> Path:
    for n, image_id in enumerate(PATTERNS):
        _satellite_jpeg(root / "train_images" / image_id, _expected(image_id), seed=n)
    for n, image_id in enumerate(TEST):
        _satellite_jpeg(root / "test_images" / image_id, np.zeros((H, W)), seed=100 + n)
    rows = [f"{i}_{label},{_kaggle_rle(_pattern(i, label)) if label in PATTERNS[i] else ''}"
            for i in PATTERNS for label in LABELS]  # four rows an image, empty where the pattern is absent
    (root / "train.csv").write_text("Image_Label,EncodedPixels\n" + "".join(r + "\n" for r in rows))
    (root / "sample_submission.csv").write_text(
        "Image_Label,EncodedPixels\n" + "".join(f"{i}_{label},1 1 100 10\n" for i in TEST for label in LABELS))
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("clouds") / "understanding_cloud_organization")


@pytest.fixture
def root(built: Path, tmp_path: Path) -> Path:
    """A copy for the tests that edit the tree."""
    import shutil

    return Path(shutil.copytree(built, tmp_path / "clouds"))


def test_load(built: Path) -> None:
    competition = clouds.load(built)
    train, test = competition.train, competition.test
    assert train["id"].tolist() == sorted(PATTERNS) and train["group"].tolist() == sorted(PATTERNS)
    assert [rle_labels.mask_file(key) for key in train["mask"]] == [str(built / "train.csv")] * len(PATTERNS)
    assert test["id"].tolist() == TEST and test["image"].tolist() == [built / "test_images" / i for i in TEST]
    assert competition.classes == LABELS and competition.labels.kind == "multilabel"
    assert competition.submission == SubmissionSpec(
        "Image_Label", "EncodedPixels", "F", built / "sample_submission.csv", competition="understanding_cloud_organization",
        id_format="{id}_{label}", mask_size=(350, 525))
    image, original = competition.read_image(train["image"][0])
    assert image.shape == (H, W, 3) and original == (H, W)
    reduced, _ = competition.read_image(train["image"][0], at_least=(350, 525))
    assert reduced.shape == (350, 525, 3)  # a 1/4-scale DCT decode


def test_rle_order_is_proven_on_the_image_and_patterns_overlap(built: Path) -> None:
    competition = clouds.load(built)
    for image_file, key, image_id in zip(competition.train["image"], competition.train["mask"],
                                         competition.train["id"]):
        bright = competition.read_image(image_file)[0][..., 0] > 128
        mask = competition.read_mask(key)
        np.testing.assert_array_equal(mask != 0, bright, err_msg=image_id)
        np.testing.assert_array_equal(mask, _expected(image_id), err_msg=image_id)
        assert mask.any()  # every image has a pattern
    overlap = competition.read_mask(competition.train["mask"][1])  # 002be4f.jpg
    assert (overlap == 0b1001).any()  # Fish and Sugar on one pixel
    written = _kaggle_rle(_pattern("0011165.jpg", "Fish"))
    assert not np.array_equal(rle.decode(written, (H, W), "C"), _pattern("0011165.jpg", "Fish") > 0)


def test_reads_the_competition_zip_in_place(built: Path, tmp_path: Path) -> None:
    archive = tmp_path / "understanding_cloud_organization.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(built.rglob("*")):
            out.write(path, path.relative_to(built))
    competition = clouds.load(archive)
    assert rle_labels.mask_file(competition.train["mask"][0]) == f"{archive}!train.csv"
    np.testing.assert_array_equal(competition.read_mask(competition.train["mask"][3]), _expected("0035239.jpg"))


@pytest.mark.parametrize("row, problem", [
    ("0031ae9.jpg_Cumulus,1 3", "image 0031ae9.jpg has class 'Cumulus', which is not one of Fish, Flower"),
    ("0031ae9.jpg_Fish,9 3 2 1", "image 0031ae9.jpg, class Fish: malformed RLE: RLE run 2 '2 1'"),
    ("0031ae9Fish,1 3", "Image_Label '0031ae9Fish' is not <image>.jpg_<label>"),
    ("ffffff0.jpg_Fish,1 3", "rows for images not in .*train_images \\(1\\): ffffff0.jpg"),
])
def test_bad_train_csv_names_the_file_and_the_row(root: Path, row: str, problem: str) -> None:
    lines = [line for line in (root / "train.csv").read_text().splitlines() if not line.startswith(row.split(",")[0] + ",")]
    (root / "train.csv").write_text("\n".join([*lines, row]) + "\n")
    with pytest.raises(InputError, match=rf"{re.escape(str(root / 'train.csv'))}: .*{problem}"):
        clouds.load(root)


def test_test_images_must_match_the_sample(root: Path) -> None:
    (root / "test_images" / TEST[1]).unlink()
    with pytest.raises(InputError, match=rf"sample_submission\.csv disagrees .*no image in .*test_images: "
                                         rf"{re.escape(TEST[1])}"):
        clouds.load(root)
    (root / "sample_submission.csv").write_text("ImageId,EncodedPixels\n")
    with pytest.raises(InputError, match=r"sample_submission\.csv: expected the columns Image_Label,EncodedPixels"):
        clouds.load(root)


def test_a_holdout_is_scored_at_the_submission_size(built: Path, tmp_path: Path) -> None:
    """The true masks resized to 350 x 525 as prepare resizes them: a perfect submission scores 1,
    one pattern left out loses exactly that (image, class) pair."""
    import dataclasses

    competition = clouds.load(built)
    labelled = dataclasses.replace(competition, test=competition.train)  # the training images as a holdout
    truths = [resize_labels(_expected(i), (350, 525), competition.labels) for i in competition.train.id]

    def written(drop: tuple[str, str] | None) -> Path:
        lines = ["Image_Label,EncodedPixels\n"]
        for image_id, truth in zip(competition.train.id, truths):
            for k, label in enumerate(LABELS):
                mask = (truth >> k) & 1 if (image_id, label) != drop else np.zeros_like(truth)
                lines.append(f"{image_id}_{label},{rle.encode(mask > 0, order='F')}\n")
        path = tmp_path / f"{drop}.csv.gz"
        path.write_bytes(gzip_member("".join(lines)))
        return path

    assert score_holdout(written(None), labelled)["dice"] == 1.0
    dropped = score_holdout(written(("002be4f.jpg", "Sugar")), labelled)
    assert dropped["classes"]["Sugar"]["dice"] == pytest.approx(3 / 4)  # one of four images scores 0
    assert dropped["dice"] == pytest.approx((1 + 1 + 1 + 3 / 4) / 4)


def _checksums(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_dvc_exp_run_writes_the_competitions_submission_at_its_size(built: Path, tmp_path: Path) -> None:
    """`dvc exp run -S base.dataset=clouds -S clouds.source=...`: four rows an image at 350 x 525, and the
    "top class forced on" rule searched, since every training image is labelled."""
    from dvc_repo import make_repo, run

    before = _checksums(built)
    repo = make_repo(tmp_path / "repo", {})
    run(["dvc", "exp", "run", "-S", "base.dataset=clouds", "-S", f"clouds.source={built}"], repo)
    text = gzip.decompress((repo / "submissions/submit.csv.gz").read_bytes()).decode()
    rows = [line.split(",") for line in text.splitlines()]
    assert rows[0] == ["Image_Label", "EncodedPixels"]
    assert [r[0] for r in rows[1:]] == [f"{i}_{label}" for i in TEST for label in LABELS]
    for row in rows[1:]:
        rle.validate(row[1], 350 * 525)
        assert rle.decode(row[1], (350, 525), "F").shape == (350, 525)
    rules = json.loads((repo / "metrics/postprocess.json").read_text())
    cv = json.loads((repo / "metrics/cv.json").read_text())
    assert set(rules["classes"]) == set(LABELS) and rules["force_top"] == cv["force_top"]["kept"]
    assert cv["force_top"]["dice"] >= cv["force_top"]["dice_without"] or not cv["force_top"]["kept"]
    assert pd.read_csv(repo / "data/prepared/train.csv").mask_area.gt(0).all()
    # the bundle, read as a notebook reads the competition's input folder: the same file
    out = tmp_path / "submission.csv"
    done = subprocess.run([sys.executable, "-m", "segpipe.infer", "--bundle", str(repo / "bundle"), "--input",
                           str(built), "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.read_text() == text
    assert _checksums(built) == before  # the source is only read
