"""End to end, several classes: the real `dvc repro` on the synthetic multi-label kind."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dvc_repo import SMALL, edit_params, infer_matches_submit, make_repo, ran_stages, run

from segpipe import rle
from segpipe.inference.probmaps import read_map

CLASSES = ["core", "edema", "spot"]
# 6 train patients, 2 of them held out and scored (per class) against the submission
MULTI = {"synthetic": {**SMALL["synthetic"], "kind": "multi", "holdout_patients": 0.34}}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("classes"), MULTI)


@pytest.fixture(scope="module")
def first_run(repo) -> str:
    return run(["dvc", "repro"], repo)


def test_repro_writes_a_row_per_image_and_class(repo, first_run):
    assert {"prepare", "train@unet-0", "train@unet-1", "predict@unet", "blend", "threshold", "submit",
            "report"} <= ran_stages(first_run)
    layout = json.loads((repo / "data/prepared/layout.json").read_text())
    assert layout["classes"] == CLASSES
    submission = pd.read_csv(repo / "submissions/submit.csv.gz", dtype=str, keep_default_na=False)
    assert list(submission.columns) == ["id", "rle_mask", "class"]
    test = pd.read_csv(repo / "data/prepared/test.csv", dtype={"id": str})
    assert submission.id.tolist() == [i for i in test.id for _ in CLASSES]  # test order, then class order
    assert submission["class"].tolist() == CLASSES * len(test)
    for encoded in submission.rle_mask:
        rle.validate(encoded, 40 * 48)
    assert read_map(repo / "preds/unet/test.npz", 0).shape == (3, 32, 32)  # a map per class, keyed by image
    assert np.load(repo / "oof/unet/fold0/probs.npy", mmap_mode="r").shape[1:] == (3, 32, 32)


def test_metrics_and_rules_are_per_class(repo, first_run):
    cv = json.loads((repo / "metrics/cv.json").read_text())
    assert set(cv["classes"]) == set(CLASSES)
    assert cv["dice"] == pytest.approx(np.mean([cv["classes"][c]["dice"] for c in CLASSES]))
    rules = json.loads((repo / "metrics/postprocess.json").read_text())["classes"]
    assert {name: rules[name] for name in CLASSES} == {name: cv["classes"][name]["rule"] for name in CLASSES}
    fold = json.loads((repo / "metrics/unet/fold0.json").read_text())
    assert set(fold["classes"]) == set(CLASSES) and 0 <= fold["val_dice"] <= 1
    for name in CLASSES:  # dvclive logs each class's val Dice beside their mean
        assert (repo / f"dvclive/unet/fold0/plots/metrics/val/dice_{name}.tsv").is_file()
    holdout = json.loads((repo / "metrics/holdout.json").read_text())
    assert set(holdout["classes"]) == set(CLASSES) and holdout["images"] > 0
    assert holdout["dice"] == pytest.approx(np.mean([holdout["classes"][c]["dice"] for c in CLASSES]))
    curve = pd.read_csv(repo / "plots/threshold.csv")
    assert {f"score_{c}" for c in CLASSES} <= set(curve.columns)


def test_one_classes_post_processing_param_reruns_only_threshold_and_what_reads_its_rules(repo, first_run):
    edit_params(repo, {"threshold": {"classes": {"spot": {"min_components": [0, 3, 6]}}}})
    ran = ran_stages(run(["dvc", "repro"], repo))
    assert {"plan", "threshold"} <= ran <= {"plan", "threshold", "submit", "report", "bundle"}
    cv = json.loads((repo / "metrics/cv.json").read_text())
    kept = cv["classes"]["spot"]["rule"]["min_component"]
    assert kept in (0, 3, 6)


def test_a_bag_per_class_reaches_the_submission(repo, first_run):
    """blend.per_class with one model: every class's bag is that model, so the submission stays byte-identical."""
    before = (repo / "submissions/submit.csv.gz").read_bytes()
    edit_params(repo, {"blend": {"per_class": True}})
    ran = ran_stages(run(["dvc", "repro"], repo))
    assert "blend" in ran and not any(stage.startswith(("train@", "predict@")) for stage in ran)
    blend = json.loads((repo / "metrics/blend.json").read_text())
    assert blend["class_counts"] == {name: {"unet": 1} for name in CLASSES}
    assert set(blend["class_weights"]) == set(CLASSES) and blend["weights"] == {"unet": 1.0}
    assert (repo / "submissions/submit.csv.gz").read_bytes() == before


def test_the_bundle_reproduces_the_holdout_submission_per_class(repo, first_run, tmp_path):
    """segpipe.infer --holdout: the pipeline's held-out patients, a row per (image, class), byte for byte."""
    infer_matches_submit(repo, tmp_path, "--holdout")
