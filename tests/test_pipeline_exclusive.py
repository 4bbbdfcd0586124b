"""End to end, exclusive classes: the real `dvc repro` on the synthetic multi-class kind (softmax, argmax first)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from dvc_repo import SMALL, make_repo, ran_stages, run

from segpipe import rle

CLASSES = ["core", "edema", "spot"]
EXCLUSIVE = {"synthetic": {**SMALL["synthetic"], "kind": "exclusive", "holdout_patients": 0.34}}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("exclusive"), EXCLUSIVE)


@pytest.fixture(scope="module")
def first_run(repo) -> str:
    return run(["dvc", "repro"], repo)


def test_a_softmax_over_background_and_classes_is_trained_and_run(repo, first_run):
    assert {"train@unet-0", "predict@unet", "threshold", "submit"} <= ran_stages(first_run)
    assert json.loads((repo / "data/prepared/layout.json").read_text())["exclusive"] is True
    checkpoint = torch.load(repo / "models/unet/fold0.pt", map_location="cpu", weights_only=False)
    assert checkpoint["spec"]["classes"] == len(CLASSES) + 1  # a background channel before the classes
    assert checkpoint["contract"]["labels"] == {"classes": CLASSES, "exclusive": True}  # the label spec, carried
    probs = np.load(repo / "oof/unet/fold0/probs.npy", mmap_mode="r")
    assert probs.shape[1:] == (3, 32, 32)  # class maps only: the background channel is dropped
    assert int(np.asarray(probs, np.int32).sum(axis=1).max()) <= 255 + 2  # a softmax's classes sum to at most 1


def test_the_submission_has_a_row_per_class_and_one_class_a_pixel(repo, first_run):
    """(A network this small predicts little; tests/submission shows the argmax on maps that overlap.)"""
    submission = pd.read_csv(repo / "submissions/submit.csv.gz", dtype=str, keep_default_na=False)
    assert submission["class"].tolist()[:3] == CLASSES
    masks = np.stack([rle.decode(code, (40, 48), order="F") for code in submission.rle_mask])
    per_image = masks.reshape(-1, len(CLASSES), 40, 48).sum(axis=1)
    assert per_image.max() <= 1
    cv = json.loads((repo / "metrics/cv.json").read_text())
    holdout = json.loads((repo / "metrics/holdout.json").read_text())
    assert set(cv["classes"]) == set(CLASSES) == set(holdout["classes"]) and holdout["images"] > 0
