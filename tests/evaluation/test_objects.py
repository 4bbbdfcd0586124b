"""Object scores (Airbus F2, DSB 2018 mAP) against hand-computed cases, and the object search step."""
import numpy as np
import pytest

from segpipe.evaluation.objects import instance_counts, rule_object_counts, search_objects
from segpipe.evaluation.postprocess import Rule, components


def score(pred: np.ndarray, truth: np.ndarray, metric: str) -> float:
    labels, areas = components(pred.astype(bool))
    return instance_counts([(labels, len(areas), truth.astype(bool))]).score(metric)


def square(at: tuple[int, int], side: int, shape=(20, 20)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[at[0]:at[0] + side, at[1]:at[1] + side] = True
    return mask


@pytest.mark.parametrize("metric", ["object_f2", "object_ap"])
def test_empty_on_empty_scores_one_and_one_empty_side_zero(metric):
    empty = np.zeros((20, 20), bool)
    assert score(empty, empty, metric) == 1.0
    assert score(square((2, 2), 3), empty, metric) == 0.0
    assert score(empty, square((2, 2), 3), metric) == 0.0


def test_one_object_split_in_two_misses_and_adds_a_false_positive():
    truth = square((2, 2), 4)  # 16 px
    pred = truth.copy()
    pred[:, 4] = False  # cut down the middle: two objects of 4 px each (IoU 0.25 each: no hit)
    # no threshold is hit: TP 0, FP 2, FN 1
    assert score(pred, truth, "object_ap") == 0.0
    assert score(pred, truth, "object_f2") == 0.0
    truth = np.zeros((20, 20), bool)
    truth[2:4, 2:10] = True  # 16 px, 2 x 8
    half = truth.copy()
    half[:, 8] = False  # two objects: 12 px (IoU 0.75) and 2 px (IoU 0.125)
    # thresholds below 0.75 (0.5 .. 0.7, five of ten): TP 1, FP 1, FN 0
    assert score(half, truth, "object_ap") == pytest.approx(5 * (1 / 2) / 10)
    assert score(half, truth, "object_f2") == pytest.approx(5 * (5 / 6) / 10)


def test_iou_exactly_at_a_threshold_does_not_hit_it():
    truth = square((0, 0), 10)  # 100 px
    pred = np.zeros_like(truth)
    pred[:5, :10] = True  # IoU exactly 0.5: no threshold hit
    assert score(pred, truth, "object_ap") == 0.0
    pred[:7, :10] = True  # IoU exactly 0.7: hits 0.5 .. 0.65, four thresholds
    assert score(pred, truth, "object_ap") == pytest.approx(0.4)
    assert score(pred, truth, "object_f2") == pytest.approx(0.4)


def test_two_objects_one_found_and_the_mean_over_images():
    truth = square((1, 1), 4) | square((10, 10), 5)
    pred = square((1, 1), 4)  # one of two found exactly: TP 1, FN 1 at every threshold
    assert score(pred, truth, "object_ap") == pytest.approx(0.5)
    assert score(pred, truth, "object_f2") == pytest.approx(5 / 9)
    empty = np.zeros_like(truth)
    both = [(*(lambda lab: (lab[0], len(lab[1])))(components(p)), t) for p, t in ((pred, truth), (empty, empty))]
    assert instance_counts(both).score("object_ap") == pytest.approx((0.5 + 1.0) / 2)


def test_the_object_step_drops_specks_that_pixel_scores_barely_see():
    rng = np.random.default_rng(0)
    maps, probs = [], []
    for i in range(6):
        truth = square((3, 3), 8, (32, 32))
        prob = np.where(truth, 230, 0).astype(np.uint8)
        for _ in range(3):  # specks: a false object each at any threshold, a few pixels of Dice
            y, x = rng.integers(15, 30, 2)
            prob[y, x] = 200
        maps.append((prob, truth.astype(np.uint8)))
    rule = Rule(threshold=0.5)
    before = rule_object_counts(maps, rule).score("object_f2")
    best, found, given = search_objects(lambda: iter(maps), rule, [2, 5], "object_f2")
    assert given == pytest.approx(before) and before <= 0.625  # 5 TP / (5 TP + FP), FP >= 3 specks
    assert best.min_component >= 2 and found == pytest.approx(1.0)
    assert rule_object_counts(maps, best).score("object_f2") == pytest.approx(1.0)
