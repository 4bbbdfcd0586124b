"""docs/competition.md's worked examples that tests/test_pipeline_formats.py does not run end to end
(TGS Salt's, as a folder of masks and as its RLE csv): their `-S` values, parsed by DVC's own
grammar, load a tree in TGS Salt's layout to the same masks."""
import shlex

import numpy as np
from dvc.utils.hydra import to_hydra_overrides
from dvc_repo import ROOT
from formats import tgs

from segpipe.datasets.adapters import folder, rle_csv


def doc_options(marker: str, dataset: str) -> dict:
    """The `<dataset>.*` options (but the source) that the docs' `dvc exp run` line holding `marker` sets."""
    line = next(line for line in (ROOT / "docs/competition.md").read_text().splitlines()
                if line.startswith("dvc exp run") and marker in line and f"base.dataset={dataset}" in line)
    words = shlex.split(line)
    values = [words[i + 1] for i, word in enumerate(words) if word == "-S"]
    parsed = {o.key_or_group: o.value() for o in to_hydra_overrides(values)}
    return {key.split(".", 1)[1]: value for key, value in parsed.items()
            if key.startswith(f"{dataset}.") and key != f"{dataset}.source"}


def test_tgs_as_a_folder_of_masks(tmp_path):
    truth = tgs(tmp_path)
    competition = folder.load(tmp_path, **doc_options("folder.metric=iou_hits", "folder"))
    assert sorted(competition.train.id) == sorted(truth) and competition.metric == "iou_hits"
    for image_id, key in zip(competition.train.id, competition.train["mask"]):
        assert np.array_equal(competition.read_mask(key), truth[image_id])


def test_tgs_as_its_rle_csv(tmp_path):
    truth = tgs(tmp_path)
    competition = rle_csv.load(tmp_path, **doc_options("rle_mask", "rle_csv"))
    assert sorted(competition.train.id) == sorted(truth) and competition.metric == "iou_hits"
    for image_id, key in zip(competition.train.id, competition.train["mask"]):
        assert np.array_equal(competition.read_mask(key) != 0, truth[image_id])
    assert competition.test.id.tolist() == ["t0", "t1", "t2"]
    assert competition.submission.header() == ["id", "rle_mask"]
