"""Out-of-fold evaluation: gather every fold's OOF probabilities (the blend's), tune the post-processing, score it."""
from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from segpipe.core.labels import class_maps, of_class
from segpipe.evaluation import oof_files
from segpipe.evaluation.baselines import baselines, dice_lost, patients_lost
from segpipe.evaluation.metrics import counts_at_cuts, probability_histograms, threshold_to_uint8
from segpipe.evaluation.objects import search_objects
from segpipe.evaluation.postprocess import Rule, apply
from segpipe.evaluation.scores import OBJECT_METRICS, patients, scorer
from segpipe.evaluation.tune import Grids, Search, rule_counts, search_rule
from segpipe.evaluation.volumes import volume_order


def covered_rows(folds: pd.DataFrame, trained: Iterable[int]) -> np.ndarray:
    """The folds.csv rows that the OOF predictions of the `trained` folds cover, fold by fold."""
    return np.concatenate([np.flatnonzero(folds.fold.to_numpy() == k) for k in sorted(trained)])


def oof_histograms(folds: pd.DataFrame, oof_paths: dict[int, Path], masks_path: Path, cls: int | None = None):
    """Histogram the OOF probabilities of the trained folds (of class `cls`, when given) against the true masks.

    Returns (fg_hist, bg_hist, rows) where `rows` are the folds.csv rows covered, in the
    order the histograms are stacked (fold by fold, each in folds.csv order).
    """
    masks = np.load(masks_path, mmap_mode="r")
    fg, bg, rows = [], [], []
    for fold, path in sorted(oof_paths.items()):
        fold_rows, probs = oof_files.read_fold(folds, fold, path, masks)
        fold_fg, fold_bg = probability_histograms(class_maps(probs, cls), of_class(masks, cls)[fold_rows])
        fg.append(fold_fg)
        bg.append(fold_bg)
        rows.append(fold_rows)
    return np.concatenate(fg), np.concatenate(bg), np.concatenate(rows)


def oof_maps(folds: pd.DataFrame, oof_paths: dict[int, Path], masks_path: Path, cls: int | None = None,
             chunk: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(uint8 probability, {0,1} mask) of every OOF image (of class `cls`), in the order of `oof_histograms`."""
    masks = np.load(masks_path, mmap_mode="r")
    for fold, path in sorted(oof_paths.items()):
        fold_rows, probs = oof_files.read_fold(folds, fold, path, masks)
        probs, truths = class_maps(probs, cls), of_class(masks, cls)
        for start in range(0, len(fold_rows), chunk):  # a chunk at a time: memmaps stay small in RSS
            truth = truths[fold_rows[start:start + chunk]]
            yield from zip(np.asarray(probs[start:start + chunk]), truth)


def cross_validate(folds: pd.DataFrame, oof_paths: dict[int, Path], masks_path: Path,
                   grids: Grids, cls: int | None = None, metric: str = "dice") -> tuple[dict, Search]:
    """Tune the post-processing rule on all OOF images (of class `cls`, when given) for the declared
    `metric` (`segpipe.evaluation.scores`) and report CV scores under it.

    Returns the metrics (the declared score, overall and per-fold per-image Dice, per-patient Dice, Dice at a
    plain 0.5 cut for reference, the trivial submissions' Dice (`baselines`), where the
    Dice is lost per image (`lost`) and per patient (`patients_lost`), the rule and the score
    after each search step) and the search (the rule and the Dice-vs-threshold curve).
    """
    fg, bg, rows = oof_histograms(folds, oof_paths, masks_path, cls)
    maps = partial(oof_maps, folds, oof_paths, masks_path, cls)
    groups = folds.group.to_numpy()[rows]
    score = scorer(metric, patients(folds, rows))
    search = search_rule(fg, bg, maps, grids, score)
    if metric in OBJECT_METRICS:  # the pixel steps searched the stand-in; now the objects themselves
        search = _object_step(search, maps, grids, metric)
    counts = rule_counts(maps(), search.rule)
    per_image = counts.image_dice()
    plain = counts_at_cuts(fg, bg, [threshold_to_uint8(0.5)]).image_dice()[:, 0]  # no pass over the maps
    fold_of_row = folds.fold.to_numpy()[rows]
    metrics = {
        "metric": metric,
        "score": search.steps[-1]["score"] if metric in OBJECT_METRICS else float(score(counts)),
        "dice": float(per_image.mean()),
        "patient_dice": counts.group_dice(groups),
        "dice_at_0.5": float(plain.mean()),
        "baselines": baselines(counts.true, int(fg[0].sum() + bg[0].sum()), groups),
        "lost": dice_lost(counts),
        "patients_lost": patients_lost(counts, groups),
        "rule": dataclasses.asdict(search.rule),
        "search": search.steps,
        "images": int(len(rows)),
        "folds": {f"fold{k}": {"dice": float(per_image[fold_of_row == k].mean())} for k in sorted(oof_paths)},
    }
    return metrics, search


def _object_step(search: Search, maps, grids: Grids, metric: str) -> Search:
    """`search` with the object step (`segpipe.evaluation.objects.search_objects`) after its pixel steps."""
    rule, best, given = search_objects(maps, search.rule, grids.min_components, metric)
    steps = [{**step, "on": "iou_hits"} for step in search.steps]
    steps.append({"step": "objects: threshold and small components", "score": best, "kept": rule != search.rule,
                  "before": given, "threshold": rule.threshold, "min_component": rule.min_component})
    return dataclasses.replace(search, rule=rule, steps=steps)


def oof_volumes(folds: pd.DataFrame, oof_paths: dict[int, Path], masks_path: Path,
                rules: list[Rule]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(predicted, true) (D, H, W) bit masks of every OOF volume (`segpipe.evaluation.volumes`), each
    class's map cut by its rule: a volume at a time, each in one fold (its patient's)."""
    masks = np.load(masks_path, mmap_mode="r")
    for fold, path in sorted(oof_paths.items()):
        fold_rows, probs = oof_files.read_fold(folds, fold, path, masks)
        for positions in volume_order(folds, fold_rows):
            maps = np.asarray(probs[positions])  # in slice order
            maps = maps if maps.ndim == 4 else maps[:, None]  # a binary competition's one class
            pred = np.zeros((len(positions), *maps.shape[-2:]), np.uint8)
            for k, rule in enumerate(rules):
                pred |= np.stack([apply(m, rule) for m in maps[:, k]]).astype(np.uint8) << k
            yield pred, np.asarray(masks[fold_rows[positions]])
