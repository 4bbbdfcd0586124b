"""One fold's out-of-fold probabilities on disk, keyed by image id.

A folder `<oof>/<model>/fold<k>/` holds `probs.npy`, the (n, H, W) uint8 probabilities
(0-255) of the fold's validation images ((n, C, H, W) for C classes), and `ids.csv`, their ids in the same order. Every
reader checks the ids against the folds file, so maps can never be paired with the wrong
masks by position alone: a stale or reordered file is an error that names it.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from segpipe.core.errors import InputError
from segpipe.core.runtime import atomic_path, create_npy
from segpipe.paths.artifacts import remake

PROBS, IDS = "probs.npy", "ids.csv"


@contextlib.contextmanager
def writing(folder: Path, ids: Sequence[str], size: tuple[int, ...]) -> Iterator[np.memmap]:
    """Yield the (len(ids), *size) uint8 memmap to fill (size (H, W), or (C, H, W) for C classes); the folder appears only if the block succeeds."""
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        pd.DataFrame({"id": list(ids)}).to_csv(tmp / IDS, index=False)
        out = create_npy(tmp / PROBS, (len(ids), *size))  # disk reserved: a full disk errors here
        yield out
        out.flush()
        del out


def read(folder: Path, ids: Sequence[str]) -> np.memmap:
    """The probabilities in `folder` as a read-only memmap, checked to be exactly for `ids`, in order.

    Every error names the command that remakes the folder (`segpipe.paths.artifacts.remake`).
    """
    rebuild = remake(folder)
    for name in (IDS, PROBS):
        if not (folder / name).is_file():
            raise InputError(f"{folder / name}: OOF probabilities missing; run `{rebuild}`")
    try:
        stored = pd.read_csv(folder / IDS, dtype={"id": str}).id.tolist()
        probs = np.load(folder / PROBS, mmap_mode="r")
    except (OSError, ValueError, pd.errors.ParserError, AttributeError) as err:  # truncated, not an .npy/.csv
        raise InputError(f"{folder}: OOF probabilities unreadable ({err}); rerun `{rebuild}`") from None
    ids = [str(i) for i in ids]
    if stored != ids:
        missing = next((i for i in ids if i not in set(stored)), None)
        detail = f"id {missing} is missing" if missing else "the ids are in another order or extra"
        raise InputError(f"{folder / IDS}: {len(stored)} ids, not the {len(ids)} of this fold in the folds file "
                         f"({detail}); it is stale: rerun `{rebuild}`")
    if probs.ndim not in (3, 4) or probs.shape[0] != len(ids) or probs.dtype != np.uint8:
        raise InputError(f"{folder / PROBS}: shape {probs.shape} {probs.dtype}, expected ({len(ids)}, [C,] H, W) "
                         f"uint8; rerun `{rebuild}`")
    return probs


def read_fold(folds: pd.DataFrame, fold: int, folder: Path, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fold's rows of folds.csv, its OOF probabilities as a memmap), checked by id against the folds file.

    The maps are (n, H, W), or (n, C, H, W) for C classes (`segpipe.core.labels.class_maps` takes one).
    """
    fold_rows = np.flatnonzero(folds.fold.to_numpy() == fold)
    probs = read(folder, folds.id.astype(str).to_numpy()[fold_rows])
    if probs.shape[-2:] != masks.shape[1:]:
        raise InputError(f"{folder}: OOF maps of {probs.shape[1:]}, the prepared masks {masks.shape[1:]}; "
                         f"rerun `{remake(folder)}`")
    return fold_rows, probs
