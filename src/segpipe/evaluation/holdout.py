"""Score a submission against a labelled holdout test set: a private leaderboard you can read locally."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from segpipe import rle
from segpipe.cache.images import resize_labels
from segpipe.core.errors import InputError
from segpipe.evaluation.baselines import dice_lost, patients_lost
from segpipe.evaluation.metrics import Counts, mask_counts
from segpipe.evaluation.objects import instance_counts
from segpipe.evaluation.postprocess import components
from segpipe.evaluation.scores import OBJECT_METRICS, Scorer, patients, scorer
from segpipe.evaluation.volumes import VolumeScores, volume_order


def score_holdout(path: Path, competition) -> dict:
    """Score a submission against a labelled holdout test set at the original resolution (or at the
    competition's `mask_size`, the true masks resized to it as prepare resizes them).

    Returns the competition's declared score (`metric`, `score`: `segpipe.evaluation.scores`), mean
    per-image Dice (empty on empty scores 1), per-patient Dice (pixels pooled
    over each patient's slices), the image count, and where the Dice is lost per image and
    per patient (as in metrics/cv.json): a leaderboard you can read locally. With classes
    (one row per image and class, in class order), each class is scored on its own under
    `classes` and the Dice are their means.
    """
    spec, test = competition.submission, competition.test
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if spec.rows == "instance" or competition.metric in OBJECT_METRICS:
        return _score_objects(table, competition)
    labels = competition.labels
    per_image = labels.channels
    volumes = VolumeScores(labels) if competition.metric == "dice_hausdorff" else None
    pixels = np.zeros((per_image, len(test), 3), np.int64)
    # one pass over the masks; volume by volume, in slice order, when the metric scores volumes
    for positions in volume_order(test, np.arange(len(test))) if volumes else [range(len(test))]:
        pred_slices, true_slices = [], []
        for i in positions:
            truth = _truth(competition, i)
            pred = np.zeros(truth.shape, np.uint8)
            for k in range(per_image):
                encoded = table[spec.rle_column].iloc[i * per_image + k]
                decoded = rle.decode(encoded, truth.shape, order=spec.rle_order)
                pixels[k, i] = mask_counts(decoded, labels.bit(truth, k))
                if volumes:
                    pred |= decoded.astype(np.uint8) << k
            if volumes:
                pred_slices.append(pred)
                true_slices.append(truth)
        if volumes:
            volumes.add(*_stacked(pred_slices, true_slices, competition, test, positions))
    groups = test.group.to_numpy()
    score = scorer(competition.metric, patients(test, np.arange(len(test))))
    scores = [_scores(pixels[k], groups, score) for k in range(per_image)]
    summary = scores[0] if not labels.several else {
        "score": float(np.mean([s["score"] for s in scores])),
        "dice": float(np.mean([s["dice"] for s in scores])),
        "patient_dice": float(np.mean([s["patient_dice"] for s in scores])),
        "images": scores[0]["images"], "patients": scores[0]["patients"],
        "classes": dict(zip(labels.classes, scores))}
    if volumes:
        summary["volumes"] = volumes.summary()
        summary["score"] = summary["volumes"]["score"]
    return {"metric": competition.metric, **summary}


def _score_objects(table: pd.DataFrame, competition) -> dict:
    """`score_holdout` of one class whose objects count: the submitted instances (a row each, or the
    components of an image's one mask) against the true mask's components."""
    spec, test = competition.submission, competition.test
    if competition.labels.several:
        raise InputError(f"{competition.name}: object scores and instance rows are for one class")
    rows_of = table.groupby(spec.id_column, sort=False)[spec.rle_column].agg(list).to_dict()
    pixels, pairs = np.zeros((len(test), 3), np.int64), []
    for i, image_id in enumerate(test.id.astype(str)):
        truth = _truth(competition, i) != 0
        instances = np.zeros(truth.shape, np.int32)
        for k, encoded in enumerate((code for code in rows_of.get(image_id, []) if code), start=1):
            instances[rle.decode(encoded, truth.shape, order=spec.rle_order)] = k
        if spec.rows != "instance":  # one mask a row: its components are the objects
            instances = components(instances > 0)[0]
        pixels[i] = mask_counts(instances > 0, truth)
        pairs.append((instances, int(instances.max()), truth))
    summary = _scores(pixels, test.group.to_numpy(), scorer(competition.metric))
    if competition.metric in OBJECT_METRICS:
        summary["score"] = instance_counts(pairs).score(competition.metric)
    return {"metric": competition.metric, **summary}


def _truth(competition, i: int) -> np.ndarray:
    """Test image `i`'s true mask (packed labels), at the competition's `mask_size` when it has one, resized
    by prepare's rule."""
    labels, size = competition.labels, competition.submission.mask_size
    truth = labels.packed(competition.read_mask(competition.test["mask"].iloc[i]))
    if size is not None and truth.shape != tuple(size):
        truth = resize_labels(truth, size, labels)
    return truth


def _stacked(pred: list, true: list, competition, test: pd.DataFrame, positions) -> tuple[np.ndarray, np.ndarray]:
    """A volume's slices stacked; InputError when they differ in size."""
    if len({m.shape for m in true}) > 1:
        raise InputError(f"{competition.name}: the slices of volume "
                         f"{test['volume' if 'volume' in test else 'group'].iloc[positions[0]]} differ in size")
    return np.stack(pred), np.stack(true)


def _scores(pixels: np.ndarray, groups: np.ndarray, score: Scorer) -> dict:
    counts = Counts(pixels[:, 0], pixels[:, 1], pixels[:, 2])
    return {
        "score": float(score(counts)),
        "dice": float(counts.image_dice().mean()),
        "patient_dice": counts.group_dice(groups),
        "images": len(counts),
        "patients": len(set(groups)),
        "lost": dice_lost(counts),
        "patients_lost": patients_lost(counts, groups),
    }
