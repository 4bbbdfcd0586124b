"""Multi-label competitions: each class tuned and scored on its own, then averaged.

Severstal's metric is the mean Dice over (image, class) pairs; every class covers the same
images, so it is the mean over classes of each class's mean per-image Dice. Each class gets
its own post-processing rule, searched out of fold with the binary search
(`segpipe.evaluation.tune`) on that class's maps and masks, every step kept only if it raises
that class's OOF score; the rules go into one json, a rule per class by name, which submit
and report read back with `segpipe.evaluation.postprocess.read_rules`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from segpipe.evaluation.cv import cross_validate
from segpipe.evaluation.tune import Grids, Search

MEANS = ("score", "dice", "patient_dice", "dice_at_0.5")  # the scores averaged over the classes


def cross_validate_classes(folds: pd.DataFrame, oof_paths: dict[int, Path], masks_path: Path,
                           grids: Grids | Sequence[Grids], classes: Sequence[str],
                           metric: str = "dice") -> tuple[dict, list[Search]]:
    """`cross_validate` class by class, with one `grids` for all or one per class: the metrics (the
    means, each fold's mean, and each class's own metrics under `classes`) and each class's search."""
    per_class, searches = {}, []
    for k, name in enumerate(classes):
        grid = grids if isinstance(grids, Grids) else grids[k]
        per_class[name], search = cross_validate(folds, oof_paths, masks_path, grid, cls=k, metric=metric)
        searches.append(search)
    first = per_class[classes[0]]
    metrics = {"metric": metric, **{key: float(np.mean([m[key] for m in per_class.values()])) for key in MEANS}}
    metrics["baselines"] = {key: float(np.mean([m["baselines"][key] for m in per_class.values()]))
                            for key in first["baselines"]}
    metrics["images"] = first["images"]
    metrics["folds"] = {fold: {"dice": float(np.mean([m["folds"][fold]["dice"] for m in per_class.values()]))}
                        for fold in first["folds"]}
    metrics["classes"] = per_class
    return metrics, searches


def threshold_curve(searches: Sequence[Search], classes: Sequence[str]) -> list[dict]:
    """The score against threshold: the mean over classes (`score`) and each class's (`score_<class>`)."""
    rows = []
    for points in zip(*(search.curve for search in searches)):
        row = {"threshold": points[0]["threshold"], "score": float(np.mean([p["score"] for p in points]))}
        row.update({f"score_{name}": p["score"] for name, p in zip(classes, points)})
        rows.append(row)
    return rows
