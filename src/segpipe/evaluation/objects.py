"""Object scores: the competitions that count objects (ships, nuclei) rather than pixels.

A prediction's objects are its instances: the rows of a per-instance submission, or the
8-connected components of a mask (`postprocess.components`). The truth's objects are the
connected components of the true mask (touching objects of one mask are one object, as in
a union mask). At each IoU threshold t of 0.5, 0.55, ..., 0.95 a predicted object hits a
true one when their IoU is strictly above t; above 0.5 a pair can hit only each other (the
objects of each side are disjoint), so the hits are a matching and TP(t) is their count.
Per image, FP(t) = predicted - TP(t) and FN(t) = true - TP(t), and:

- `object_f2` (Airbus Ship Detection): the mean over t of F2 = 5 TP / (5 TP + 4 FN + FP);
- `object_ap` (2018 Data Science Bowl): the mean over t of TP / (TP + FP + FN).

An image with no true and no predicted object scores 1, one with either side empty 0. The
competition's score is the mean over images.

`search_objects` is the post-processing step these metrics add: the pixel threshold and the
smallest component kept, scored on objects (a size rule splits nothing, but it drops the
specks that each cost a false positive).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from segpipe.evaluation.postprocess import Rule, apply, components, cut, kept_components
from segpipe.evaluation.scores import IOU_THRESHOLDS

THRESHOLDS = np.round(np.arange(6, 17) * 0.05, 2)  # the pixel thresholds the object step tries: 0.3 .. 0.8


@dataclass(frozen=True)
class ObjectCounts:
    """Per image: true positives at each IoU threshold (N, 10), predicted and true objects (N,)."""

    hits: np.ndarray
    pred: np.ndarray
    true: np.ndarray

    def image_scores(self, metric: str) -> np.ndarray:
        """Each image's score under `metric` (`object_f2` or `object_ap`)."""
        tp = self.hits.astype(np.float64)
        fp = self.pred[:, None] - tp
        fn = self.true[:, None] - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            per_t = 5 * tp / (5 * tp + 4 * fn + fp) if metric == "object_f2" else tp / (tp + fp + fn)
        empty = (self.pred + self.true) == 0
        return np.where(empty, 1.0, np.nan_to_num(per_t, nan=0.0).mean(axis=1))

    def score(self, metric: str) -> float:
        return float(self.image_scores(metric).mean()) if len(self.pred) else 0.0


def overlaps(pred_labels: np.ndarray, true_labels: np.ndarray, n_pred: int, n_true: int) -> np.ndarray:
    """The (n_pred + 1, n_true + 1) pixel counts of every (predicted, true) label pair, 0 the background."""
    seen = (pred_labels > 0) | (true_labels > 0)
    pairs = pred_labels[seen].astype(np.int64) * (n_true + 1) + true_labels[seen]
    return np.bincount(pairs, minlength=(n_pred + 1) * (n_true + 1)).reshape(n_pred + 1, n_true + 1)


def hits(table: np.ndarray, keep: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """(TP at each IoU threshold, predicted objects, true objects) from an `overlaps` table, the
    predicted objects limited to `keep` (a bool per predicted object) when given."""
    inter = table[1:, 1:]
    pred_area = table[1:].sum(axis=1)
    true_area = table[:, 1:].sum(axis=0)
    if keep is not None:
        inter, pred_area = inter[keep], pred_area[keep]
    union = pred_area[:, None] + true_area[None, :] - inter
    above_half = inter * 2 > union  # only pairs above 0.5 can hit
    iou = inter[above_half] / union[above_half]
    return (iou[:, None] > IOU_THRESHOLDS).sum(axis=0), len(pred_area), len(true_area)


def instance_counts(pairs: Iterable[tuple[np.ndarray, int, np.ndarray]]) -> ObjectCounts:
    """ObjectCounts of (predicted labels, predicted objects, true bool mask) per image; the truth's
    objects are its components."""
    rows = []
    for pred_labels, n_pred, truth in pairs:
        true_labels, true_areas = components(truth)
        rows.append(hits(overlaps(pred_labels, true_labels, n_pred, len(true_areas))))
    return _stacked(rows)


def rule_object_counts(maps: Iterable[tuple[np.ndarray, np.ndarray]], rule: Rule) -> ObjectCounts:
    """ObjectCounts of (uint8 probability, true mask) pairs, each map cut by `rule`, its components the objects."""
    labelled = ((components(apply(prob, rule)), mask) for prob, mask in maps)
    return instance_counts((labels, len(areas), mask.astype(bool)) for (labels, areas), mask in labelled)


def search_objects(maps, rule: Rule, min_components: Iterable[int], metric: str) -> tuple[Rule, float, float]:
    """The object step of the post-processing search: every pixel threshold of `THRESHOLDS` (and the
    rule's own) x every smallest component kept of `min_components` (and 0), under the rule's gate.

    `maps` is a callable yielding (uint8 probability, true mask) per OOF image. Returns the best
    rule, its score and the score of `rule` as given; a tie keeps the given rule.
    """
    thresholds = sorted({*THRESHOLDS.tolist(), rule.threshold})
    sizes = sorted({0, rule.min_component, *(int(s) for s in min_components)})
    rows: dict[tuple[float, int], list] = {(t, s): [] for t in thresholds for s in sizes}
    for prob, mask in maps():
        truth_labels, truth_areas = components(mask.astype(bool))
        gated = rule.gate_area and np.count_nonzero(prob >= cut(rule.gate_threshold)) < rule.gate_area
        for t in thresholds:
            labels, areas = components(np.zeros(prob.shape, bool) if gated else prob >= cut(t))
            table = overlaps(labels, truth_labels, len(areas), len(truth_areas))
            for s in sizes:
                keep = kept_components(areas, s, rule.keep_largest)
                rows[t, s].append(hits(table, keep))
    scores = {key: _stacked(found).score(metric) for key, found in rows.items()}
    given = scores[rule.threshold, rule.min_component]
    best = max(scores, key=lambda key: (scores[key], key == (rule.threshold, rule.min_component)))
    if scores[best] <= given + 1e-12:
        return rule, given, given
    return dataclasses.replace(rule, threshold=best[0], min_component=best[1]), scores[best], given


def _stacked(rows: list[tuple[np.ndarray, int, int]]) -> ObjectCounts:
    if not rows:
        return ObjectCounts(np.zeros((0, len(IOU_THRESHOLDS)), np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    found, pred, true = zip(*rows)
    return ObjectCounts(np.stack(found), np.array(pred), np.array(true))
