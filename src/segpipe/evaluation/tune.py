"""Search the post-processing rule on the out-of-fold predictions, one step at a time.

As nnU-Net does, each step is kept only if it raises the OOF score (the competition's declared
score, `segpipe.evaluation.scores`: mean per-image Dice, or per-patient Dice where the
leaderboard pools a patient's slices); otherwise the rule stays as it was:

1. pixel threshold (every one of the 255 uint8 cuts) x gate area, the gate at the threshold
   itself (an image whose prediction is smaller than the area is emptied); gate area 0 is
   among them, so the rule never scores below the best plain cut;
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

from segpipe.evaluation.metrics import CUTS, Counts, at_or_above, counts_at_cuts, cut_to_threshold, mask_counts
from segpipe.evaluation.postprocess import Rule, apply, components, cut, kept_components
from segpipe.evaluation.scores import Scorer, scorer as scorer_of

Maps = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]  # yields (uint8 prob, {0,1} mask) per OOF image


@dataclasses.dataclass(frozen=True)
class Grids:
    """What the search tries besides every uint8 cut: gate areas (0, no gate, is always tried), gate
    thresholds, component sizes and counts."""

    gate_areas: list[int]
    gate_thresholds: list[float]
    min_components: list[int]
    keep_largest: list[int]


@dataclasses.dataclass(frozen=True)
class Search:
    """The chosen rule, the score after each step (and whether it was kept), and the score against threshold."""

    rule: Rule
    steps: list[dict]
    curve: list[dict]


def search_rule(fg_hist: np.ndarray, bg_hist: np.ndarray, maps: Maps, grids: Grids,
                score: Scorer = scorer_of("dice")) -> Search:
    """Search the rule step by step on the OOF histograms (steps 1-2) and components (3-4), each step
    kept only if it raises `score` (per-image Dice unless said)."""
    # 1. every uint8 cut x gate area, the gate at the threshold itself; area 0 is always among them, so
    # the result is never below the best plain cut (the blend's own score)
    areas = sorted({0, *grids.gate_areas})
    at_cut = counts_at_cuts(fg_hist, bg_hist)  # (N, 255)
    table = np.stack([_gated(at_cut, at_cut.pred >= a, score) for a in areas])  # (gate areas, cuts)
    best_a, best_c = np.unravel_index(int(np.argmax(table)), table.shape)
    threshold = cut_to_threshold(CUTS[best_c])
    rule = Rule(threshold=threshold, gate_threshold=threshold, gate_area=int(areas[best_a]))
    best = float(table[best_a, best_c])
    steps = [{"step": "threshold and gate area", "score": best, "kept": True, "gate_area": rule.gate_area}]
    curve = [{"threshold": cut_to_threshold(c), "score": float(d), "score_no_min_area": float(d0)}
             for c, d, d0 in zip(CUTS, table[best_a], table[0])]

    # 2. a gate of its own (does the image keep a mask at all?) with the pixel threshold searched again:
    # under a gate, a lower threshold may pay (the SIIM-ACR triplet is tuned jointly)
    above = at_or_above(fg_hist + bg_hist)  # pixels >= each uint8 value
    options, scores = [], []
    for g in grids.gate_thresholds:
        below = CUTS < cut(g)
        for a in (a for a in areas if a):
            by_cut = _gated(at_cut, (above[:, cut(g)] >= a)[:, None], score)
            options += [dict(threshold=cut_to_threshold(c), gate_threshold=g, gate_area=int(a)) for c in CUTS[below]]
            scores += [float(s) for s in by_cut[below]]
    best, rule, kept = _keep_if_better(best, rule, scores, options)
    steps.append({"step": "gate", "score": best, "kept": kept})

    # 3 and 4: components at the chosen threshold
    image, area, overlap = _component_table(maps, rule.threshold)
    true_area = fg_hist.sum(axis=1)
    gate = above[:, cut(rule.gate_threshold)] >= rule.gate_area
    for name, field, values in (("small components", "min_component", grids.min_components),
                                ("largest components", "keep_largest", grids.keep_largest)):
        options = [dict(**{field: int(v)}) for v in values if v]
        scores = [float(score(_component_counts(image, area, overlap, true_area, gate, dataclasses.replace(rule, **o))))
                  for o in options]
        best, rule, kept = _keep_if_better(best, rule, scores, options)
        steps.append({"step": name, "score": best, "kept": kept})
    return Search(rule, steps, curve)


def rule_counts(maps: Iterable[tuple[np.ndarray, np.ndarray]], rule: Rule) -> Counts:
    """Per-image counts under `rule`, by applying it to each map."""
    table = np.array([mask_counts(apply(prob, rule), mask.astype(bool)) for prob, mask in maps],
                     dtype=np.int64).reshape(-1, 3)
    return Counts(table[:, 0], table[:, 1], table[:, 2])


def _gated(at_cut: Counts, keep: np.ndarray, score: Scorer) -> np.ndarray:
    """The score at every cut when only the images where `keep` keep their masks."""
    return score(Counts(at_cut.inter * keep, at_cut.pred * keep, at_cut.true))


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


def _component_counts(image: np.ndarray, area: np.ndarray, overlap: np.ndarray, true: np.ndarray,
                      gate: np.ndarray, rule: Rule) -> Counts:
    """Per-image counts when `rule`'s component steps keep only some of the components."""
    keep = kept_components(area, rule.min_component, rule.keep_largest, images=image)
    n = len(true)
    inter = np.bincount(image, weights=overlap * keep, minlength=n)
    pred = np.bincount(image, weights=area * keep, minlength=n)
    return Counts(inter * gate, pred * gate, true)
