import numpy as np
import pytest

from segpipe.metrics import image_dice, probability_histograms, scores_at, search_threshold, threshold_to_uint8


def brute_force_dice(probs, masks, threshold, min_area):
    pred = probs >= threshold_to_uint8(threshold)
    pred[pred.sum((1, 2)) < min_area] = False
    inter, p, t = (pred & (masks > 0)).sum((1, 2)), pred.sum((1, 2)), masks.sum((1, 2))
    return np.where(p + t == 0, 1.0, 2 * inter / np.maximum(p + t, 1))


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


@pytest.mark.parametrize("threshold, min_area", [(0.3, 0), (0.5, 0), (0.7, 20), (0.5, 40)])
def test_histogram_scores_match_thresholding_each_image(oof, threshold, min_area):
    probs, masks = oof
    fg, bg = probability_histograms(probs, masks)
    per_image, _ = scores_at(fg, bg, np.zeros(len(probs)), threshold, min_area)
    np.testing.assert_allclose(per_image, brute_force_dice(probs, masks, threshold, min_area))


def test_search_finds_the_best_grid_point(oof):
    probs, masks = oof
    fg, bg = probability_histograms(probs, masks)
    grid, areas = [0.1, 0.3, 0.5, 0.7, 0.9], [0, 10, 1000]
    best = search_threshold(fg, bg, grid, areas)
    table = {(t, a): brute_force_dice(probs, masks, t, a).mean() for t in grid for a in areas}
    assert best["dice"] == pytest.approx(max(table.values()))
    assert table[best["threshold"], best["min_area"]] == pytest.approx(best["dice"])
    assert [row["threshold"] for row in best["curve"]] == grid


def test_patient_dice_pools_pixels_over_the_patient():
    fg = np.zeros((3, 256), np.int64)
    bg = np.zeros((3, 256), np.int64)
    fg[0, 255], bg[1, 255] = 10, 10  # image 0: 10 hits; image 1: 10 false positives
    bg[2, 0] = 5  # image 2: empty and predicted empty
    _, per_group = scores_at(fg, bg, np.array(["a", "a", "b"]), 0.5, 0)
    assert per_group == {"a": pytest.approx(2 * 10 / 30), "b": 1.0}
