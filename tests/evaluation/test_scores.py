"""The declared score: per image or per patient, and the search and the blend maximise the declared one."""
import json

import numpy as np
import pandas as pd
import pytest

from segpipe.core.errors import InputError
from segpipe.evaluation.blend import OofSet, select
from segpipe.evaluation.metrics import Counts, probability_histograms
from segpipe.evaluation.scores import image_iou_hits, patients, read_metric, scorer, write_metric
from segpipe.evaluation.tune import Grids, search_rule


def test_patient_dice_pools_each_patients_pixels_for_every_candidate_at_once():
    rng = np.random.default_rng(0)
    inter = rng.integers(0, 5, (12, 7))
    pred, true = inter + rng.integers(0, 5, (12, 7)), inter[:, :1] + rng.integers(0, 5, (12, 1))
    groups = np.array(list("bacabcacbbca"))
    by_patient = scorer("patient_dice", groups)(Counts(inter, pred, true))
    for k in range(7):  # each column is one candidate: the same as pooling that column by hand
        column = Counts(inter[:, k], pred[:, k], true[:, 0])
        assert by_patient[k] == pytest.approx(column.group_dice(groups))
    assert scorer("dice")(Counts(inter, pred, true)) == pytest.approx(Counts(inter, pred, true).image_dice().mean(0))


def small_lesions():
    """Three patients of 6 slices. Patient a's one lesion is small (4 px, predicted sure) and two of its
    empty slices carry false blobs of the same size and confidence; patients b and c are found, less sure
    (no threshold empties the small ones and keeps the large).
    Per image, a gate of 5 px pays (two empty slices won, one slice lost); per patient it empties
    patient a and loses its whole Dice."""
    probs = np.zeros((18, 16, 16), np.uint8)
    masks = np.zeros((18, 16, 16), np.uint8)
    masks[0, 2:4, 2:4] = 1
    probs[0, 2:4, 2:4] = 250
    probs[1, 8:10, 8:10] = probs[2, 8:10, 8:10] = 250  # false blobs on empty slices of a
    for i in (6, 7, 12, 13):  # b and c: large lesions, well outlined
        masks[i, 4:12, 4:12] = 1
        probs[i, 4:12, 4:12] = 200
    groups = np.array(["a"] * 6 + ["b"] * 6 + ["c"] * 6)
    return probs, masks, groups


GRIDS = Grids(gate_areas=[0, 5], gate_thresholds=[0.8], min_components=[0], keep_largest=[0])


@pytest.mark.parametrize("metric, gate_area", [("dice", 5), ("patient_dice", 0)])
def test_the_search_picks_the_declared_scores_optimum(metric, gate_area):
    probs, masks, groups = small_lesions()
    fg, bg = probability_histograms(probs, masks)
    found = search_rule(fg, bg, lambda: zip(probs, masks), GRIDS, scorer(metric, groups))
    assert found.rule.gate_area == gate_area
    other = search_rule(fg, bg, lambda: zip(probs, masks), GRIDS,
                        scorer("dice" if metric == "patient_dice" else "patient_dice", groups))
    assert other.rule.gate_area != gate_area  # the two scores disagree on this data


def test_the_blend_maximises_the_declared_score():
    """Model s is sure of the small lesion and of the false blobs; model q misses both. Per image q wins
    (two empty slices against one lesion slice), per patient s wins (patient a's Dice)."""
    probs, masks, groups = small_lesions()
    quiet = probs.copy()
    quiet[:3] = 0
    chosen = {metric: select(["q", "s"], OofSet({"q": [quiet], "s": [probs]}, [masks], groups,
                                                scorer=scorer(metric, groups)).score, 1).counts
              for metric in ("dice", "patient_dice")}
    assert chosen == {"dice": {"q": 1}, "patient_dice": {"s": 1}}


def test_patients_are_volumes_where_a_table_has_them():
    table = pd.DataFrame({"group": ["p", "p", "q"], "volume": ["p_d1", "p_d2", "q_d1"]})
    assert list(patients(table, np.array([0, 1, 2]))) == ["p_d1", "p_d2", "q_d1"]
    assert list(patients(table.drop(columns="volume"), np.array([2, 0]))) == ["q", "p"]


def test_the_metric_file_round_trips_and_a_bad_one_is_named(tmp_path):
    write_metric(tmp_path, "patient_dice")
    assert read_metric(tmp_path) == "patient_dice"
    (tmp_path / "metric.json").write_text(json.dumps({"metric": "iou"}))
    with pytest.raises(InputError, match=r"metric.json: unknown metric 'iou'"):
        read_metric(tmp_path)
    with pytest.raises(InputError, match=r"metric.json: missing; rerun `dvc repro prepare`"):
        read_metric(tmp_path / "nowhere")


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
