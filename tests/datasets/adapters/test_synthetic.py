"""The embedded synthetic competition: its layout, determinism, realism bounds and load()."""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from segpipe import datasets, rle
from segpipe.core.errors import InputError
from segpipe.datasets.adapters import synthetic
from segpipe.synthetic import brain
from segpipe.datasets.base import SubmissionSpec

# Eight train patients so that the share of empty slices is not at the mercy of one patient.
SIZE = dict(train_patients=8, test_patients=2, slices_per_patient=12, height=40, width=48)
SEED = 7


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "data"
    synthetic.generate(root, seed=SEED, **SIZE)
    return root


@pytest.fixture
def copy(generated: Path, tmp_path: Path) -> Path:
    """A scratch copy for the tests that break the layout on purpose."""
    return Path(shutil.copytree(generated, tmp_path / "data"))


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _natural(ids: list[str]) -> list[str]:
    return sorted(ids, key=lambda i: (i.rsplit("_", 1)[0], int(i.rsplit("_", 1)[1])))


def _stems(folder: Path, suffix: str = ".png") -> list[str]:
    return [p.name[: -len(suffix)] for p in folder.iterdir()]


def _areas(root: Path) -> dict[str, np.ndarray]:
    """Lesion area per slice, per train patient, in slice order."""
    competition = synthetic.load(root)
    return {patient: np.array([competition.read_mask(m).sum() for m in rows["mask"]])
            for patient, rows in competition.train.groupby("group", sort=False)}


def test_layout_and_headers(generated: Path) -> None:
    assert sorted(p.name for p in generated.iterdir()) == [
        "sample_submission.csv", "test", "train", "train_masks", "train_masks.csv"]
    train_ids, test_ids = _stems(generated / "train"), _stems(generated / "test")
    assert len(train_ids) == 8 * 12 and len(test_ids) == 2 * 12
    assert sorted(_stems(generated / "train_masks", "_mask.png")) == sorted(train_ids)
    for sid in train_ids + test_ids:
        assert re.fullmatch(r"p\d{4}_([1-9]|1[0-2])", sid), sid  # 1-based, not zero-padded
    image = cv2.imread(str(generated / "train" / f"{train_ids[0]}.png"), cv2.IMREAD_UNCHANGED)
    mask = cv2.imread(str(generated / "train_masks" / f"{train_ids[0]}_mask.png"),
                      cv2.IMREAD_UNCHANGED)
    assert image.shape == (40, 48, 3) and image.dtype == np.uint8
    assert mask.shape == (40, 48) and set(np.unique(mask)) <= {0, 255}

    for name in ("train_masks.csv", "sample_submission.csv"):
        assert (generated / name).read_text().splitlines()[0] == "img,rle_mask"
    masks = pd.read_csv(generated / "train_masks.csv", dtype=str, keep_default_na=False)
    assert masks["img"].tolist() == _natural(train_ids)
    sample = pd.read_csv(generated / "sample_submission.csv", dtype=str, keep_default_na=False)
    assert sorted(sample["img"]) == sorted(test_ids) and (sample["rle_mask"] == "1 1").all()


def test_same_seed_same_bytes_other_seed_differs(generated: Path, tmp_path: Path) -> None:
    synthetic.generate(tmp_path / "again", seed=SEED, **SIZE)
    synthetic.generate(tmp_path / "other", seed=SEED + 1, **SIZE)
    assert _digests(tmp_path / "again") == _digests(generated)
    assert _digests(tmp_path / "other") != _digests(generated)


def test_train_and_test_patients_disjoint(generated: Path) -> None:
    patients = {folder: {s.rsplit("_", 1)[0] for s in _stems(generated / folder)}
                for folder in ("train", "test")}
    assert len(patients["train"]) == 8 and len(patients["test"]) == 2
    assert not patients["train"] & patients["test"]


def test_about_half_the_slices_are_empty(generated: Path) -> None:
    areas = np.concatenate(list(_areas(generated).values()))
    assert 0.3 <= (areas == 0).mean() <= 0.7
    assert not ((areas > 0) & (areas < brain.MIN_LESION_PIXELS)).any()  # no specks


def test_lesions_grow_and_shrink_smoothly(generated: Path) -> None:
    for patient, areas in _areas(generated).items():
        present = np.flatnonzero(areas)
        if present.size:
            assert np.all(np.diff(present) == 1), f"{patient}: lesion run is not contiguous"
            # a run's last slice may fall under the speck threshold and vanish: allow for it
            bound = 0.5 * areas.max() + brain.MIN_LESION_PIXELS
            assert np.abs(np.diff(areas)).max() <= bound, (patient, areas)


def test_lesions_are_brightest_in_flair(generated: Path) -> None:
    competition, gain = synthetic.load(generated), np.zeros(3)
    for image_path, mask_path in zip(competition.train["image"], competition.train["mask"]):
        mask = competition.read_mask(mask_path)
        if mask.any():
            ring = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) & ~mask
            image = competition.read_image(image_path)[0].astype(float)
            gain += image[mask].mean(axis=0) - image[ring].mean(axis=0)
    assert gain[1] > 0 and gain[1] > gain[0] and gain[1] > gain[2]


def test_rle_decodes_to_the_mask_pngs(generated: Path) -> None:
    rows = pd.read_csv(generated / "train_masks.csv", dtype=str, keep_default_na=False)
    assert (rows["rle_mask"] == "").any() and (rows["rle_mask"] != "").any()
    for sid, encoded in zip(rows["img"], rows["rle_mask"]):
        png = cv2.imread(str(generated / "train_masks" / f"{sid}_mask.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(rle.decode(encoded, png.shape, order="F"), png > 0, sid)


def test_load(generated: Path) -> None:
    competition = synthetic.load(generated)
    train, test = competition.train, competition.test
    assert competition.name == "synthetic"
    assert list(train.columns) == ["id", "group", "slice", "image", "mask"]
    assert train["id"].tolist() == _natural(train["id"].tolist())
    assert (train["group"] == train["id"].str.rsplit("_", n=1).str[0]).all()
    assert all(p.is_file() for p in [*train["image"], *train["mask"], *test["image"]])
    sample = pd.read_csv(generated / "sample_submission.csv", dtype=str)
    assert list(test.columns) == ["id", "group", "slice", "image"]
    assert test["id"].tolist() == sample["img"].tolist() != _natural(sample["img"].tolist())
    assert competition.submission == SubmissionSpec(
        "img", "rle_mask", "F", generated / "sample_submission.csv")
    assert competition.read_image(test["image"][0])[0].shape == (40, 48, 3)
    assert competition.read_mask(train["mask"][0]).dtype == bool


def test_load_names_a_missing_mask(copy: Path) -> None:
    victim = next((copy / "train_masks").iterdir())
    victim.unlink()
    with pytest.raises(InputError, match=re.escape(victim.name)):
        synthetic.load(copy)


def test_load_names_a_mask_without_image(copy: Path) -> None:
    victim = next((copy / "train").iterdir())
    victim.unlink()
    with pytest.raises(InputError, match=re.escape(f"{victim.stem}_mask.png")):
        synthetic.load(copy)


def test_load_names_an_empty_train_folder(copy: Path) -> None:
    for image in (copy / "train").iterdir():
        image.unlink()
    with pytest.raises(InputError, match=re.escape(str(copy / "train"))):
        synthetic.load(copy)


def test_load_names_ids_where_test_and_sample_disagree(copy: Path) -> None:
    victim = next((copy / "test").iterdir())
    victim.unlink()
    with pytest.raises(InputError, match=re.escape(victim.stem)):
        synthetic.load(copy)
    shutil.copy(next((copy / "train").iterdir()), victim)  # back in step, then an extra id
    with open(copy / "sample_submission.csv", "a") as sample:
        sample.write("p9999_1,1 1\n")
    with pytest.raises(InputError, match="p9999_1"):
        synthetic.load(copy)


@pytest.mark.parametrize("kind", ["brain", "multi"])
def test_read_in_place_suggests_no_pipeline_stage(tmp_path: Path, kind: str) -> None:
    """segpipe.infer reads a test set in place, in an offline notebook: `dvc repro` means nothing there."""
    copy = tmp_path / "data"
    synthetic.generate(copy, seed=SEED, **{**SIZE, "train_patients": 2, "slices_per_patient": 2}, kind=kind)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=rf"^{empty}: holds no files of synthetic") as nothing:
        datasets.read_in_place("synthetic", empty, kind=kind)
    for image in (copy / "test").iterdir():
        image.unlink()
    with pytest.raises(InputError, match="ids with no image") as no_test:
        datasets.read_in_place("synthetic", copy, kind=kind)
    assert "dvc" not in str(nothing.value) + str(no_test.value)
    with pytest.raises(InputError, match=r"rerun `dvc repro -f download`"):  # the pipeline's own reading
        synthetic.load(copy, kind=kind)
