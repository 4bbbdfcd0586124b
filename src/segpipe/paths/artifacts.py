"""Where each (model, fold)'s files live, and the DVC stage that makes them.

dvc.yaml spells the same paths out (a DVC stage must name its outputs); the stages that
read other stages' outputs find them here, so a layout change is made in two places, and
`tests/paths/test_artifacts.py` checks that they agree.
"""
from __future__ import annotations

import re
from pathlib import Path

BLEND = "blend"  # the blend stage's output folder, one fold<k>/ inside per trained fold


def remake(path: Path) -> str:
    """The command that remakes an output of this layout, for the fix-it hint of every error about it.

    models/<model>/fold<k>.pt and oof/<model>/fold<k>/ come from train@<model>-<k>;
    blend/fold<k>/ from the blend stage; anything else from a plain `dvc repro`.
    """
    path = Path(path)
    fold = re.fullmatch(r"fold(\d+)(\.pt)?", path.name)
    if fold and path.parent.name == BLEND:
        return "dvc repro blend"
    if fold and path.parent.name:
        return f"dvc repro {train_stage(path.parent.name, int(fold.group(1)))}"
    return "dvc repro"


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
