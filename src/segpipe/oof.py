"""Out-of-fold evaluation: gather every fold's OOF probabilities, tune and score the cut."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from segpipe.errors import InputError
from segpipe.metrics import probability_histograms, scores_at, search_threshold


def oof_histograms(folds: pd.DataFrame, oof_paths: dict[int, Path], masks_path: Path):
    """Histogram the OOF probabilities of the trained folds against the true masks.

    Returns (fg_hist, bg_hist, rows) where `rows` are the folds.csv rows covered, in the
    order the histograms are stacked (fold by fold, each in folds.csv order).
    """
    masks = np.load(masks_path, mmap_mode="r")
    fg, bg, rows = [], [], []
    for fold, path in sorted(oof_paths.items()):
        fold_rows = np.flatnonzero(folds.fold.to_numpy() == fold)
        try:
            probs = np.load(path, mmap_mode="r")
        except FileNotFoundError:
            raise InputError(f"{path}: OOF probabilities of fold {fold} missing; "
                             f"run `dvc repro train@{fold}`") from None
        except (OSError, ValueError) as err:  # truncated, not an .npy
            raise InputError(f"{path}: OOF probabilities of fold {fold} unreadable ({err}); "
                             f"rerun `dvc repro train@{fold}`") from None
        if probs.shape[0] != len(fold_rows) or probs.shape[1:] != masks.shape[1:]:
            raise InputError(f"{path}: OOF shape {probs.shape} does not match fold {fold} of the folds file "
                             f"({len(fold_rows)} images of {masks.shape[1:]}); rerun `dvc repro train@{fold}`")
        fold_fg, fold_bg = probability_histograms(probs, masks[fold_rows])
        fg.append(fold_fg)
        bg.append(fold_bg)
        rows.append(fold_rows)
    return np.concatenate(fg), np.concatenate(bg), np.concatenate(rows)


def cross_validate(folds: pd.DataFrame, oof_paths: dict[int, Path], masks_path: Path,
                   thresholds: list[float], min_areas: list[int]) -> tuple[dict, list[dict]]:
    """Tune (threshold, min_area) on all OOF images and report CV scores.

    Returns the metrics (overall and per-fold per-image Dice, per-patient Dice, the chosen
    cut, and Dice at a plain 0.5 cut for reference) and the Dice-vs-threshold curve.
    """
    fg, bg, rows = oof_histograms(folds, oof_paths, masks_path)
    best = search_threshold(fg, bg, thresholds, min_areas)
    groups = folds.group.to_numpy()[rows]
    per_image, per_patient = scores_at(fg, bg, groups, best["threshold"], best["min_area"])
    plain, _ = scores_at(fg, bg, groups, 0.5, 0)
    fold_of_row = folds.fold.to_numpy()[rows]
    metrics = {
        "dice": float(per_image.mean()),
        "patient_dice": float(np.mean(list(per_patient.values()))),
        "dice_at_0.5": float(plain.mean()),
        "threshold": best["threshold"],
        "min_area": best["min_area"],
        "images": int(len(rows)),
        "folds": {f"fold{k}": {"dice": float(per_image[fold_of_row == k].mean())} for k in sorted(oof_paths)},
    }
    return metrics, best["curve"]
