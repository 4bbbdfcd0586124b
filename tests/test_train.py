import json

import numpy as np
import pandas as pd
import pytest

from segpipe.config import Train
from segpipe.folds import stratified_group_folds
from segpipe.predict import predict_test
from segpipe.train import FoldPaths, train_fold

FAST = Train(encoder_name="resnet18", encoder_depth=3, decoder_channels=(16, 8, 8), epochs=2, batch_size=8)


@pytest.fixture(scope="module")
def folds(prepared_dir):
    index = pd.read_csv(prepared_dir / "train.csv", dtype={"id": str, "group": str})
    return stratified_group_folds(index, 2, seed=0)


def run_fold(prepared_dir, folds, out, fold=1):
    paths = FoldPaths(prepared_dir / "train_images.npy", prepared_dir / "train_masks.npy",
                      out / "model.pt", out / "oof.npy", out / "live")
    return train_fold(FAST, folds, fold, paths, seed=5), paths


def test_fold_writes_checkpoint_oof_and_curves(prepared_dir, folds, tmp_path):
    metrics, paths = run_fold(prepared_dir, folds, tmp_path)
    assert set(metrics) == {"epoch", "val_dice", "val_loss", "oof_dice"}
    assert 1 <= metrics["epoch"] <= FAST.epochs and 0 <= metrics["oof_dice"] <= 1
    oof = np.load(paths.oof)
    assert oof.dtype == np.uint8 and oof.shape == ((folds.fold == 1).sum(), 32, 32)
    for curve in ("train/loss", "val/loss", "val/dice", "lr"):
        lines = (paths.live_dir / "plots" / "metrics" / f"{curve}.tsv").read_text().splitlines()
        assert len(lines) == FAST.epochs + 1, curve
    assert json.loads((paths.live_dir / "metrics.json").read_text())["step"] == FAST.epochs - 1
    assert not list(tmp_path.glob(".*tmp*"))


def test_same_seed_same_metrics_on_cpu(prepared_dir, folds, tmp_path):
    first, paths_a = run_fold(prepared_dir, folds, tmp_path / "a")
    second, paths_b = run_fold(prepared_dir, folds, tmp_path / "b")
    assert first == second
    np.testing.assert_array_equal(np.load(paths_a.oof), np.load(paths_b.oof))


def test_predict_averages_folds_into_a_uint8_stream(prepared_dir, folds, tmp_path):
    _, paths = run_fold(prepared_dir, folds, tmp_path)
    out = tmp_path / "test.npy"
    predict_test({1: paths.model}, prepared_dir / "test_images.npy", out, batch_size=3)
    one = np.load(out)
    predict_test({0: paths.model, 1: paths.model}, prepared_dir / "test_images.npy", out, batch_size=5)
    assert one.dtype == np.uint8 and one.shape == np.load(prepared_dir / "test_images.npy").shape[:3]
    np.testing.assert_array_equal(np.load(out), one)  # the mean of two copies is the copy
