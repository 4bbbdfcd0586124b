"""Search the post-processing rule on the out-of-fold predictions, one step at a time.

As nnU-Net does, each step is kept only if it raises the OOF score (mean per-image Dice,
the competition metric); otherwise the rule stays as it was:

1. pixel threshold x gate area, the gate at the threshold itself (an image whose
   prediction is smaller than the area is emptied);
2. a separate, higher gate threshold x gate area, with the pixel threshold searched
   again under it (the SIIM-ACR triplet, tuned jointly);
3. removal of connected components smaller than a size;
4. only the largest k components.

Steps 1 and 2 never threshold an image: a 256-bin histogram of each image's probabilities,
split by truth, gives intersection and predicted area at every cut at once. Steps 3 and 4
label each image's components once, at the chosen threshold, and score every size and k
from the components' areas and overlaps with the truth.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Iterator

import numpy as np

from segpipe.evaluation.metrics import counts_at_thresholds, image_dice
from segpipe.evaluation.postprocess import Rule, apply, components, cut

Maps = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]  # yields (uint8 prob, {0,1} mask) per OOF image


@dataclasses.dataclass(frozen=True)
class Grids:
    thresholds: list[float]
    gate_areas: list[int]
    gate_thresholds: list[float]
    min_components: list[int]
    keep_largest: list[int]


def search_rule(fg_hist: np.ndarray, bg_hist: np.ndarray, maps: Maps, grids: Grids) -> tuple[Rule, list[dict], list]:
    """The best rule, the score after each step (and whether it was kept), and the threshold curve."""
    # 1. threshold x gate area, the gate at the threshold itself (the earlier "min area")
    true_area = fg_hist.sum(axis=1)
    inter, pred = counts_at_thresholds(fg_hist, bg_hist, grids.thresholds)  # (N, thresholds)
    table = np.stack([image_dice(inter * (pred >= a), pred * (pred >= a), true_area[:, None]).mean(axis=0)
                      for a in grids.gate_areas])  # (gate areas, thresholds)
    best_a, best_t = np.unravel_index(int(np.argmax(table)), table.shape)
    rule = Rule(threshold=grids.thresholds[best_t], gate_threshold=grids.thresholds[best_t],
                gate_area=int(grids.gate_areas[best_a]))
    best = float(table[best_a, best_t])
    steps = [{"step": "threshold and gate area", "dice": best, "kept": True, "gate_area": rule.gate_area}]
    curve = [{"threshold": t, "dice": float(d), "dice_no_min_area": float(d0)}
             for t, d, d0 in zip(grids.thresholds, table[best_a], table[0])]

    # 2. a gate of its own (does the image keep a mask at all?) with the pixel threshold searched again:
    # under a gate, a lower threshold may pay (the SIIM-ACR triplet is tuned jointly)
    above = np.cumsum((fg_hist + bg_hist)[:, ::-1], axis=1)[:, ::-1]  # pixels >= each uint8 value
    options, scores = [], []
    for g in grids.gate_thresholds:
        for a in (a for a in grids.gate_areas if a):
            keep = (above[:, cut(g)] >= a)[:, None]
            by_threshold = image_dice(inter * keep, pred * keep, true_area[:, None]).mean(axis=0)
            for t, score in zip(grids.thresholds, by_threshold):
                if t < g:
                    options.append(dict(threshold=t, gate_threshold=g, gate_area=int(a)))
                    scores.append(float(score))
    best, rule, kept = _keep_if_better(best, rule, scores, options)
    steps.append({"step": "gate", "dice": best, "kept": kept})

    # 3 and 4: components at the chosen threshold
    image, area, overlap = _component_table(maps, rule.threshold)
    gate = above[:, cut(rule.gate_threshold)] >= rule.gate_area
    for name, field, values in (("small components", "min_component", grids.min_components),
                                ("largest components", "keep_largest", grids.keep_largest)):
        options = [dict(**{field: int(v)}) for v in values if v]
        scores = [_component_dice(image, area, overlap, true_area, gate, dataclasses.replace(rule, **o)).mean()
                  for o in options]
        best, rule, kept = _keep_if_better(best, rule, scores, options)
        steps.append({"step": name, "dice": best, "kept": kept})
    return rule, steps, curve


def rule_counts(maps: Iterable[tuple[np.ndarray, np.ndarray]], rule: Rule) -> tuple[np.ndarray, ...]:
    """Per image (intersection, predicted area, true area) under `rule`, by applying it."""
    counts = []
    for prob, mask in maps:
        pred, truth = apply(prob, rule), mask.astype(bool)
        counts.append((np.count_nonzero(pred & truth), np.count_nonzero(pred), np.count_nonzero(truth)))
    table = np.array(counts, dtype=np.int64).reshape(-1, 3)
    return table[:, 0], table[:, 1], table[:, 2]


def _keep_if_better(best: float, rule: Rule, scores: list[float], options: list[dict]) -> tuple[float, Rule, bool]:
    """The first best of `options` (rule changes) if it beats `best`; ties keep the simpler rule."""
    if not scores or max(scores) <= best + 1e-12:
        return best, rule, False
    i = int(np.argmax(scores))
    return float(scores[i]), dataclasses.replace(rule, **options[i]), True


def _component_table(maps: Maps, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every component of every image at `threshold`: its image, area and overlap with the truth."""
    images, areas, overlaps = [], [], []
    for i, (prob, mask) in enumerate(maps()):
        labels, area = components(prob >= cut(threshold))
        overlap = np.bincount(labels[mask.astype(bool)], minlength=len(area) + 1)[1:]
        images.append(np.full(len(area), i))
        areas.append(area)
        overlaps.append(overlap)
    return tuple(np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
                 for parts in (images, areas, overlaps))


def _component_dice(image: np.ndarray, area: np.ndarray, overlap: np.ndarray, true: np.ndarray,
                    gate: np.ndarray, rule: Rule) -> np.ndarray:
    """Per-image Dice when `rule`'s component steps keep only some of the components."""
    keep = area >= rule.min_component
    if rule.keep_largest:
        order = np.lexsort((np.arange(len(area)), -area, image))  # per image: largest first, then label order
        first = np.searchsorted(image[order], image[order])  # where each image's run starts
        rank = np.empty(len(area), np.int64)
        rank[order] = np.arange(len(area)) - first
        keep &= rank < rule.keep_largest
    n = len(true)
    inter = np.bincount(image, weights=overlap * keep, minlength=n)
    pred = np.bincount(image, weights=area * keep, minlength=n)
    return image_dice(inter * gate, pred * gate, true)
