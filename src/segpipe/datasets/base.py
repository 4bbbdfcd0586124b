"""The one small interface every dataset adapter implements.

`prepare`, `folds` and `submit` see a dataset only through `Competition`, so no stage
knows which dataset it is running.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd

RleOrder = Literal["C", "F"]


@dataclass(frozen=True)
class SubmissionSpec:
    """How the competition wants its submission written."""

    id_column: str  # header of the id column, e.g. "img"
    rle_column: str  # header of the RLE column, e.g. "rle_mask"
    rle_order: RleOrder  # "C": row-major (Carvana); "F": column-major (most others)
    sample_submission: Path | None  # the competition's sample file: ids and their order
    competition: str | None = None  # Kaggle competition slug; None when not a competition


@dataclass(frozen=True)
class Competition:
    """A dataset as the pipeline sees it.

    `train` has columns id, group, image, mask (paths); `test` has id, image in submission
    order, plus group and mask when the test set is a labelled holdout (then the submit
    stage scores it). Adapters whose patients are ordered slice stacks (synthetic, lgg) add
    `slice`, the slice's number in its stack, to both (and group to the test table), which
    2.5D context (`train.context`) needs. Ids are written to the submission exactly as they appear here.
    `read_image(path, at_least)` returns the (H, W, C) uint8 image, possibly decoded at a
    reduced size no smaller than `at_least`, and the file's original (H, W). The readers are
    module-level functions so that worker processes can pickle them.
    """

    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    submission: SubmissionSpec
    read_image: Callable[..., tuple[np.ndarray, tuple[int, int]]]  # see above
    read_mask: Callable[[Path], np.ndarray]  # -> (H, W) bool, non-zero is foreground
