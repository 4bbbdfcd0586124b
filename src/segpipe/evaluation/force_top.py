"""Competitions where every image has a label (Understanding Clouds): the top class forced on.

When every training image holds at least one class, an image the rules leave with no class
at all is a sure loss on some class. The rule `force_top` then gives that image the class
the model is surest of (the highest maximum probability; the lower class on a tie), under
its own rule with the empty gate lifted: its threshold, small-component removal and
keep-largest still apply, so a map with nothing over the threshold stays empty.

The threshold stage searches it after the per-class rules, out of fold: it is considered
only when every OOF image is labelled, and kept only if it raises the mean Dice over
(image, class) pairs. `apply_classes` is the one place the rules meet a multi-class map:
the search scores it and submit writes it.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np

from segpipe.core.labels import Labels
from segpipe.evaluation.metrics import Counts, mask_counts
from segpipe.evaluation.postprocess import Rule, apply


def top_class(maps: Sequence[np.ndarray]) -> int:
    """The class whose map has the highest probability (the lower class on a tie)."""
    return int(np.argmax([int(np.max(m)) for m in maps]))


def apply_classes(maps: Sequence[np.ndarray], rules: Sequence[Rule], force_top: bool = False,
                  area_scale: float = 1.0) -> list[np.ndarray]:
    """Each class's (H, W) bool mask under its rule; with `force_top`, an image left with none
    gets its top class under that class's rule without the gate."""
    masks = [apply(prob, rule, area_scale) for prob, rule in zip(maps, rules, strict=True)]
    return forced_on(maps, masks, rules, area_scale) if force_top else masks


def forced_on(maps: Sequence[np.ndarray], masks: list[np.ndarray], rules: Sequence[Rule],
              area_scale: float = 1.0) -> list[np.ndarray]:
    """`masks` (the rules' masks of `maps`), or where none holds a pixel, the top class's under its rule
    without the gate in its place."""
    if any(mask.any() for mask in masks):
        return masks
    k = top_class(maps)
    return [apply(maps[k], dataclasses.replace(rules[k], gate_area=0), area_scale) if i == k else mask
            for i, mask in enumerate(masks)]


def search_force_top(maps: Iterable[tuple[np.ndarray, np.ndarray]], rules: Sequence[Rule],
                     labels: Labels) -> dict | None:
    """Score `force_top` on (C, H, W) uint8 maps and their (H, W) bit masks: None when some image has no
    label (the rule does not apply), else the mean Dice over classes without and with it, each class's
    with it, the images it changes, and whether it is kept (only if it raises the Dice)."""
    without, forced = [], []
    for probs, truth in maps:
        if not truth.any():
            return None
        truths = list(labels.split(truth))
        plain = apply_classes(probs, rules)
        masks = forced_on(probs, plain, rules)
        without.append([mask_counts(m, t) for m, t in zip(plain, truths)])
        forced.append([mask_counts(m, t) for m, t in zip(masks, truths)])
    if not without:
        return None
    before, after = (_class_dice(np.asarray(c, np.int64)) for c in (without, forced))
    changed = int(sum(a != b for a, b in zip(without, forced)))
    return {"step": "force_top", "dice_without": float(before.mean()), "dice": float(after.mean()),
            "classes": {name: float(d) for name, d in zip(labels.classes, after)}, "images_changed": changed,
            "kept": bool(after.mean() > before.mean())}


def _class_dice(counts: np.ndarray) -> np.ndarray:
    """(images, classes, 3) counts -> each class's mean per-image Dice."""
    return np.array([Counts(*counts[:, k].T).image_dice().mean() for k in range(counts.shape[1])])
