"""OOF evaluation faults: a fold's OOF folder missing, damaged or stale names the stage to rerun."""
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from segpipe.core.errors import InputError
from segpipe.evaluation import oof_files
from segpipe.evaluation.cv import cross_validate
from segpipe.evaluation.postprocess import Rule
from segpipe.evaluation.tune import Grids


@pytest.fixture
def case(tmp_path):
    rng = np.random.default_rng(0)
    folds = pd.DataFrame({"id": [str(i) for i in range(8)], "group": [f"p{i // 2}" for i in range(8)],
                          "fold": [0, 0, 1, 1, 0, 0, 1, 1]})
    masks = rng.random((8, 16, 16)) < 0.2
    np.save(tmp_path / "masks.npy", masks.astype(np.uint8))
    paths = {}
    for k in (0, 1):
        paths[k] = tmp_path / f"fold{k}"
        with oof_files.writing(paths[k], folds.id[folds.fold == k], (16, 16)) as out:
            out[:] = (masks[folds.fold == k] * 200).astype(np.uint8)
    return folds, paths, tmp_path / "masks.npy"


def evaluate(folds, paths, masks):
    return cross_validate(folds, paths, masks, Grids([0.3, 0.5], [0, 5], [0.7], [0, 3], [0, 1]))


def test_good_oof_scores_perfectly(case):
    metrics, rule, _ = evaluate(*case)
    assert metrics["dice"] == 1.0 and metrics["images"] == 8
    assert rule == Rule(0.3, 0.3, 0)  # nothing beyond the threshold raises a perfect score: no step kept
    assert [step["kept"] for step in metrics["search"]] == [True, False, False, False]


@pytest.mark.parametrize("damage, problem", [
    ("missing", "/ids.csv: OOF probabilities missing"),
    ("truncated", ": OOF probabilities unreadable"),
    ("stale", r"/ids.csv: 3 ids, not the 4 of this fold in the folds file \(id 3 is missing\); it is stale"),
    ("reordered", r"/ids.csv: 4 ids, not the 4 .*another order"),
    ("shape", r"/probs.npy: shape \(4, 16\) uint8, expected \(4, H, W\)"),
])
def test_a_bad_oof_folder_names_the_stage_to_rerun(case, damage, problem):
    folds, paths, masks = case
    if damage == "missing":
        shutil.rmtree(paths[1])
    elif damage == "truncated":
        probs = paths[1] / "probs.npy"
        probs.write_bytes(probs.read_bytes()[:100])
    elif damage == "stale":  # from an earlier folds.csv
        with oof_files.writing(paths[1], ["2", "6", "7"], (16, 16)):
            pass
    elif damage == "reordered":  # the right ids, but not the maps' order: never paired by position
        with oof_files.writing(paths[1], ["3", "2", "6", "7"], (16, 16)):
            pass
    else:
        np.save(paths[1] / "probs.npy", np.zeros((4, 16), np.uint8))
    with pytest.raises(InputError, match=re.escape(str(paths[1])) + problem + ".*`dvc repro blend`"):
        evaluate(folds, paths, masks)
