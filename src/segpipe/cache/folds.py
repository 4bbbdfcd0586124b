"""Patient-level folds: one patient (group) never sits in two folds."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from segpipe.core.errors import InputError


def stratified_group_folds(index: pd.DataFrame, n_splits: int, seed: int) -> pd.DataFrame:
    """Assign each row of `index` (columns id, group, mask_area) a fold in 0..n_splits-1.

    Groups are kept whole and the folds are stratified by mask presence, so each fold has
    about the same share of empty slices; with classes (`area_<class>` columns) by the
    pattern of classes present, so a rare class is spread over the folds too. Returns a frame with columns id, group, fold (and
slice, where the index has it).
    """
    n_groups = index.group.nunique()
    if n_splits > n_groups:
        raise InputError(f"params.yaml: folds.n_splits={n_splits} is more than the {n_groups} patients (groups)")
    has_mask = (index.mask_area > 0).to_numpy()
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    fold = np.full(len(index), -1, dtype=np.int64)
    with warnings.catch_warnings():  # a class pattern rarer than n_splits is spread as well as it can be
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        splits = list(splitter.split(np.zeros(len(index)), class_pattern(index, n_splits), groups=index.group.to_numpy()))
    for k, (_, val) in enumerate(splits):
        fold[val] = k
    folds = index[[c for c in ("id", "group", "volume", "slice") if c in index]].assign(fold=fold)
    positives = folds[has_mask].fold.value_counts()
    empty = [k for k in range(n_splits) if positives.get(k, 0) == 0]
    if empty:
        raise InputError(f"folds {empty} have no slice with a mask: lower folds.n_splits "
                         f"(now {n_splits}) or add labelled patients")
    return folds


def class_pattern(index: pd.DataFrame, n_splits: int) -> np.ndarray:
    """Each row's stratum: whether it has a mask, or with classes the bits of the classes present.

    A pattern on fewer than `n_splits` rows cannot be spread over the folds: such rows count
    by mask presence alone (-1 empty, -2 some class), as every row does when no pattern is common enough.
    """
    has_mask = (index.mask_area > 0).to_numpy().astype(np.int64)
    per_class = [c for c in index if c.startswith("area_")]
    if not per_class:
        return has_mask
    pattern = sum((index[c] > 0).to_numpy().astype(np.int64) << k for k, c in enumerate(per_class))
    values, counts = np.unique(pattern, return_counts=True)
    rare = np.isin(pattern, values[counts < n_splits])
    pattern = np.where(rare, -1 - has_mask, pattern)
    return pattern if np.unique(pattern, return_counts=True)[1].max() >= n_splits else has_mask
