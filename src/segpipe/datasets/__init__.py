"""Dataset adapters, chosen by name (`base.dataset`).

Each adapter module provides `download(root, **options)`, which fills `root` with the files
of a Kaggle-style download, and `load(root, **options) -> Competition`. Stages call only
the two functions here.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from segpipe.datasets.base import Competition, SubmissionSpec
from segpipe.errors import InputError

# name -> module under segpipe.datasets; modules are imported only when chosen, so that a
# dataset's heavy or network-bound imports (the Kaggle client) never run for another.
ADAPTERS = {"synthetic": "segpipe.datasets.synthetic"}

__all__ = ["ADAPTERS", "Competition", "SubmissionSpec", "download", "load"]


def _adapter(name: str):
    if name not in ADAPTERS:
        raise InputError(f"params.yaml: base.dataset: unknown dataset {name!r}; choose one of {sorted(ADAPTERS)}")
    return importlib.import_module(ADAPTERS[name])


def download(name: str, root: Path, **options) -> None:
    """Fill `root` with dataset `name` laid out as its Kaggle download."""
    _adapter(name).download(Path(root), **options)


def load(name: str, root: Path, **options) -> Competition:
    """Index the downloaded dataset `name` under `root`."""
    return _adapter(name).load(Path(root), **options)
