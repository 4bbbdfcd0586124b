"""Where each (model, fold)'s files live, and the DVC stage that makes them.

dvc.yaml spells the same paths out (a DVC stage must name its outputs); the stages that
read other stages' outputs find them here, so a layout change is made in two places, and
`tests/paths/test_artifacts.py` checks that they agree.
"""
from __future__ import annotations

from pathlib import Path


def train_stage(model: str, fold: int) -> str:
    """The name DVC's matrix gives the stage training `model` on fold `fold`."""
    return f"train@{model}-{fold}"


def checkpoint(models: Path, model: str, fold: int) -> Path:
    """The best checkpoint of `model` on `fold`: models/<model>/fold<k>.pt."""
    return models / model / f"fold{fold}.pt"


def oof_dir(oof: Path, model: str, fold: int) -> Path:
    """The OOF probabilities of `model` on `fold`: oof/<model>/fold<k>/ (see `segpipe.evaluation.oof_files`)."""
    return fold_dir(oof / model, fold)


def fold_dir(root: Path, fold: int) -> Path:
    """One fold's OOF folder under `root`: the blend's are blend/fold<k>/."""
    return root / f"fold{fold}"


def test_probs(preds: Path, model: str) -> Path:
    """The fold-averaged test probabilities of `model`: preds/<model>/test.npz."""
    return preds / model / "test.npz"
