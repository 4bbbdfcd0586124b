import numpy as np
import pandas as pd
import pytest

from segpipe.cache.folds import stratified_group_folds
from segpipe.core.errors import InputError


def index(n_groups=12, per_group=10, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"p{g}" for g in range(n_groups)], per_group)
    area = rng.integers(0, 2, len(groups)) * rng.integers(1, 50, len(groups))
    return pd.DataFrame({"id": [f"{g}_{i}" for i, g in enumerate(groups)], "group": groups, "mask_area": area})


def test_a_patient_never_sits_in_two_folds():
    folds = stratified_group_folds(index(), 4, seed=1)
    assert folds.groupby("group").fold.nunique().max() == 1
    assert sorted(folds.fold.unique()) == [0, 1, 2, 3]


def test_folds_are_stratified_by_mask_presence():
    frame = index(n_groups=40)
    folds = stratified_group_folds(frame, 5, seed=1)
    share = (frame.mask_area > 0).groupby(folds.fold).mean()
    assert share.max() - share.min() < 0.15


def test_same_seed_same_folds_other_seed_other_folds():
    frame = index()
    a, b = stratified_group_folds(frame, 4, 1), stratified_group_folds(frame, 4, 1)
    assert a.equals(b)
    assert not a.equals(stratified_group_folds(frame, 4, 2))


def test_more_splits_than_patients_is_a_clear_error():
    with pytest.raises(InputError, match="n_splits=5 is more than the 3 patients"):
        stratified_group_folds(index(n_groups=3), 5, 0)


def test_a_fold_without_positive_masks_is_a_clear_error():
    frame = index(n_groups=4)
    frame["mask_area"] = 0
    frame.loc[frame.group == "p0", "mask_area"] = 5
    with pytest.raises(InputError, match="no slice with a mask"):
        stratified_group_folds(frame, 2, 0)
