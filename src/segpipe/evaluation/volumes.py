"""UW-Madison's metric: 0.4 × Dice + 0.6 × (1 − normalised 3D Hausdorff), over (volume, class) pairs.

A volume is one MRI session (a case/day: the `volume` column, else the patient `group`),
its slices stacked in slice order, a (D, H, W) mask per class. For each (volume, class):

- **Dice** of the 3D masks (pixels pooled over the volume's slices);
- **Hausdorff**: the symmetric Hausdorff distance between the predicted and the true voxels,
  in voxels (one unit per pixel and per slice), divided by the volume's diagonal
  sqrt(D² + H² + W²) and capped at 1; 1 when exactly one of the two is empty.

Pairs empty in both are dropped; the score is 0.4 × the mean Dice + 0.6 × (1 − the mean
Hausdorff) over the pairs left. Distances come from `scipy.ndimage.distance_transform_edt`
on the bounding box of the two masks: every voxel of either lies inside it, so the nearest
voxel of the other mask does too and the crop changes no distance, only the time.

The cross-validation scores volumes at the training size (the OOF maps' resolution), the
holdout at the scans' own: the normalisation by the diagonal makes the two comparable, not equal.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
from scipy import ndimage

from segpipe.core.labels import Labels
from segpipe.evaluation.scores import patients

DICE_WEIGHT, HAUSDORFF_WEIGHT = 0.4, 0.6
NAME = "0.4*dice+0.6*(1-hausdorff)"


def hausdorff(pred: np.ndarray, true: np.ndarray) -> float:
    """The symmetric Hausdorff distance of two (D, H, W) bool masks over the volume's diagonal, at most 1."""
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    if not pred.any() and not true.any():
        return 0.0
    if not pred.any() or not true.any():
        return 1.0
    diagonal = math.sqrt(sum(side ** 2 for side in pred.shape))
    box = _bounding_box(pred | true)
    pred, true = pred[box], true[box]
    far_pred = ndimage.distance_transform_edt(~true)[pred].max()  # each predicted voxel to the nearest true one
    far_true = ndimage.distance_transform_edt(~pred)[true].max()
    return min(float(max(far_pred, far_true)) / diagonal, 1.0)


def dice(pred: np.ndarray, true: np.ndarray) -> float:
    """Dice of two bool masks of any shape; 1 when both are empty."""
    total = int(np.count_nonzero(pred)) + int(np.count_nonzero(true))
    return 1.0 if total == 0 else 2.0 * np.count_nonzero(np.logical_and(pred, true)) / total


class VolumeScores:
    """The metric accumulated a volume at a time: `add` each (pred, true) pair of (D, H, W) uint8
    bit masks (bit k: class k; `segpipe.core.labels`), then `summary`."""

    def __init__(self, labels: Labels):
        self.labels = labels
        self.classes = list(labels.names)
        self.pairs: dict[str, list[tuple[float, float]]] = {name: [] for name in self.classes}
        self.volumes = 0

    def add(self, pred: np.ndarray, true: np.ndarray) -> None:
        self.volumes += 1
        for k, name in zip(self.labels.indices(), self.classes):
            pred_k, true_k = self.labels.bit(pred, k), self.labels.bit(true, k)
            if pred_k.any() or true_k.any():
                self.pairs[name].append((dice(pred_k, true_k), hausdorff(pred_k, true_k)))

    def summary(self) -> dict:
        """The score, its mean Dice and mean Hausdorff over the (volume, class) pairs not empty in
        both, the counts, and the same per class under `classes`."""
        scores = _summary([pair for name in self.classes for pair in self.pairs[name]])
        return {**scores, "metric": NAME, "volumes": self.volumes,
                "classes": {name: _summary(self.pairs[name]) for name in self.classes}}


def score_volumes(volumes: Iterable[tuple[np.ndarray, np.ndarray]], labels: Labels) -> dict:
    """`VolumeScores.summary` of the (pred, true) bit-mask volume pairs `volumes`."""
    scores = VolumeScores(labels)
    for pred, true in volumes:
        scores.add(pred, true)
    return scores.summary()


def volume_order(table, rows: np.ndarray) -> list[np.ndarray]:
    """The rows of each volume of `table` (columns volume or group, and slice), in slice order.

    `rows` are positions into `table`; each returned array holds positions into `rows`, one
    array per volume, volumes in the order they first appear.
    """
    key = patients(table, rows)
    slices = table["slice"].to_numpy()[rows]
    first = {name: i for i, name in reversed(list(enumerate(key)))}
    order = np.lexsort((slices, np.array([first[name] for name in key])))
    starts = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1]])
    return np.split(order, starts[1:])


def _summary(pairs: list[tuple[float, float]]) -> dict:
    if not pairs:  # nothing to score: every pair empty in both, which the metric drops
        return {"score": 1.0, "dice": 1.0, "hausdorff": 0.0, "pairs": 0}
    mean_dice, mean_distance = (float(np.mean(column)) for column in zip(*pairs))
    return {"score": DICE_WEIGHT * mean_dice + HAUSDORFF_WEIGHT * (1.0 - mean_distance),
            "dice": mean_dice, "hausdorff": mean_distance, "pairs": len(pairs)}


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...]:
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)
