"""The trivial submissions a CV must beat: all empty, and (for dense masks) all foreground.

A model that learned nothing on a set of mostly empty images still scores the all-empty
Dice (every empty image counts 1), so a CV is only news when it is above these. The
threshold and submit stages warn when it is not; a fold whose val Dice never rose above
its own all-empty score is named in the train log and in its metrics.
"""
from __future__ import annotations

import numpy as np

from segpipe.evaluation.metrics import Counts

MARGIN = 0.01  # a CV within this of a baseline has not beaten it
POOR = 0.5  # a patient under this Dice counts as failed in `patients_lost`
WORST = 5  # patients listed by name in `patients_lost`


def baselines(true: np.ndarray, pixels: int, groups: np.ndarray | None = None) -> dict:
    """Per-image (and per-group) Dice of the all-empty and the all-foreground submissions.

    `true` holds each image's true foreground area, `pixels` an image's pixel count.
    """
    true = np.asarray(true, dtype=np.int64)
    zeros = np.zeros_like(true)
    found = {"empty": Counts(zeros, zeros, true), "full": Counts(true, np.full_like(true, pixels), true)}
    scores = {}
    for name, counts in found.items():
        scores[f"{name}_dice"] = float(counts.image_dice().mean())
        if groups is not None:
            scores[f"{name}_patient_dice"] = counts.group_dice(groups)
    return scores


def not_beaten(score: float, scores: dict, key: str = "dice") -> list[str]:
    """The baselines (named as in `baselines`) that `score` does not beat by MARGIN."""
    return [name for name in ("empty", "full") if f"{name}_{key}" in scores
            and score < scores[f"{name}_{key}"] + MARGIN]


def warning(what: str, score: float, scores: dict, key: str = "dice") -> str | None:
    """One line saying `what` scores no better than a trivial submission, or None when it does."""
    beaten_not = not_beaten(score, scores, key)
    if not beaten_not:
        return None
    described = ", ".join(f"all-{name} {scores[f'{name}_{key}']:.4f}" for name in beaten_not)
    return (f"warning: {what} {score:.4f} does not beat the trivial submission ({described}): the model has "
            "learned (almost) nothing; try a higher train.lr or more train.steps (docs/plan.md)")


def dice_lost(counts: Counts) -> dict:
    """Where the per-image Dice is lost: 1 - mean Dice split over the kinds of image.

    `false_positive`: empty images given a mask (each costs 1); `missed`: images with
    foreground predicted empty (each costs 1); `boundary`: images where both have pixels
    (each costs 1 - its Dice). The three sum to 1 - the mean per-image Dice.
    """
    dice = counts.image_dice()
    truth, pred = counts.true > 0, counts.pred > 0
    kinds = {"false_positive": ~truth & pred, "missed": truth & ~pred, "boundary": truth & pred}
    return {name: float((1 - dice[where]).sum() / len(dice)) for name, where in kinds.items()}


def patients_lost(counts: Counts, groups: np.ndarray) -> dict:
    """Where the per-patient Dice is lost: its spread over patients and the worst ones by name.

    `poor_share` is the part of 1 - mean patient Dice that the patients under POOR account
    for; `worst` lists the WORST lowest, with their true and predicted pixel totals (a
    predicted total near 0 is a patient whose lesion was missed, not outlined badly).
    """
    table = counts.group_totals(groups).sort_values(["dice", "true"], kind="stable")
    poor = table.dice < POOR
    return {
        "patients": int(len(table)),
        "quantiles": {f"p{q}": float(table.dice.quantile(q / 100)) for q in (10, 25, 50)},
        "poor": int(poor.sum()),
        "poor_share": float((1 - table.dice[poor]).sum() / len(table)),
        "worst": [{"group": str(group), "dice": float(row.dice), "true_pixels": int(row.true),
                   "pred_pixels": int(row.pred)} for group, row in table.head(WORST).iterrows()],
    }
