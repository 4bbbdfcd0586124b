"""The competition metric, and per-image probability histograms that score every cut at once.

Dice per image is 2|P∩T| / (|P|+|T|), and 1 when both are empty (the Kaggle convention).
A 256-bin histogram of each image's uint8 probabilities, split by truth, gives intersection
and predicted area for every threshold at once, so a threshold search never thresholds an
image (`segpipe.evaluation.tune`). Training needs only this module, not the search.
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
