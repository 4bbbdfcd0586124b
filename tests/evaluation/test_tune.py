"""The post-processing search: it finds the grid's best rule step by step and recovers a planted one."""
import dataclasses

import numpy as np
import pytest

from segpipe.evaluation.metrics import CUTS, cut_to_threshold, probability_histograms, threshold_to_uint8
from segpipe.evaluation.postprocess import Rule
from segpipe.evaluation.tune import Grids, _component_counts, _component_table, rule_counts, search_rule


def search(probs, masks, grids):
    fg, bg = probability_histograms(probs, masks)
    return search_rule(fg, bg, lambda: zip(probs, masks), grids)


def score(probs, masks, rule) -> float:
    return float(rule_counts(zip(probs, masks), rule).image_dice().mean())


@pytest.fixture
def planted():
    """Lesion images predicted sure (250) with a soft rim; empty images with a faint false blob (150);
    every image with isolated 2x2 specks at 200. Best: a high gate, a low threshold, no specks."""
    rng = np.random.default_rng(0)
    probs = np.zeros((40, 32, 32), np.uint8)
    masks = np.zeros((40, 32, 32), np.uint8)
    for i in range(40):
        top, left = rng.integers(4, 16, 2)
        if i % 2:
            masks[i, top:top + 10, left:left + 10] = 1
            probs[i, top - 1:top + 11, left - 1:left + 11] = 110  # rim: below 0.5, above 0.4
            probs[i, top:top + 10, left:left + 10] = 250
            probs[i, top:top + 1, left:left + 10] = 120  # the lesion's top row is faint: a low threshold pays
        else:
            probs[i, top:top + 6, left:left + 6] = 150  # a false blob under the gate
        for y, x in rng.integers(0, 30, (3, 2)):
            if not masks[i, y:y + 2, x:x + 2].any() and not probs[i, max(0, y - 1):y + 3, max(0, x - 1):x + 3].any():
                probs[i, y:y + 2, x:x + 2] = 200  # a speck, apart from everything
    return probs, masks


GRIDS = Grids(gate_areas=[0, 10, 30], gate_thresholds=[0.7, 0.9], min_components=[0, 3, 5, 8], keep_largest=[0, 1, 2])


def test_recovers_the_planted_rule(planted):
    found = search(*planted, GRIDS)
    rule, steps, curve = found.rule, found.steps, found.curve
    assert 110 < threshold_to_uint8(rule.threshold) <= 120  # low enough for the faint top rows, above the rims
    assert rule.gate_threshold in (0.7, 0.9) and rule.gate_area == 30  # above the false blobs and the specks' 12 px
    assert rule.min_component in (5, 8) or rule.keep_largest == 1  # the specks are gone either way
    assert score(*planted, rule) == pytest.approx(steps[-1]["score"])
    assert score(*planted, rule) > score(*planted, Rule(0.45, 0.45, 0)) > 0
    assert [row["threshold"] for row in curve] == [cut_to_threshold(c) for c in CUTS]  # all 255 cuts
    assert all(threshold_to_uint8(row["threshold"]) == c for row, c in zip(curve, CUTS))  # and back, exactly


def test_each_step_is_kept_only_if_it_raises_the_score(planted):
    steps = search(*planted, GRIDS).steps
    dice = [step["score"] for step in steps]
    assert dice == sorted(dice)
    for before, step in zip(steps, steps[1:]):
        assert step["kept"] == (step["score"] > before["score"])


def test_the_first_step_is_the_best_of_every_cut_and_gate_area(planted):
    probs, masks = planted
    steps = search(probs, masks, GRIDS).steps
    thresholds = [cut_to_threshold(c) for c in CUTS]
    brute = max(score(probs, masks, Rule(t, t, a)) for t in thresholds for a in GRIDS.gate_areas)
    assert steps[0]["score"] == pytest.approx(brute)


def test_gate_area_zero_is_always_tried(planted):
    """Even when the grid leaves it out: the rule never scores below the best plain cut."""
    probs, masks = planted
    plain = max(score(probs, masks, Rule(t, t, 0)) for t in (cut_to_threshold(c) for c in CUTS))
    steps = search(probs, masks, Grids([30], [0.9], [0], [0])).steps
    assert steps[0]["score"] >= plain - 1e-12


@pytest.mark.parametrize("change", [dict(min_component=5), dict(keep_largest=1), dict(min_component=3, keep_largest=2),
                                    dict(gate_threshold=0.9, gate_area=30, keep_largest=1)])
def test_scoring_components_from_their_table_equals_applying_the_rule(planted, change):
    probs, masks = planted
    rule = dataclasses.replace(Rule(0.45, 0.45, 0), **change)
    fg, bg = probability_histograms(probs, masks)
    above = np.cumsum((fg + bg)[:, ::-1], axis=1)[:, ::-1]
    gate = above[:, round(rule.gate_threshold * 255)] >= rule.gate_area
    table = _component_table(lambda: zip(probs, masks), rule.threshold)
    fast = _component_counts(*table, fg.sum(axis=1), gate, rule).image_dice()
    np.testing.assert_allclose(fast, rule_counts(zip(probs, masks), rule).image_dice())


def test_nothing_to_gain_keeps_the_plain_threshold():
    masks = np.zeros((6, 16, 16), np.uint8)
    masks[::2, 4:10, 4:10] = 1
    probs = (masks * 230).astype(np.uint8)
    found = search(probs, masks, GRIDS)
    lowest = cut_to_threshold(1)  # every cut up to 230 is perfect: ties go to the lowest
    assert found.rule == Rule(lowest, lowest, 0) and [s["kept"] for s in found.steps] == [True, False, False, False]
