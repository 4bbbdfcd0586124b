"""UW-Madison's metric: 3D Dice and the normalised Hausdorff distance per (volume, class)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import directed_hausdorff

from segpipe.core.labels import Labels
from segpipe.evaluation.volumes import dice, hausdorff, score_volumes, volume_order


def _brute(pred: np.ndarray, true: np.ndarray) -> float:
    a, b = np.argwhere(pred), np.argwhere(true)
    return max(directed_hausdorff(a, b)[0], directed_hausdorff(b, a)[0]) / math.sqrt(sum(s * s for s in pred.shape))


@pytest.mark.parametrize("seed", range(6))
def test_hausdorff_is_the_brute_force_distance_over_the_diagonal(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (7, 30, 40)
    pred, true = rng.random(shape) > 0.995, np.zeros(shape, bool)
    true[2:4, 5:12, 20:31] = True  # a box; the prediction's stray voxels lie anywhere, also far outside it
    pred[0, 0, 0] = True
    assert hausdorff(pred, true) == pytest.approx(_brute(pred, true))


def test_a_hole_far_from_the_other_mask_counts_from_inside() -> None:
    """The farthest voxel need not be on a boundary: a disc inside a ring is farthest at its centre."""
    yy, xx = np.mgrid[:41, :41]
    radius = np.hypot(yy - 20, xx - 20)
    ring, disc = (radius >= 15) & (radius < 17), radius < 14
    assert hausdorff(disc[None], ring[None]) == pytest.approx(_brute(disc[None], ring[None]))
    assert hausdorff(disc[None], ring[None]) * math.sqrt(1 + 41 ** 2 + 41 ** 2) == pytest.approx(15.0)


def test_empty_masks() -> None:
    empty, some = np.zeros((2, 5, 5), bool), np.zeros((2, 5, 5), bool)
    some[1, 2, 2] = True
    assert hausdorff(empty, empty) == 0.0 and hausdorff(empty, some) == 1.0 and hausdorff(some, empty) == 1.0
    assert dice(empty, empty) == 1.0 and dice(some, empty) == 0.0 and dice(some, some) == 1.0


def test_score_drops_pairs_empty_in_both_and_weighs_dice_and_distance() -> None:
    true = np.zeros((4, 10, 10), np.uint8)
    true[1:3, 2:6, 2:6] = 0b01  # class a only; class b empty in both
    pred = true.copy()
    pred[1, 2:6, 2:4] = 0  # half a slice missed
    scores = score_volumes([(pred, true), (np.zeros_like(true), np.zeros_like(true))], Labels(("a", "b")))
    expected_dice = 2 * 24 / (24 + 32)
    distance = hausdorff(pred & 1 > 0, true & 1 > 0)
    assert scores["volumes"] == 2 and scores["pairs"] == 1 and scores["classes"]["b"]["pairs"] == 0
    assert scores["dice"] == pytest.approx(expected_dice) and scores["hausdorff"] == pytest.approx(distance)
    assert scores["score"] == pytest.approx(0.4 * expected_dice + 0.6 * (1 - distance))
    assert scores["classes"]["a"]["score"] == pytest.approx(scores["score"])


def test_a_class_predicted_where_there_is_none_scores_zero() -> None:
    true = np.zeros((3, 8, 8), np.uint8)
    pred = true.copy()
    pred[1, 4, 4] = 0b10
    scores = score_volumes([(pred, true)], Labels(("a", "b")))
    assert scores["pairs"] == 1 and scores["score"] == 0.0  # Dice 0, Hausdorff 1


def test_volume_order_groups_a_volumes_slices_in_order() -> None:
    table = pd.DataFrame({"volume": ["v2", "v1", "v2", "v1", "v2"], "slice": [3, 2, 1, 1, 2], "group": "c"})
    rows = np.arange(5)
    assert [list(rows[v]) for v in volume_order(table, rows)] == [[2, 4, 0], [3, 1]]
    by_group = table.drop(columns="volume").assign(group=["p", "q", "p", "q", "p"])
    assert [list(v) for v in volume_order(by_group, np.array([1, 3]))] == [[1, 0]]
