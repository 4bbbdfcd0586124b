"""Score a submission against a labelled holdout test set: a private leaderboard you can read locally."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from segpipe import rle
from segpipe.evaluation.baselines import dice_lost, patients_lost
from segpipe.evaluation.metrics import Counts, mask_counts


def score_holdout(path: Path, competition) -> dict:
    """Score a submission against a labelled holdout test set at the original resolution.

    Returns mean per-image Dice (empty on empty scores 1), per-patient Dice (pixels pooled
    over each patient's slices), the image count, and where the Dice is lost per image and
    per patient (as in metrics/cv.json): a leaderboard you can read locally.
    """
    spec = competition.submission
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    pixels = []
    for image_id, encoded, mask_file in zip(table[spec.id_column], table[spec.rle_column], competition.test["mask"]):
        truth = competition.read_mask(Path(mask_file))
        pixels.append(mask_counts(rle.decode(encoded, truth.shape, order=spec.rle_order), truth))
    table = np.array(pixels, dtype=np.int64).reshape(-1, 3)
    counts = Counts(table[:, 0], table[:, 1], table[:, 2])
    groups = competition.test.group.to_numpy()
    return {
        "dice": float(counts.image_dice().mean()),
        "patient_dice": counts.group_dice(groups),
        "images": len(counts),
        "patients": len(set(groups)),
        "lost": dice_lost(counts),
        "patients_lost": patients_lost(counts, groups),
    }
