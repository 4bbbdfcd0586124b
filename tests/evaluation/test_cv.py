"""OOF evaluation faults: a fold's OOF folder missing, damaged or stale names the stage to rerun."""
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from segpipe.core.errors import InputError
from segpipe.evaluation import oof_files
from segpipe.evaluation.blend import model_oof, select, write_blend
from segpipe.evaluation.cv import cross_validate
from segpipe.evaluation.metrics import cut_to_threshold
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
        paths[k] = tmp_path / "blend" / f"fold{k}"  # the blend stage's layout: errors name `dvc repro blend`
        with oof_files.writing(paths[k], folds.id[folds.fold == k], (16, 16)) as out:
            out[:] = (masks[folds.fold == k] * 200).astype(np.uint8)
    return folds, paths, tmp_path / "masks.npy"


def evaluate(folds, paths, masks):
    return cross_validate(folds, paths, masks, Grids([0, 5], [0.7], [0, 3], [0, 1]))


def test_good_oof_scores_perfectly(case):
    metrics, search = evaluate(*case)
    assert metrics["dice"] == 1.0 and metrics["images"] == 8
    assert search.rule == Rule(cut_to_threshold(1), cut_to_threshold(1), 0)  # nothing beyond the threshold raises a perfect score: no step kept
    assert [step["kept"] for step in metrics["search"]] == [True, False, False, False]


@pytest.mark.parametrize("damage, problem", [
    ("missing", "/ids.csv: OOF probabilities missing"),
    ("truncated", ": OOF probabilities unreadable"),
    ("stale", r"/ids.csv: 3 ids, not the 4 of this fold in the folds file \(id 3 is missing\); it is stale"),
    ("reordered", r"/ids.csv: 4 ids, not the 4 .*another order"),
    ("shape", r"/probs.npy: shape \(4, 16\) uint8, expected \(4, \[C,\] H, W\)"),
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


@pytest.mark.parametrize("seed", range(3))
def test_the_final_cv_is_never_below_the_blends_best_cut_nor_the_best_model(tmp_path, seed):
    """threshold searches every cut the blend scored, so its rule can only add to the blend's figure."""
    rng = np.random.default_rng(seed)
    n = 24
    folds = pd.DataFrame({"id": [f"i{i}" for i in range(n)], "group": [f"p{i // 3}" for i in range(n)],
                          "fold": [i % 2 for i in range(n)]})
    truth = (rng.random((n, 12, 12)) < 0.25).astype(np.uint8)
    truth[::4] = 0  # some empty images, where the gate and the cut matter
    np.save(tmp_path / "masks.npy", truth)
    dirs = {}
    for name in ("p", "q"):
        probs = np.clip(truth * rng.uniform(60, 160) + rng.normal(70, rng.uniform(30, 80), truth.shape), 0, 255)
        dirs[name] = {k: tmp_path / "oof" / name / f"fold{k}" for k in (0, 1)}
        for k in (0, 1):
            with oof_files.writing(dirs[name][k], folds.id[folds.fold == k], (12, 12)) as out:
                out[:] = probs[folds.fold.to_numpy() == k].astype(np.uint8)
    oof = model_oof(folds, dirs, tmp_path / "masks.npy")
    chosen = select(oof.names, oof.score, iterations=6)
    blend_dirs = {k: tmp_path / "blend" / f"fold{k}" for k in (0, 1)}
    write_blend(folds, oof, chosen.counts, blend_dirs)
    metrics, _ = cross_validate(folds, blend_dirs, tmp_path / "masks.npy", Grids([0, 5, 10], [0.6, 0.8], [0, 3], [0, 1]))
    assert metrics["dice"] >= chosen.score.dice - 1e-12
    assert chosen.score.dice >= max(single.dice for single in chosen.singles.values())
