"""Test probabilities on disk: one deflated uint8 map per image in a standard .npz.

Threshold and post-processing changes must never rerun the networks, so predict stores the
test probabilities; stored raw they would not fit (Carvana at 320x480: 15.4 GB). A model's
probability maps are flat almost everywhere (near 0 off the object, near 255 on it), so
deflate at level 1 shrinks them many times at little CPU cost. Members are written one by
one as the maps come, with a fixed timestamp, so the same maps give the same bytes; a
reader opens one member without touching the others. `np.load(path)["0000042"]` reads
map 42 too: it is an ordinary .npz. A last member, `ids`, holds the image id of every map,
so the maps are matched to test images by id (`map_ids`), never by position alone.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from segpipe.core.runtime import per_process

LEVEL = 1  # deflate level: 6 (zlib's default) was ~3x slower for a few % smaller maps
EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest zip timestamp: no clock in the bytes
IDS = "ids.npy"


def member(row: int) -> str:
    return f"{row:07d}.npy"


SPOOL = 64 << 20  # bytes of a multi-class map's later classes kept in memory before they go to a temporary file


@dataclass(frozen=True)
class RowBands:
    """One (H, W) uint8 map given as consecutive bands of rows, so it is never whole in memory.

    Bands of (K, rows, W) make a (K, H, W) map of K classes. The .npy holds class 0's rows
    first, so its rows go to the archive as they come while the other classes' rows wait in
    a temporary file (in memory up to `SPOOL` bytes), copied in after the last band.
    """

    shape: tuple[int, int]  # (H, W) of the image
    bands: Iterable[np.ndarray]  # (rows, W) or (K, rows, W) uint8 each, top to bottom, H rows in all


def write_maps(path: Path, maps: Iterable[np.ndarray | RowBands], ids: Sequence[str] | None = None) -> int:
    """Write each (H, W) uint8 map of `maps` (batches of them, or `RowBands`, too) to `path`; the count.

    A (B, C, H, W) batch is B maps of C classes: each member is then one image's (C, H, W).

    With `ids`, one per map in the same order, they are stored too (`map_ids`).
    """
    count = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=LEVEL) as archive:
        for batch in maps:
            if isinstance(batch, RowBands):
                _write_bands(archive, member(count), batch)
                count += 1
                continue
            batch = np.asarray(batch)
            for prob in batch if batch.ndim == 4 else batch.reshape(-1, *batch.shape[-2:]):
                _write(archive, member(count), np.ascontiguousarray(prob, np.uint8))
                count += 1
        if ids is not None:
            if len(ids) != count:
                raise ValueError(f"{path}: {len(ids)} ids for {count} maps")
            _write(archive, IDS, np.array([str(i) for i in ids], dtype=str))
    return count


def _write(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    info = zipfile.ZipInfo(name, date_time=EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w") as handle:
        np.lib.format.write_array(handle, array, allow_pickle=False)


def _write_bands(archive: zipfile.ZipFile, name: str, bands: RowBands) -> None:
    """The .npy of `bands`: its header, then each band's bytes as they come (C order is row order)."""
    info = zipfile.ZipInfo(name, date_time=EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    height, width = (int(v) for v in bands.shape)
    stream = iter(bands.bands)
    first = next(stream, None)
    if first is None:
        raise ValueError(f"{name}: no rows for a map of {bands.shape}")
    classes = first.shape[0] if first.ndim == 3 else None
    rows = 0
    with contextlib.ExitStack() as stack, archive.open(info, "w") as handle:
        later = [stack.enter_context(tempfile.SpooledTemporaryFile(SPOOL)) for _ in range((classes or 1) - 1)]
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                  "shape": (height, width) if classes is None else (classes, height, width)}
        np.lib.format.write_array_header_1_0(handle, header)
        for band in itertools.chain([first], stream):
            expected = (width,) if classes is None else (classes, width)
            if band.ndim != len(expected) + 1 or band.shape[:-2] + band.shape[-1:] != expected:
                raise ValueError(f"{name}: a band of shape {band.shape} in a map of {header['shape']}")
            band = np.ascontiguousarray(band, np.uint8)
            handle.write((band if classes is None else band[0]).tobytes())
            for spool, channel in zip(later, band[1:] if classes else ()):
                spool.write(channel.tobytes())
            rows += band.shape[-2]
        if rows != height:
            raise ValueError(f"{name}: {rows} rows written for a map of {header['shape']}")
        for spool in later:
            spool.seek(0)
            shutil.copyfileobj(spool, handle)


def count_maps(path: Path) -> int:
    return sum(name != IDS for name in _open(str(path), _version(path)).namelist())


def map_ids(path: Path) -> list[str] | None:
    """The image ids of the maps, in order; None for a file written without them."""
    archive = _open(str(path), _version(path))
    if IDS not in archive.namelist():
        return None
    with archive.open(IDS) as handle:
        return np.lib.format.read_array(handle, allow_pickle=False).tolist()


def read_map(path: Path, row: int) -> np.ndarray:
    """Map `row` of the file at `path`, as (H, W) uint8 ((C, H, W) with classes)."""
    with _open(str(path), _version(path)).open(member(row)) as handle:
        return np.lib.format.read_array(handle, allow_pickle=False)


def _version(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_ino, stat.st_mtime_ns  # a file replaced by a rerun is opened anew


@per_process(maxsize=16)  # a few models' files per process
def _open(path: str, version: tuple[int, int]) -> zipfile.ZipFile:
    return zipfile.ZipFile(path)
