import numpy as np
import pytest

from segpipe.evaluation.metrics import image_dice, probability_histograms


@pytest.fixture
def oof():
    rng = np.random.default_rng(0)
    masks = np.zeros((20, 16, 16), np.uint8)
    masks[:10, 4:10, 3:9] = 1  # half the images have a lesion
    probs = np.clip(masks * 170 + rng.normal(40, 40, masks.shape), 0, 255).astype(np.uint8)
    return probs, masks


def test_empty_prediction_on_empty_mask_scores_one():
    assert image_dice(np.array([0, 0, 3]), np.array([0, 2, 3]), np.array([0, 0, 3])).tolist() == [1.0, 0.0, 1.0]


def test_histograms_count_every_pixel(oof):
    probs, masks = oof
    fg, bg = probability_histograms(probs, masks, chunk=7)
    assert (fg.sum(1) == masks.sum((1, 2))).all()
    assert (fg + bg).sum() == probs.size
