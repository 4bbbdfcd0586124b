"""End to end in tile mode: the real `dvc repro` on a small large-image (thin-structure) synthetic competition,
and on the multi-label kind (a map per class by windows)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dvc_repo import SMALL, edit_params, infer_matches_submit, make_repo, ran_stages, run

from segpipe import rle
from segpipe.inference.probmaps import read_map

NATIVE = (96, 160)  # the tile does not divide it: windows overlap unevenly at the edges
TILED = {
    "synthetic": {"kind": "thin", "train_patients": 4, "test_patients": 1, "slices_per_patient": 4,
                  "height": NATIVE[0], "width": NATIVE[1]},
    "prepare": {"mode": "tile", "scale": 1.0, "tile": [64, 64]},
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("tiled"), TILED)


@pytest.fixture(scope="module")
def first_run(repo) -> str:
    return run(["dvc", "repro"], repo)


def test_tile_mode_repro_predicts_at_native_size_and_writes_a_valid_submission(repo, first_run):
    assert {"prepare", "train@unet-0", "train@unet-1", "predict@unet", "threshold", "submit"} <= ran_stages(first_run)
    assert not list((repo / "data/prepared").glob("test_images*"))  # no test-image cache
    assert np.load(repo / "data/prepared/train_images.npy", mmap_mode="r").shape[1:3] == NATIVE
    oof = np.load(repo / "oof/unet/fold0/probs.npy", mmap_mode="r")
    assert oof.shape[1:] == NATIVE and oof.dtype == np.uint8  # whole images, stitched from windows
    assert read_map(repo / "preds/unet/test.npz", 0).shape == NATIVE
    sample = pd.read_csv(repo / "data/raw/synthetic/sample_submission.csv", dtype=str)
    submission = pd.read_csv(repo / "submissions/submit.csv.gz", dtype=str, keep_default_na=False)
    assert submission.img.tolist() == sample.img.tolist()
    for encoded in submission.rle_mask:
        assert rle.decode(encoded, NATIVE, order="F").shape == NATIVE  # inside the native image


def test_a_post_processing_param_does_not_rerun_predict(repo, first_run):
    edit_params(repo, {"threshold": {"min_components": [0, 3]}})
    assert "predict@unet" not in run(["dvc", "status"], repo)
    ran = ran_stages(run(["dvc", "repro"], repo))
    # the plan resolves the post-processing grids, so it reruns; prepare and train read only its other
    # files, which come out byte-identical. Submit and report follow only if the rule came out different.
    assert {"plan", "threshold"} <= ran <= {"plan", "threshold", "submit", "report", "bundle"}


CLASSES = ["core", "edema", "spot"]
CLASS_NATIVE = (40, 48)  # SMALL's images, cut into tiles of 32 x 32 that overlap at the far edges
TILED_CLASSES = {
    "synthetic": {**SMALL["synthetic"], "kind": "multi"},
    "prepare": {"mode": "tile", "scale": 1.0, "tile": [32, 32]},
}


@pytest.fixture(scope="module")
def classes_repo(tmp_path_factory) -> Path:
    repo = make_repo(tmp_path_factory.mktemp("tiled_classes"), TILED_CLASSES)
    run(["dvc", "repro"], repo)
    return repo


def test_tile_mode_with_classes_predicts_a_map_per_class_at_native_size_and_a_row_per_class(classes_repo):
    repo = classes_repo
    tiles = pd.read_csv(repo / "data/prepared/tiles.csv")
    assert [f"foreground_{c}" for c in CLASSES] == list(tiles.columns[4:])
    oof = np.load(repo / "oof/unet/fold0/probs.npy", mmap_mode="r")
    assert oof.shape[1:] == (len(CLASSES), *CLASS_NATIVE)  # whole images, a map per class, stitched from windows
    assert read_map(repo / "preds/unet/test.npz", 0).shape == (len(CLASSES), *CLASS_NATIVE)
    cv = json.loads((repo / "metrics/cv.json").read_text())
    assert set(cv["classes"]) == set(CLASSES)
    submission = pd.read_csv(repo / "submissions/submit.csv.gz", dtype=str, keep_default_na=False)
    test = pd.read_csv(repo / "data/prepared/test.csv", dtype={"id": str})
    assert submission["class"].tolist() == CLASSES * len(test)
    for encoded in submission.rle_mask:
        rle.validate(encoded, CLASS_NATIVE[0] * CLASS_NATIVE[1])


def test_the_bundle_reproduces_the_tile_mode_submission_by_sliding_windows(repo, first_run, tmp_path):
    assert json.loads((repo / "bundle/layout.json").read_text())["mode"] == "tile"
    infer_matches_submit(repo, tmp_path)


def test_the_bundle_reproduces_the_tile_mode_submission_with_classes(classes_repo, tmp_path):
    infer_matches_submit(classes_repo, tmp_path)
