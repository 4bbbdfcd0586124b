"""The multi-label synthetic competition: determinism, each class's share and overlap, the bit
masks and their reader, the per-class csv files and load()."""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from segpipe import rle
from segpipe.core.errors import InputError
from segpipe.datasets import readers
from segpipe.datasets.adapters import synthetic
from segpipe.synthetic import multi
from segpipe.datasets.base import SubmissionSpec

# The CI default's slices (spot sizes and runs are set for them); 12 train patients, so that shares are
# not at the mercy of one patient
SIZE = dict(train_patients=12, test_patients=3, slices_per_patient=16, height=100, width=100)
SEED = 7
CORE, EDEMA, SPOT = (1 << k for k in range(3))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic_multi") / "data"
    synthetic.generate(root, seed=SEED, kind="multi", **SIZE)
    return root


@pytest.fixture(scope="module")
def masks(generated: Path) -> np.ndarray:
    """The (slices, H, W) bit masks of the train slices, in table order."""
    competition = synthetic.load(generated, kind="multi")
    return np.stack([competition.read_mask(path) for path in competition.train["mask"]])


@pytest.fixture
def copy(generated: Path, tmp_path: Path) -> Path:
    """A scratch copy for the tests that break the layout on purpose."""
    return Path(shutil.copytree(generated, tmp_path / "data"))


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _present(masks: np.ndarray, bit: int) -> np.ndarray:
    return ((masks & bit) > 0).any(axis=(1, 2))


def test_same_seed_same_bytes_other_seed_differs(generated: Path, tmp_path: Path) -> None:
    synthetic.generate(tmp_path / "again", seed=SEED, kind="multi", **SIZE)
    synthetic.generate(tmp_path / "other", seed=SEED + 1, kind="multi", **SIZE)
    assert _digests(tmp_path / "again") == _digests(generated)
    assert _digests(tmp_path / "other") != _digests(generated)


def test_layout_bit_masks_and_headers(generated: Path) -> None:
    assert sorted(p.name for p in generated.iterdir()) == [
        "sample_submission.csv", "test", "train", "train_masks", "train_masks.csv"]
    mask = cv2.imread(str(next((generated / "train_masks").iterdir())), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (100, 100) and mask.dtype == np.uint8 and mask.max() < 8
    for name in ("train_masks.csv", "sample_submission.csv"):
        assert (generated / name).read_text().splitlines()[0] == "id,rle_mask,class"
    sample = pd.read_csv(generated / "sample_submission.csv", dtype=str, keep_default_na=False)
    assert sample["class"].tolist() == list(multi.CLASSES) * (len(sample) // 3)
    assert len(sample) == 3 * 3 * 16 and (sample["rle_mask"] == "1 1").all()


def test_each_class_on_its_share_of_the_slices(masks: np.ndarray) -> None:
    core, edema, spot = (_present(masks, bit) for bit in (CORE, EDEMA, SPOT))
    assert 0.25 <= edema.mean() <= 0.6  # the brain kind's lesions
    assert 0.1 <= core.mean() <= edema.mean() and not (core & ~edema).any()  # a core only inside a lesion
    assert 0.05 <= spot.mean() <= 0.3  # rare
    assert 0.3 <= (masks.max(axis=(1, 2)) == 0).mean() <= 0.7  # many slices show no class at all


def test_core_and_edema_overlap_and_spots_are_small(masks: np.ndarray) -> None:
    core, edema, spot = ((masks & bit) > 0 for bit in (CORE, EDEMA, SPOT))
    assert (core & edema).sum() > 0.1 * edema.sum()  # the core lies in the edema: multi-label, not exclusive
    assert (edema & ~core).sum() > 0.5 * edema.sum()  # and the edema is a halo around it
    spot_areas = [stats[1:, cv2.CC_STAT_AREA] for stats in
                  (cv2.connectedComponentsWithStats(m.astype(np.uint8))[2] for m in spot if m.any())]
    assert 10 <= np.median(np.concatenate(spot_areas)) <= 50
    assert np.median(edema.sum(axis=(1, 2))[edema.any(axis=(1, 2))]) > 100  # a minimum area that fits
    # the edema would delete every spot


def test_edema_is_the_brain_kinds_lesion(generated: Path, masks: np.ndarray, tmp_path: Path) -> None:
    synthetic.generate(tmp_path / "brain", seed=SEED, **SIZE)
    brain = synthetic.load(tmp_path / "brain")
    lesions = np.stack([brain.read_mask(path) for path in brain.train["mask"]])
    np.testing.assert_array_equal((masks & EDEMA) > 0, lesions)


def test_classes_look_different(generated: Path, masks: np.ndarray) -> None:
    """Against a ring around it: the edema is brightest in FLAIR, the core after contrast, spots in all three."""
    competition = synthetic.load(generated, kind="multi")
    gains = {bit: np.zeros(3) for bit in (CORE, EDEMA, SPOT)}
    for image_path, mask in zip(competition.train["image"], masks):
        image = competition.read_image(image_path)[0].astype(float)
        for bit, gain in gains.items():
            region = (mask & bit) > 0
            if region.any():
                ring = cv2.dilate(region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~region
                gain += image[region].mean(axis=0) - image[ring].mean(axis=0)
    assert np.argmax(gains[EDEMA]) == 1 and np.argmax(gains[CORE]) == 2
    assert (gains[SPOT] > 0).all() and gains[SPOT][1] > 0.5 * gains[SPOT].max()


def test_train_masks_csv_decodes_to_the_mask_bits(generated: Path, masks: np.ndarray) -> None:
    rows = pd.read_csv(generated / "train_masks.csv", dtype=str, keep_default_na=False)
    train = synthetic.load(generated, kind="multi").train
    assert rows["id"].tolist()[::3] == train["id"].tolist()
    for (sid, label), encoded in zip(zip(rows["id"], rows["class"]), rows["rle_mask"]):
        bit = 1 << multi.CLASSES.index(label)
        expected = (masks[train.index[train["id"] == sid][0]] & bit) > 0
        np.testing.assert_array_equal(rle.decode(encoded, (100, 100), order="F"), expected, f"{sid} {label}")


def test_read_bit_mask(tmp_path: Path) -> None:
    bits = np.array([[0, CORE, EDEMA | CORE], [SPOT, EDEMA | SPOT, 7]], np.uint8)
    cv2.imwrite(str(tmp_path / "bits.png"), bits)
    read = readers.read_bit_mask(tmp_path / "bits.png", classes=3)
    assert read.dtype == np.uint8
    np.testing.assert_array_equal(read, bits)
    cv2.imwrite(str(tmp_path / "high.png"), bits | 8)
    with pytest.raises(InputError, match=r"high\.png: value 15 sets a bit past the 3 classes"):
        readers.read_bit_mask(tmp_path / "high.png", classes=3)
    cv2.imwrite(str(tmp_path / "rgb.png"), np.dstack([bits] * 3))
    with pytest.raises(InputError, match=r"rgb\.png: not a bit mask"):
        readers.read_bit_mask(tmp_path / "rgb.png", classes=3)
    with pytest.raises(InputError, match=r"missing\.png: cannot decode mask"):
        readers.read_bit_mask(tmp_path / "missing.png", classes=3)


def test_load(generated: Path) -> None:
    competition = synthetic.load(generated, kind="multi", train_patients=12)  # adapter options are accepted
    train, test = competition.train, competition.test
    assert competition.classes == ("core", "edema", "spot") and competition.labels.kind == "multilabel"
    assert competition.submission == SubmissionSpec(
        "id", "rle_mask", "F", generated / "sample_submission.csv", class_column="class")
    assert competition.submission.header() == ["id", "rle_mask", "class"]
    assert list(train.columns) == ["id", "group", "slice", "image", "mask"] and len(train) == 12 * 16
    assert list(test.columns) == ["id", "group", "slice", "image"] and len(test) == 3 * 16
    sample = pd.read_csv(generated / "sample_submission.csv", dtype=str)
    assert test["id"].tolist() == sample["id"].tolist()[::3]
    assert not set(train["group"]) & set(test["group"]) and test["group"].nunique() == 3
    assert competition.read_image(test["image"][0])[0].shape == (100, 100, 3)


def test_load_names_a_sample_out_of_class_order(copy: Path) -> None:
    lines = (copy / "sample_submission.csv").read_text().splitlines(keepends=True)
    lines[1], lines[2] = lines[2], lines[1]  # the first id's edema before its core
    (copy / "sample_submission.csv").write_text("".join(lines))
    first = lines[1].split(",")[0]
    with pytest.raises(InputError, match=rf"each id once per class.*{first} edema"):
        synthetic.load(copy, kind="multi")


def test_load_names_a_missing_test_image(copy: Path) -> None:
    victim = next((copy / "test").iterdir())
    victim.unlink()
    with pytest.raises(InputError, match=re.escape(victim.stem)):
        synthetic.load(copy, kind="multi")


def test_an_unknown_kind_lists_multi(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'multi'"):
        synthetic.generate(tmp_path / "data", seed=SEED, kind="bogus", **SIZE)


def test_the_exclusive_kind_has_the_same_images_and_one_class_a_pixel(generated: Path, masks: np.ndarray,
                                                                       tmp_path: Path) -> None:
    root = tmp_path / "exclusive"
    synthetic.generate(root, seed=SEED, kind="exclusive", **SIZE)
    competition = synthetic.load(root, kind="exclusive")
    assert competition.labels.kind == "multiclass" and competition.exclusive
    first = competition.train.iloc[0]
    assert (root / "train" / Path(first["image"]).name).read_bytes() == (
        generated / "train" / Path(first["image"]).name).read_bytes()  # the same images as the multi kind
    exclusive = np.stack([competition.read_mask(path) for path in competition.train["mask"]])
    assert not np.any(exclusive & (exclusive - 1))  # one bit a pixel at most
    np.testing.assert_array_equal(exclusive, multi.exclusive_bits(masks))
    assert np.any(masks & (masks - 1))  # while the multi kind's classes do overlap


def test_prepare_refuses_overlapping_classes_of_an_exclusive_competition(generated: Path, tmp_path: Path) -> None:
    import dataclasses

    from segpipe.cache.prepare import prepare_competition

    competition = dataclasses.replace(synthetic.load(generated, kind="multi"), exclusive=True)
    with pytest.raises(InputError, match=r"_mask\.png: a pixel has two classes, but the competition's classes are "
                                         r"exclusive"):
        prepare_competition(competition, tmp_path / "prepared", (32, 32), workers=1)
    assert not (tmp_path / "prepared").exists()
