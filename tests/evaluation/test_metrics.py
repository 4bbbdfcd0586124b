import numpy as np
import pytest

from segpipe.evaluation.metrics import Counts, image_dice, image_iou_hits, probability_histograms
from segpipe.evaluation.scores import scorer


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


@pytest.mark.parametrize("inter, pred, true, hits", [
    (0, 0, 0, 1.0),  # empty on empty
    (0, 5, 0, 0.0),  # a mask on an empty image
    (0, 0, 5, 0.0),  # nothing on a full one
    (1, 2, 1, 0.0),  # IoU exactly 0.5: not above the first threshold
    (3, 4, 3, 0.5),  # IoU 0.75: above 0.5 ... 0.7
    (7, 10, 7, 0.4),  # IoU exactly 0.7: above 0.5 ... 0.65 only
    (19, 20, 19, 0.9),  # IoU 0.95: not above 0.95
    (8, 8, 8, 1.0),  # a perfect mask
])
def test_iou_hits_by_hand(inter, pred, true, hits):
    assert image_iou_hits(np.array([inter]), np.array([pred]), np.array([true]))[0] == pytest.approx(hits)


def test_iou_hits_of_every_candidate_at_once_are_each_columns():
    rng = np.random.default_rng(1)
    inter = rng.integers(0, 6, (9, 5))
    pred, true = inter + rng.integers(0, 4, (9, 5)), inter[:, :1] + rng.integers(0, 4, (9, 1))
    at_once = scorer("iou_hits")(Counts(inter, pred, true))
    for k in range(5):
        column = image_iou_hits(inter[:, k], pred[:, k], true[:, 0])
        assert at_once[k] == pytest.approx(column.mean())
