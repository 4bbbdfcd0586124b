"""OOF evaluation faults: a fold's OOF file missing, damaged or stale names the fold to retrain."""
import re

import numpy as np
import pandas as pd
import pytest

from segpipe.errors import InputError
from segpipe.oof import cross_validate
from segpipe.postprocess import Rule
from segpipe.tune import Grids


@pytest.fixture
def case(tmp_path):
    rng = np.random.default_rng(0)
    folds = pd.DataFrame({"id": [str(i) for i in range(8)], "group": [f"p{i // 2}" for i in range(8)],
                          "fold": [0, 0, 1, 1, 0, 0, 1, 1]})
    masks = rng.random((8, 16, 16)) < 0.2
    np.save(tmp_path / "masks.npy", masks.astype(np.uint8))
    paths = {}
    for k in (0, 1):
        paths[k] = tmp_path / f"fold{k}.npy"
        np.save(paths[k], (masks[folds.fold == k] * 200).astype(np.uint8))
    return folds, paths, tmp_path / "masks.npy"


def evaluate(folds, paths, masks):
    return cross_validate(folds, paths, masks, Grids([0.3, 0.5], [0, 5], [0.7], [0, 3], [0, 1]))


def test_good_oof_scores_perfectly(case):
    metrics, rule, _ = evaluate(*case)
    assert metrics["dice"] == 1.0 and metrics["images"] == 8
    assert rule == Rule(0.3, 0.3, 0)  # nothing beyond the threshold raises a perfect score: no step kept
    assert [step["kept"] for step in metrics["search"]] == [True, False, False, False]


@pytest.mark.parametrize("damage, problem", [
    ("missing", "OOF probabilities of fold 1 missing"),
    ("truncated", "OOF probabilities of fold 1 unreadable"),
    ("stale", r"OOF shape \(3, 16, 16\) does not match fold 1"),
])
def test_a_bad_oof_file_names_the_fold_to_retrain(case, damage, problem):
    folds, paths, masks = case
    if damage == "missing":
        paths[1].unlink()
    elif damage == "truncated":
        paths[1].write_bytes(paths[1].read_bytes()[:200])
    else:  # from an earlier folds.csv
        np.save(paths[1], np.zeros((3, 16, 16), np.uint8))
    with pytest.raises(InputError, match=re.escape(str(paths[1])) + ": " + problem + ".*`dvc repro train@1`"):
        evaluate(folds, paths, masks)
