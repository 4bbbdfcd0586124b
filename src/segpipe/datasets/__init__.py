"""Dataset adapters, chosen by name (`base.dataset`).

Each adapter module provides `download(root, **options)`, which fills `root` with the files
of a Kaggle-style download (atomically; a complete download is not repeated), and
`load(root, **options) -> Competition`. Stages call only the functions here, which also
apply the generic patient holdout.
"""
from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import numpy as np

from segpipe.datasets.base import Competition, SubmissionSpec
from segpipe.errors import InputError

# name -> module under segpipe.datasets; modules are imported only when chosen, so that a
# dataset's network-bound imports (the Kaggle client) never run for another.
ADAPTERS = {
    "synthetic": "segpipe.datasets.synthetic",
    "carvana": "segpipe.datasets.carvana",
    "nerve": "segpipe.datasets.nerve",
    "lgg": "segpipe.datasets.lgg",
    "folder": "segpipe.datasets.folder",
}

__all__ = ["ADAPTERS", "Competition", "SubmissionSpec", "download", "hold_out_patients", "load"]


def _adapter(name: str):
    if name not in ADAPTERS:
        raise InputError(f"params.yaml: base.dataset: unknown dataset {name!r}; choose one of {sorted(ADAPTERS)}")
    return importlib.import_module(ADAPTERS[name])


def download(name: str, root: Path, **options) -> None:
    """Fill `root` with dataset `name` laid out as its Kaggle download."""
    _adapter(name).download(Path(root), **options)


def load(name: str, root: Path, *, holdout_patients: float = 0.0, seed: int = 0, **options) -> Competition:
    """Index the downloaded dataset `name` under `root`.

    With `holdout_patients` > 0, that fraction of the train patients (seeded) becomes a
    labelled test set that the submit stage scores. A dataset without a test set needs it.
    """
    competition = _adapter(name).load(Path(root), **options)
    if holdout_patients > 0:
        return hold_out_patients(competition, holdout_patients, seed)
    if competition.test.empty:
        raise InputError(f"{name} has no test set: set {name}.holdout_patients in params.yaml (e.g. 0.2) "
                         "to hold out patients as a scored test set")
    return competition


def hold_out_patients(competition: Competition, fraction: float, seed: int) -> Competition:
    """Move `fraction` of the patients (at least one, seeded) from train to a labelled test set."""
    groups = np.array(sorted(competition.train.group.unique()))
    count = max(1, int(round(fraction * len(groups))))
    if count >= len(groups):
        raise InputError(f"holdout_patients={fraction} would hold out all {len(groups)} patients of {competition.name}")
    held = np.random.default_rng(seed).choice(groups, size=count, replace=False)
    is_held = competition.train.group.isin(held)
    return dataclasses.replace(
        competition,
        train=competition.train[~is_held].reset_index(drop=True),
        test=competition.train[is_held].reset_index(drop=True),
        submission=dataclasses.replace(competition.submission, sample_submission=None, competition=None),
    )
