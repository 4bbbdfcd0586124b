"""2.5D slice context: each image goes to the model with its neighbouring slices as channels.

The UW-Madison GI tract winners fed slices i-k..i+k of a scan as one input. Here a table of
neighbour rows, (N, 2k+1) indexes into the same prepared cache, says which rows make each
stack: the same patient only (the same volume, where a patient has several: UW-Madison's
case/days), ordered by slice number, with the first and last slice repeated past the ends
of the stack. Stacks are gathered batch by batch from the uint8
cache (or from decoded test images): there is no second, k-times larger cache.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from segpipe.core.errors import InputError


def neighbour_rows(index: pd.DataFrame, context: int, where: str) -> np.ndarray | None:
    """(len(index), 2*context+1) row numbers of each row's stack; None when `context` is 0.

    `index` needs the columns group and slice (the adapters of ordered stacks give them),
    and `volume` where a patient has several scans: slices are then neighbours only within
    one volume. `where` names the table in the error a dataset without slice order gets.
    """
    if not context:
        return None
    if "slice" not in index or "group" not in index:
        raise InputError(f"{where}: train.context={context} needs slices in order, but this dataset has no slice "
                         "numbers (only synthetic, lgg and uwmgi have them); set train.context: 0")
    volumes = index["volume" if "volume" in index else "group"].astype(str).to_numpy()
    order = np.lexsort((index["slice"].to_numpy(), volumes))
    volumes = volumes[order]
    starts = np.flatnonzero(np.r_[True, volumes[1:] != volumes[:-1]])  # first position of each volume
    ends = np.r_[starts[1:], len(order)] - 1
    patient = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(order)]))
    offsets = np.arange(-context, context + 1)
    positions = np.clip(np.arange(len(order))[:, None] + offsets, starts[patient][:, None], ends[patient][:, None])
    table = np.empty((len(order), len(offsets)), dtype=np.int64)
    table[order] = order[positions]  # back from sorted positions to rows of `index`
    return table


def gather(images: np.ndarray, rows: np.ndarray, neighbours: np.ndarray | None) -> np.ndarray:
    """images[rows] as (B, H, W, C) uint8, or their stacks as (B, H, W, S*C), slice-major."""
    rows = np.asarray(rows)
    if neighbours is None:
        return np.ascontiguousarray(images[rows])
    stacks = neighbours[rows]  # (B, S)
    unique, inverse = np.unique(stacks, return_inverse=True)  # read each cached row once (memmap)
    picked = np.asarray(images[unique])[inverse.reshape(stacks.shape)]  # (B, S, H, W, C)
    batch, slices, height, width, channels = picked.shape
    return np.ascontiguousarray(picked.transpose(0, 2, 3, 1, 4).reshape(batch, height, width, slices * channels))
