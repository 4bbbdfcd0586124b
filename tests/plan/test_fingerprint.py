import cv2
import numpy as np
import pytest

from segpipe.core.errors import InputError
from segpipe.plan.fingerprint import dice, measure
from segpipe.plan.sizes import candidate_sides, scaled_sides
from tests.conftest import TINY


@pytest.fixture(scope="module")
def fingerprint(competition):
    return measure(competition, seed=3, workers=2)


def test_counts_cover_the_whole_set_and_sizes_come_from_the_files(fingerprint, competition):
    assert fingerprint["images"] == len(competition.train) == TINY["train_patients"] * TINY["slices_per_patient"]
    assert fingerprint["groups"] == TINY["train_patients"]
    assert fingerprint["test_images"] == len(competition.test)
    assert fingerprint["height"]["median"] == TINY["height"] and fingerprint["width"]["median"] == TINY["width"]
    assert fingerprint["one_size"] and fingerprint["channels"] == 3


def test_empty_share_and_object_areas_match_the_masks(fingerprint, competition):
    masks = [competition.read_mask(path) > 0 for path in competition.train["mask"]]
    assert fingerprint["sampled"] == len(masks)  # the tiny set is under the sample size: every image
    assert fingerprint["empty_share"] == pytest.approx(np.mean([not m.any() for m in masks]), abs=1e-4)
    assert fingerprint["foreground_share"] == pytest.approx(np.mean([m.mean() for m in masks]), abs=1e-4)
    areas = fingerprint["objects"]["area"]
    assert 0 < areas["p01"] <= areas["p25"] <= areas["p50"] <= areas["p90"]


def test_round_trip_dice_grows_with_the_size(fingerprint):
    sides = sorted(fingerprint["round_trip"], key=int)
    assert sides == ["32", str(min(TINY["height"], TINY["width"]))]  # 40x48: 32x32, then the native 32x64
    medians = [fingerprint["round_trip"][side]["p50"] for side in sides]
    assert medians[0] < medians[-1] < 1.0


def test_the_same_seed_gives_the_same_fingerprint_and_another_seed_another_sample(competition):
    small = dict(seed=5, workers=1, sample=20)
    assert measure(competition, **small) == measure(competition, **small)
    assert measure(competition, **{**small, "seed": 6}) != measure(competition, **small)


def test_sizes_are_multiples_of_32_with_the_aspect_kept():
    assert scaled_sides(420, 580, 224) == (224, 320)
    assert scaled_sides(256, 256, 128) == (128, 128)
    assert candidate_sides(256, 256)[-3:] == [192, 224, 256]
    assert dice(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 1.0


def test_a_mask_of_another_size_than_its_image_names_the_file(competition, tmp_path):
    """The fingerprint reads masks before prepare does: its own check, not numpy's broadcast error."""
    bad = tmp_path / "bad_mask.png"
    mask = np.zeros((64, 80), np.uint8)
    mask[10:30, 20:50] = 255  # foreground: the round trip compares it with the image-sized mask
    cv2.imwrite(str(bad), mask)
    train = competition.train.copy()
    train.loc[3, "mask"] = bad
    broken = type(competition)(**{**competition.__dict__, "train": train})
    image = train.image[3]
    with pytest.raises(InputError, match=rf"^{bad}: mask is 80x64 but its image is 48x40 \({image}\)$"):
        measure(broken, seed=0, workers=2, sample=len(train))  # every image sampled: the bad one among them
