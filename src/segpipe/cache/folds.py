"""Patient-level folds: one patient (group) never sits in two folds."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from segpipe.core.errors import InputError


def stratified_group_folds(index: pd.DataFrame, n_splits: int, seed: int) -> pd.DataFrame:
    """Assign each row of `index` (columns id, group, mask_area) a fold in 0..n_splits-1.

    Groups are kept whole and the folds are stratified by mask presence, so each fold has
    about the same share of empty slices. Returns a frame with columns id, group, fold (and
slice, where the index has it).
    """
    n_groups = index.group.nunique()
    if n_splits > n_groups:
        raise InputError(f"params.yaml: folds.n_splits={n_splits} is more than the {n_groups} patients (groups)")
    has_mask = (index.mask_area > 0).to_numpy()
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    fold = np.full(len(index), -1, dtype=np.int64)
    for k, (_, val) in enumerate(splitter.split(np.zeros(len(index)), has_mask, groups=index.group.to_numpy())):
        fold[val] = k
    folds = index[[c for c in ("id", "group", "slice") if c in index]].assign(fold=fold)
    positives = folds[has_mask].fold.value_counts()
    empty = [k for k in range(n_splits) if positives.get(k, 0) == 0]
    if empty:
        raise InputError(f"folds {empty} have no slice with a mask: lower folds.n_splits "
                         f"(now {n_splits}) or add labelled patients")
    return folds
