"""Process-wide concerns: the one seed, the device, and writing outputs atomically."""
from __future__ import annotations

import contextlib
import json
import os
import random
from pathlib import Path
from typing import Iterator

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed every RNG the pipeline touches (python, numpy, torch) from `base.seed`."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device() -> "torch.device":
    """CUDA when there is one, else CPU: the same params run on both."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it onto `path` only if the block succeeds.

    A killed or failing stage therefore never leaves a half-written output for DVC to cache.
    Works for files and directories.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        if path.is_dir() and tmp.is_dir():
            _remove(path)
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        import shutil

        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_json(path: Path | str, payload: dict) -> None:
    """Write `payload` as sorted, indented json, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
