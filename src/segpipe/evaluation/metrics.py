"""The competition metric from pixel counts, and per-image probability histograms that score every cut at once.

Dice per image is 2|P∩T| / (|P|+|T|), and 1 when both are empty (the Kaggle convention).
Everything is counted once, as smp's `get_stats` does, then reduced by name: per image
(`Counts.image_dice`, the leaderboard's), pooled over all pixels (`pooled_dice`, nnU-Net's
pseudo Dice) or pooled per patient (`group_dice`). A 256-bin histogram of each image's
uint8 probabilities, split by truth, gives the counts at every cut at once
(`counts_at_cuts`), so a threshold search never thresholds an image. Training needs only
this module, not the search.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CUTS = np.arange(1, 256)  # every uint8 threshold that keeps some pixels and drops others


def image_dice(intersection: np.ndarray, pred_area: np.ndarray, true_area: np.ndarray) -> np.ndarray:
    """Dice from pixel counts (any matching shapes); empty prediction on empty truth is 1."""
    total = np.asarray(pred_area, dtype=np.float64) + true_area
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total == 0, 1.0, 2.0 * np.asarray(intersection, dtype=np.float64) / total)


@dataclass(frozen=True)
class Counts:
    """Per-image pixel counts: intersection, predicted area and true area (arrays of one length)."""

    inter: np.ndarray
    pred: np.ndarray
    true: np.ndarray

    def image_dice(self) -> np.ndarray:
        """Dice of each image."""
        return image_dice(self.inter, self.pred, self.true)

    def pooled_dice(self) -> float:
        """One Dice over all pixels of all images."""
        return float(image_dice(np.sum(self.inter), np.sum(self.pred), np.sum(self.true)))

    def group_totals(self, groups: np.ndarray) -> pd.DataFrame:
        """Each group's (patient's) pixels pooled: inter, pred and true per group, and its Dice."""
        table = pd.DataFrame({"group": np.asarray(groups), "inter": self.inter, "pred": self.pred, "true": self.true})
        totals = table.groupby("group")[["inter", "pred", "true"]].sum()
        return totals.assign(dice=image_dice(totals.inter, totals.pred, totals.true))

    def group_dice(self, groups: np.ndarray) -> float:
        """The mean over groups (patients) of the Dice of each group's pixels pooled."""
        return float(self.group_totals(groups).dice.mean())

    def __len__(self) -> int:
        return len(self.inter)


class DiceTally:
    """Each image's and class's pixel counts, added a batch at a time; each class's Dice at the end.

    The one place Dice counts are made while training: the validation pass (torch tensors) and
    the OOF pass (numpy arrays) both add (B, C, H, W) bool predictions and truths.
    """

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    def add(self, pred, truth) -> None:
        """(B, C, H, W) bool predictions and truths, numpy arrays or torch tensors."""
        counts = [(pred & truth).sum((2, 3)), pred.sum((2, 3)), truth.sum((2, 3))]
        self.parts.append(np.stack([np.asarray(c.cpu() if hasattr(c, "cpu") else c) for c in counts]))

    def dice(self, pooled: bool = False) -> list[float]:
        """Each class's mean per-image Dice (empty on empty is 1), or with `pooled` one Dice of all its pixels."""
        counts = np.concatenate(self.parts, axis=1)  # (3, images, classes)
        per_class = [Counts(*counts[:, :, k]) for k in range(counts.shape[2])]
        return [c.pooled_dice() if pooled else float(c.image_dice().mean()) for c in per_class]


def mask_counts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """(intersection, predicted area, true area) of two bool masks."""
    return np.count_nonzero(pred & truth), np.count_nonzero(pred), np.count_nonzero(truth)


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


def cut_to_threshold(cut: int) -> float:
    """The probability that `threshold_to_uint8` maps back to `cut` exactly (6 decimals, the same everywhere)."""
    return round(int(cut) / 255, 6)


def at_or_above(hist: np.ndarray) -> np.ndarray:
    """(N, 256) histograms -> (N, 256) pixels with a value >= each uint8 value."""
    return np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]


def counts_at_cuts(fg_hist: np.ndarray, bg_hist: np.ndarray, cuts=CUTS) -> Counts:
    """Counts per image (rows) and uint8 cut (columns): `inter` and `pred` are (N, cuts), `true` is (N, 1)."""
    cuts = np.asarray(cuts, dtype=np.int64)
    inter = at_or_above(fg_hist)[:, cuts]
    return Counts(inter, inter + at_or_above(bg_hist)[:, cuts], fg_hist.sum(axis=1)[:, None])
