import numpy as np
import pytest

from segpipe.evaluation.baselines import MARGIN, POOR, baselines, dice_lost, not_beaten, patients_lost, warning
from segpipe.evaluation.metrics import Counts


def test_all_empty_scores_the_share_of_empty_images_and_all_full_the_dense_ones():
    true = np.array([0, 0, 0, 50, 100])  # 3 of 5 images empty, 100-pixel images
    scores = baselines(true, pixels=100, groups=np.array(["a", "a", "b", "b", "c"]))
    assert scores["empty_dice"] == pytest.approx(0.6)
    assert scores["empty_patient_dice"] == pytest.approx(1 / 3)  # only patient a has no foreground
    assert scores["full_dice"] == pytest.approx((2 * 50 / 150 + 1.0) / 5)
    assert scores["full_patient_dice"] == pytest.approx((0 + 2 * 50 / 250 + 1.0) / 3)


def test_a_score_is_warned_about_unless_it_beats_every_baseline_by_the_margin():
    scores = {"empty_dice": 0.7, "full_dice": 0.1}
    assert not_beaten(0.7 + MARGIN / 2, scores) == ["empty"]
    assert warning("CV dice", 0.70, scores).startswith("warning: CV dice 0.7000 does not beat")
    assert "all-empty 0.7000" in warning("CV dice", 0.70, scores)
    assert warning("CV dice", 0.879, scores) is None


def test_the_lost_dice_splits_into_false_positives_misses_and_boundaries():
    counts = Counts(inter=np.array([0, 0, 0, 30, 0]), pred=np.array([0, 5, 0, 40, 0]), true=np.array([0, 0, 20, 40, 0]))
    lost = dice_lost(counts)
    assert lost == pytest.approx({"false_positive": 1 / 5, "missed": 1 / 5, "boundary": (1 - 60 / 80) / 5})
    assert sum(lost.values()) == pytest.approx(1 - counts.image_dice().mean())


def test_the_lost_patient_dice_names_the_worst_patients_and_the_share_of_the_failed_ones():
    # patient a: outlined well (Dice 0.9); b: missed (nothing predicted); c: a third (2·10 / (20 + 40))
    counts = Counts(inter=np.array([45, 0, 0, 0, 10, 0]), pred=np.array([50, 0, 0, 0, 10, 10]),
                    true=np.array([50, 0, 30, 10, 20, 20]))
    lost = patients_lost(counts, np.array(["a", "a", "b", "b", "c", "c"]))
    assert lost["patients"] == 3 and lost["poor"] == 2  # b (0.0) and c (1/3) are under POOR
    assert POOR == 0.5
    assert [row["group"] for row in lost["worst"]] == ["b", "c", "a"]
    assert lost["worst"][0] == {"group": "b", "dice": 0.0, "true_pixels": 40, "pred_pixels": 0}
    assert lost["poor_share"] == pytest.approx((1.0 + 2 / 3) / 3)
    assert lost["quantiles"]["p50"] == pytest.approx(1 / 3)
