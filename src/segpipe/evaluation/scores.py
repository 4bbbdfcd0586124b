"""The score a competition declares, as the blend and the post-processing search maximise it.

Each dataset declares how its leaderboard (or paper) scores a prediction (`Competition.metric`,
`folder.metric` for your own data); prepare writes it to `data/prepared/metric.json`, and the
blend weights, every post-processing step and the CV headline maximise that score. Dice per
image and per patient are reported beside it.

- `dice`: the mean over images of each image's Dice, an empty prediction on an empty image
  scoring 1 (Carvana, the nerve and most Kaggle contests; with classes, the mean over
  (image, class) pairs: Severstal's);
- `patient_dice`: each patient's (volume's) pixels pooled over its slices, one Dice a patient,
  the mean over patients (Buda et al. 2019 on LGG). An empty slice costs nothing on its own
  here, while a missed small lesion loses its patient's whole Dice: the two scores pick
  different gates and component rules;
- `dice_hausdorff`: UW-Madison's 0.4 x Dice + 0.6 x (1 - Hausdorff) per (volume, class)
  (`segpipe.evaluation.volumes`); searched on the per-image Dice, then scored on the volumes;
- `iou_hits`: TGS Salt's, the mean over images of the share of IoU thresholds 0.5, 0.55, ...,
  0.95 that the image's IoU is above, an empty prediction on an empty image scoring 1 and any
  other miss 0 (`image_iou_hits`). A mask on an empty image costs a
  whole image, as in per-image Dice, but a good outline earns less than its Dice: a Dice of
  0.9 is an IoU of 0.82, 7 of the 10 thresholds;
- `object_f2` (Airbus Ship Detection) and `object_ap` (2018 Data Science Bowl): objects matched
  by IoU over the same thresholds (`segpipe.evaluation.objects`). Objects are not in pixel counts,
  so the blend and the pixel steps of the search maximise `iou_hits`, their per-image stand-in,
  and the threshold stage then searches the pixel threshold and the smallest component kept on
  the object score itself, which cv.json and holdout.json report.

A `Scorer` turns per-image counts into the score: (N,) counts give a number, (N, K) counts (K
candidate rules, e.g. every uint8 cut) give the K scores at once, the patients' pixels summed
with one `np.add.reduceat`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd

from segpipe.core.errors import InputError
from segpipe.core.runtime import write_json
from segpipe.evaluation.metrics import Counts, image_dice

Metric = Literal["dice", "patient_dice", "dice_hausdorff", "iou_hits", "object_f2", "object_ap"]
METRICS: tuple[str, ...] = get_args(Metric)
OBJECT_METRICS = ("object_f2", "object_ap")  # scored on objects: `segpipe.evaluation.objects`
FILE = "metric.json"  # in the prepared folder, beside layout.json
IOU_THRESHOLDS = np.round(np.arange(10) * 0.05 + 0.5, 2)  # 0.5, 0.55, ..., 0.95: TGS Salt's


def image_iou_hits(intersection: np.ndarray, pred_area: np.ndarray, true_area: np.ndarray) -> np.ndarray:
    """The share of `IOU_THRESHOLDS` that each image's IoU is strictly above (any matching shapes); empty
    prediction on empty truth is 1, a mask on an empty image (or none on a full one) 0."""
    inter = np.asarray(intersection, dtype=np.float64)
    union = np.asarray(pred_area, dtype=np.float64) + true_area - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union == 0, 1.0, inter / union)
    hits = np.searchsorted(IOU_THRESHOLDS, iou, side="left")  # the thresholds below the IoU
    return np.where(union == 0, 1.0, hits / len(IOU_THRESHOLDS))


@dataclass(frozen=True)
class Scorer:
    """The declared score of per-image counts; `order` and `starts` group the images by patient."""

    metric: str
    order: np.ndarray | None = None  # image positions sorted by patient
    starts: np.ndarray | None = None  # where each patient's run begins in `order`

    def __call__(self, counts: Counts) -> np.ndarray | float:
        if self.metric == "iou_hits" or self.metric in OBJECT_METRICS:  # objects: the pixel stand-in
            return image_iou_hits(counts.inter, counts.pred, counts.true).mean(axis=0)
        if self.metric != "patient_dice":
            return image_dice(counts.inter, counts.pred, counts.true).mean(axis=0)
        shape = np.broadcast_shapes(np.shape(counts.inter), np.shape(counts.pred), np.shape(counts.true))
        pooled = [np.add.reduceat(np.broadcast_to(part, shape)[self.order], self.starts, axis=0)
                  for part in (counts.inter, counts.pred, counts.true)]
        return image_dice(*pooled).mean(axis=0)


def scorer(metric: str, groups=None) -> Scorer:
    """The Scorer of `metric`; `patient_dice` needs each image's patient (`groups`, one per image)."""
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r} (the metrics are {', '.join(METRICS)})")
    if metric != "patient_dice":
        return Scorer(metric)
    keys = np.asarray(groups).astype(str)
    order = np.argsort(keys, kind="stable")
    starts = np.flatnonzero(np.r_[True, keys[order][1:] != keys[order][:-1]])
    return Scorer(metric, order, starts)


def patients(table: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """The unit a per-patient score pools over, for `rows` of a folds or test table: the volume
    (a scan session, UW-Madison's case/day) where the table has one, else the patient."""
    return table["volume" if "volume" in table else "group"].astype(str).to_numpy()[rows]


def write_metric(folder: Path, metric: str) -> None:
    write_json(folder / FILE, {"metric": metric})


def read_metric(folder: Path) -> str:
    """The metric prepare recorded for the competition; InputError naming the file when it is missing or unknown."""
    path = folder / FILE
    if not path.is_file():
        raise InputError(f"{path}: missing; rerun `dvc repro prepare`")
    metric = json.loads(path.read_text()).get("metric")
    if metric not in METRICS:
        raise InputError(f"{path}: unknown metric {metric!r} (the metrics are {', '.join(METRICS)})")
    return metric
