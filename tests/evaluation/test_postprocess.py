"""The post-processing rule, applied the same way by the search, the report and submit."""
import json

import numpy as np
import pytest

from segpipe.core.errors import InputError
from segpipe.evaluation.postprocess import Rule, apply, kept_components


def blobs(*squares) -> np.ndarray:
    """A 32x32 uint8 map with value v in each (top, left, side, v) square."""
    prob = np.zeros((32, 32), np.uint8)
    for top, left, side, value in squares:
        prob[top:top + side, left:left + side] = value
    return prob


def test_threshold_alone_is_a_plain_cut():
    prob = blobs((0, 0, 4, 100), (10, 10, 3, 200))
    assert apply(prob, Rule(threshold=0.5)).sum() == 9
    assert apply(prob, Rule(threshold=0.3)).sum() == 25


def test_the_gate_empties_an_image_without_enough_confident_pixels():
    faint, sure = blobs((0, 0, 6, 150)), blobs((0, 0, 6, 150), (20, 20, 2, 250))
    rule = Rule(threshold=0.5, gate_threshold=0.9, gate_area=4)
    assert apply(faint, rule).sum() == 0  # 36 pixels above the threshold, none above the gate
    assert apply(sure, rule).sum() == 40  # the gate passes, then the lower threshold draws the whole mask
    assert apply(sure, Rule(threshold=0.5, gate_threshold=0.9, gate_area=5)).sum() == 0
    assert apply(sure, Rule(threshold=0.5, gate_threshold=0.9, gate_area=5), area_scale=0.5).sum() == 40


def test_small_components_go_and_the_largest_stay():
    prob = blobs((0, 0, 5, 255), (10, 10, 3, 255), (20, 20, 2, 255), (28, 0, 2, 255))  # 25, 9, 4, 4 px
    assert apply(prob, Rule(min_component=5)).sum() == 34
    assert apply(prob, Rule(keep_largest=1)).sum() == 25
    assert apply(prob, Rule(keep_largest=3)).sum() == 38  # of the two 4 px squares, the first in row order
    kept = apply(prob, Rule(keep_largest=3))
    assert kept[20:22, 20:22].all() and not kept[28:30, 0:2].any()
    assert apply(prob, Rule(min_component=10, keep_largest=2)).sum() == 25
    assert apply(prob, Rule(min_component=5), area_scale=4).sum() == 25  # areas scale with the pixel count


def test_diagonal_neighbours_are_one_component():
    prob = np.zeros((8, 8), np.uint8)
    prob[[0, 1, 2], [0, 1, 2]] = 255
    assert apply(prob, Rule(min_component=3)).sum() == 3


def test_kept_components_breaks_ties_by_label():
    assert kept_components(np.array([4, 9, 4, 9]), 0, 3).tolist() == [True, True, False, True]


def test_rule_file_round_trip_and_errors(tmp_path):
    rule = Rule(threshold=0.45, gate_threshold=0.8, gate_area=10, min_component=5, keep_largest=2)
    rule.write(tmp_path / "rule.json")
    assert Rule.read(tmp_path / "rule.json") == rule
    assert rule.describe() == "threshold 0.45, gate 10 px >= 0.8, components >= 5 px, largest 2"
    (tmp_path / "bad.json").write_text(json.dumps({"threshold": 0.5, "min_area": 5}))
    with pytest.raises(InputError, match="bad.json: not a post-processing rule.*dvc repro threshold"):
        Rule.read(tmp_path / "bad.json")
    with pytest.raises(InputError, match="missing.json: no post-processing rule"):
        Rule.read(tmp_path / "missing.json")
