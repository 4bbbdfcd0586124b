"""Score a submission against a labelled holdout test set: a private leaderboard you can read locally."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from segpipe import rle
from segpipe.core.errors import InputError
from segpipe.evaluation.baselines import dice_lost, patients_lost
from segpipe.evaluation.metrics import Counts, mask_counts
from segpipe.evaluation.volumes import score_volumes, volume_order


def score_holdout(path: Path, competition) -> dict:
    """Score a submission against a labelled holdout test set at the original resolution.

    Returns mean per-image Dice (empty on empty scores 1), per-patient Dice (pixels pooled
    over each patient's slices), the image count, and where the Dice is lost per image and
    per patient (as in metrics/cv.json): a leaderboard you can read locally. With classes
    (one row per image and class, in class order), each class is scored on its own under
    `classes` and the Dice are their means.
    """
    spec = competition.submission
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    classes = competition.classes
    per_image = max(len(classes), 1)
    pixels = {k: [] for k in range(per_image)}
    for i, mask_file in enumerate(competition.test["mask"]):
        truth = competition.read_mask(mask_file)
        for k in range(per_image):
            encoded = table[spec.rle_column].iloc[i * per_image + k]
            true = ((truth >> k) & 1 > 0) if classes else truth
            pixels[k].append(mask_counts(rle.decode(encoded, truth.shape, order=spec.rle_order), true))
    groups = competition.test.group.to_numpy()
    scores = [_scores(pixels[k], groups) for k in range(per_image)]
    summary = scores[0] if not classes else {
        "dice": float(np.mean([s["dice"] for s in scores])),
        "patient_dice": float(np.mean([s["patient_dice"] for s in scores])),
        "images": scores[0]["images"], "patients": scores[0]["patients"],
        "classes": dict(zip(classes, scores))}
    if competition.metric == "dice_hausdorff":
        summary["volumes"] = score_volumes(_volumes(table, competition), classes or ["mask"])
    return summary


def _volumes(table: pd.DataFrame, competition):
    """(predicted, true) (D, H, W) bit masks of each test volume at the scans' own size, a volume at a time."""
    spec, test = competition.submission, competition.test
    per_image = max(len(competition.classes), 1)
    for positions in volume_order(test, np.arange(len(test))):
        pred, true = [], []
        for i in positions:
            truth = competition.read_mask(test["mask"].iloc[i])
            rows = table[spec.rle_column].iloc[i * per_image:(i + 1) * per_image]
            pred.append(sum((rle.decode(encoded, truth.shape, order=spec.rle_order).astype(np.uint8) << k
                             for k, encoded in enumerate(rows)), np.zeros(truth.shape, np.uint8)))
            true.append(truth if competition.classes else (truth > 0).astype(np.uint8))
        if len({m.shape for m in true}) > 1:
            raise InputError(f"{competition.name}: the slices of volume "
                             f"{test['volume' if 'volume' in test else 'group'].iloc[positions[0]]} differ in size")
        yield np.stack(pred), np.stack(true)


def _scores(pixels: list, groups: np.ndarray) -> dict:
    table = np.array(pixels, dtype=np.int64).reshape(-1, 3)
    counts = Counts(table[:, 0], table[:, 1], table[:, 2])
    return {
        "dice": float(counts.image_dice().mean()),
        "patient_dice": counts.group_dice(groups),
        "images": len(counts),
        "patients": len(set(groups)),
        "lost": dice_lost(counts),
        "patients_lost": patients_lost(counts, groups),
    }
