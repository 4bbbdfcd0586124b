"""The competition metric and the threshold search on out-of-fold probabilities.

Dice per image is 2|P∩T| / (|P|+|T|), and 1 when both are empty (the Kaggle convention).
The search never thresholds an image twice: a 256-bin histogram of each image's uint8
probabilities, split by truth, gives intersection and predicted area for every threshold
at once.
"""
from __future__ import annotations

import numpy as np


def image_dice(intersection: np.ndarray, pred_area: np.ndarray, true_area: np.ndarray) -> np.ndarray:
    """Dice from pixel counts (any matching shapes); empty prediction on empty truth is 1."""
    total = np.asarray(pred_area, dtype=np.float64) + true_area
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total == 0, 1.0, 2.0 * np.asarray(intersection, dtype=np.float64) / total)


def probability_histograms(probs: np.ndarray, masks: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per-image counts of each uint8 probability value among foreground and background pixels.

    probs (N,H,W) uint8, masks (N,H,W) {0,1}, either may be a memmap: they are read
    `chunk` images at a time. Returns two (N, 256) int64 arrays.
    """
    hist = np.zeros((len(probs), 2, 256), dtype=np.int64)
    for start in range(0, len(probs), chunk):
        p = np.asarray(probs[start:start + chunk]).reshape(-1, probs[0].size).astype(np.int64)
        m = np.asarray(masks[start:start + chunk]).reshape(p.shape).astype(np.int64)
        n = len(p)
        keys = p + 256 * m + 512 * np.arange(n)[:, None]
        hist[start:start + n] = np.bincount(keys.ravel(), minlength=512 * n).reshape(n, 2, 256)
    return hist[:, 1], hist[:, 0]


def threshold_to_uint8(threshold: float) -> int:
    """The uint8 cut used everywhere: a pixel is foreground when prob_u8 >= this."""
    return int(round(threshold * 255))


def counts_at_thresholds(fg_hist: np.ndarray, bg_hist: np.ndarray, thresholds: list[float]):
    """Intersection and predicted area per image (rows) and threshold (columns)."""
    cuts = np.array([threshold_to_uint8(t) for t in thresholds])
    # at_or_above[:, v] = pixels with prob >= v
    fg_above = np.cumsum(fg_hist[:, ::-1], axis=1)[:, ::-1]
    bg_above = np.cumsum(bg_hist[:, ::-1], axis=1)[:, ::-1]
    intersection = fg_above[:, cuts]
    return intersection, intersection + bg_above[:, cuts]


def apply_min_area(intersection: np.ndarray, pred_area: np.ndarray, min_area: int):
    """Empty every prediction smaller than `min_area` pixels."""
    keep = pred_area >= min_area
    return intersection * keep, pred_area * keep


def search_threshold(fg_hist: np.ndarray, bg_hist: np.ndarray, thresholds: list[float],
                     min_areas: list[int]) -> dict:
    """Find the (threshold, min_area) maximising mean per-image Dice.

    Returns the best pair, its Dice, and the curve of Dice against threshold at the best
    min_area (for the plot). Ties go to the first in grid order, so the choice is stable.
    """
    true_area = fg_hist.sum(axis=1)[:, None]
    intersection, pred_area = counts_at_thresholds(fg_hist, bg_hist, thresholds)
    table = np.stack([
        image_dice(*apply_min_area(intersection, pred_area, m), true_area).mean(axis=0) for m in min_areas
    ])  # (min_areas, thresholds)
    best_m, best_t = np.unravel_index(int(np.argmax(table)), table.shape)
    return {
        "threshold": thresholds[best_t],
        "min_area": int(min_areas[best_m]),
        "dice": float(table[best_m, best_t]),
        "curve": [{"threshold": t, "dice": float(d), "dice_no_min_area": float(d0)}
                  for t, d, d0 in zip(thresholds, table[best_m], table[0])],
    }


def scores_at(fg_hist: np.ndarray, bg_hist: np.ndarray, groups: np.ndarray, threshold: float,
              min_area: int) -> tuple[np.ndarray, dict]:
    """Per-image Dice and per-group (patient) Dice at one operating point.

    Patient Dice pools all of a patient's pixels before dividing, as in volume-level
    reports (Buda et al.); it is 1 for a patient with no lesion and no prediction.
    """
    intersection, pred_area = counts_at_thresholds(fg_hist, bg_hist, [threshold])
    intersection, pred_area = apply_min_area(intersection[:, 0], pred_area[:, 0], min_area)
    true_area = fg_hist.sum(axis=1)
    per_image = image_dice(intersection, pred_area, true_area)
    per_group = {}
    for group in np.unique(groups):
        rows = groups == group
        per_group[group] = float(image_dice(intersection[rows].sum(), pred_area[rows].sum(), true_area[rows].sum()))
    return per_image, per_group
