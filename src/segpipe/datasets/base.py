"""The one small interface every dataset adapter implements.

An adapter is one module of `segpipe.datasets.adapters`, named as its params section:

    Params       its section of params.yaml, a `DatasetSection` (a real dataset's `source` default
                 is segpipe's own folder `data/sources/<name>`)
    load         (the source's Tree, **options) -> Competition
    KAGGLE       where the dataset lives on Kaggle (optional: without it there is no download)
    generate     (folder, seed, **options): a dataset made offline rather than read from a source

`prepare`, `folds` and `submit` see a dataset only through `Competition`, so no stage
knows which dataset it is running.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from segpipe.config.sections import Section
from segpipe.core.labels import Labels

RleOrder = Literal["C", "F"]
Metric = Literal["dice", "patient_dice", "dice_hausdorff", "iou_hits", "object_f2", "object_ap"]  # what the leaderboard scores: segpipe.evaluation.scores


class DatasetSection(Section):
    """An adapter's params section; `holdout_patients` is understood by all of them."""

    holdout_patients: float = Field(0.0, ge=0, lt=1)  # patients moved to a labelled, scored test set

    def adapter_options(self) -> dict:
        """The options the adapter's generate/load take (holdout is applied generically)."""
        return self.model_dump(exclude={"holdout_patients"})


@dataclass(frozen=True)
class SubmissionSpec:
    """How the competition wants its submission written."""

    id_column: str  # header of the id column, e.g. "img"
    rle_column: str  # header of the RLE column, e.g. "rle_mask"
    rle_order: RleOrder  # "C": row-major (Carvana); "F": column-major (most others)
    sample_submission: Path | None  # the competition's sample file: ids and their order
    competition: str | None = None  # Kaggle competition slug; None when not a competition
    # Per-class rows (a competition with `classes`): one row per (image, class), classes in order.
    id_format: str = "{id}"  # the row's id: "{id}" or e.g. "{id}_{label}" (Severstal's ImageId_ClassId)
    class_column: str | None = None  # a column that names the class (Severstal's ClassId, UW-Madison's class)
    labels: tuple[str, ...] = ()  # how the file names each class, in class order ("1".."4"); () = the class names
    columns: tuple[str, ...] = ()  # the header's order when it is not (id, rle[, class])
    code_competition: bool = False  # Kaggle scores only a notebook's output: a CSV upload is refused
    mask_size: tuple[int, int] | None = None  # (H, W) the masks are submitted and scored at; None = each image's
    # "instance": a row per connected component of the mask, in label (row-major) order, and one row with
    # an empty RLE for an image with none (Airbus, DSB 2018); "image": one row per image (and class)
    rows: Literal["image", "instance"] = "image"

    def header(self) -> list[str]:
        """The submission's columns, in order."""
        if self.columns:
            return list(self.columns)
        return [self.id_column, self.rle_column] + ([self.class_column] if self.class_column else [])


@dataclass(frozen=True)
class Competition:
    """A dataset as the pipeline sees it.

    `train` has columns id, group, image, mask (paths); `test` has id, image in submission
    order, plus group and mask when the test set is a labelled holdout (then the submit
    stage scores it). Adapters whose patients are ordered slice stacks (synthetic, lgg, uwmgi)
    add `slice`, the slice's number in its stack, to both (and group to the test table), which
    2.5D context (`train.context`) needs, and `volume` where a patient has several stacks
    (UW-Madison's case/days). Ids are written to the submission exactly as they appear here.
    `mask` is a mask file's locator, or a key that `read_mask` decodes from a label csv
    (`segpipe.datasets.rle_labels`).
    `read_image(path, at_least)` returns the (H, W, C) uint8 image, possibly decoded at a
    reduced size no smaller than `at_least`, and the file's original (H, W). The readers are
    module-level functions so that worker processes can pickle them.
    """

    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    submission: SubmissionSpec
    read_image: Callable[..., tuple[np.ndarray, tuple[int, int]]]  # see above
    read_mask: Callable[[Path], np.ndarray]  # -> (H, W): binary, non-zero is foreground; with classes, see below
    # Several classes: their names in channel order (at most 8). `multilabel`: classes may
    # overlap, one sigmoid channel each, and `read_mask` returns a (H, W) uint8 whose bit k
    # (value 1 << k) marks class k. () = binary, the one foreground class.
    classes: tuple[str, ...] = ()
    # `multiclass`: the classes never overlap (at most one bit a pixel); the network has a softmax
    # over a background channel and the classes, and post-processing takes the argmax first.
    exclusive: bool = False
    # The score the leaderboard (or the paper) uses, which the blend and the post-processing maximise
    # (`segpipe.evaluation.scores`): "dice" per image, "patient_dice" per patient (a patient's
    # slices pooled), "dice_hausdorff" UW-Madison's 0.4 x Dice + 0.6 x (1 - normalised 3D Hausdorff),
    # "iou_hits" TGS Salt's share of IoU thresholds 0.5:0.05:0.95 hit per image, "object_f2" Airbus's
    # and "object_ap" the 2018 Data Science Bowl's, on objects (`segpipe.evaluation.objects`).
    metric: Metric = "dice"

    @property
    def labels(self) -> Labels:
        """The label spec every stage asks (`segpipe.core.labels`), made from `classes` and `exclusive`."""
        return Labels(self.classes, self.exclusive)
