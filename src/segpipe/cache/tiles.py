"""Tile mode: images cached at `scale`, the tiles that cover them, and the sliding-window grid.

Prepare writes, beside the cache, `layout.json` (the mode, the scale, the tile) and in tile
mode `tiles.csv`: the tiles that cover each training image edge to edge (image row, y, x)
with their foreground pixel count. Whole scaled images are cached, not tiles: a crop is a
strided read of the memmap at any offset, so training sees every position, not only a
grid, and the cache is no larger than the images (`bench/bench_tiles.py` times both).

Each training draw is, with probability `foreground`, centred near a random foreground
pixel of a tile that has one (nnU-Net oversamples foreground in 33 % of a batch; with
classes, of a class drawn first, uniformly among those present, as nnU-Net does), else a
uniform random crop of a random training image (`segpipe.training.loaders.TileDataset`). Validation
uses the index tiles as they are. This module needs no torch, so prepare does not load it.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from segpipe.core.errors import InputError
from segpipe.core.labels import Labels
from segpipe.paths.cache_files import LAYOUT, TILES

TILE_COLUMNS = ("row", "y", "x", "foreground")


def window_starts(length: int, tile: int, step: float) -> list[int]:
    """Start offsets of windows of `tile` along a side of `length`: at most step*tile apart, last one flush.

    nnU-Net's `compute_steps_for_sliding_window`: the fewest windows that keep the spacing
    at most `step` x tile, spread evenly. A side shorter than the tile gets one window (the
    image is padded to it).
    """
    if length <= tile:
        return [0]
    count = math.ceil((length - tile) / (tile * step)) + 1
    spacing = (length - tile) / (count - 1)
    return [int(round(spacing * i)) for i in range(count)]


@dataclass(frozen=True)
class Windows:
    """Sliding-window inference: the training tile (H, W) and the step as a fraction of it."""

    tile: tuple[int, int]
    step: float = 0.5


@dataclass(frozen=True)
class Layout:
    """How prepare cached the images: resized to `size`, or at `scale` for `tile`-sized crops."""

    mode: str  # resize | tile
    size: tuple[int, int]  # the cached (H, W) of the training images
    scale: float = 1.0  # tile mode: cached size / original size
    tile: tuple[int, int] | None = None  # tile mode: what the model sees
    labels: Labels = Labels()  # what the cached bit masks hold (`segpipe.core.labels`)

    def write(self, folder: Path) -> None:
        fields = {**asdict(self), **self.labels.to_dict()}
        del fields["labels"]  # its fields at the top level; a binary competition's file has none
        (folder / LAYOUT).write_text(json.dumps(fields, indent=1) + "\n")

    @classmethod
    def read(cls, folder: Path) -> Layout:
        path = folder / LAYOUT
        if not path.is_file():  # a cache from before tile mode
            raise InputError(f"{path}: missing; rerun `dvc repro prepare`")
        raw = json.loads(path.read_text())
        tile = tuple(raw["tile"]) if raw.get("tile") else None
        return cls(raw["mode"], tuple(raw["size"]), raw.get("scale", 1.0), tile, Labels.from_dict(raw))

    @property
    def tiled(self) -> bool:
        return self.mode == "tile"

    def windows(self, step: float) -> Windows | None:
        """Sliding windows of the tile at `step` in tile mode; None (whole images) in resize mode."""
        return Windows(self.tile, step) if self.tiled else None

    def scaled(self, height: int, width: int) -> tuple[int, int]:
        """The size an original (height, width) image is predicted at: `size` in resize mode."""
        return scaled_size(height, width, self.scale) if self.tiled else self.size


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(height, width) times `scale`, rounded, at least 1 px a side."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def tile_index(masks: np.ndarray, tile: tuple[int, int], classes: tuple[str, ...] = ()) -> pd.DataFrame:
    """Tiles covering each (H, W) mask of `masks` without gaps (last ones flush), with foreground counts.

    With `classes` (bit masks, `segpipe.core.labels`), `foreground` counts any class and
    `foreground_<class>` each one, so the sampler can draw every class as often.
    """
    height, width = masks.shape[1:3]
    ys, xs = window_starts(height, tile[0], 1.0), window_starts(width, tile[1], 1.0)
    bits = np.uint8(1) << np.arange(len(classes), dtype=np.uint8)
    rows = []
    for row in range(len(masks)):
        mask = np.asarray(masks[row])
        for y in ys:
            for x in xs:
                window = mask[y:y + tile[0], x:x + tile[1]]
                per_class = [int(np.count_nonzero(window & bit)) for bit in bits]
                rows.append((row, y, x, int(np.count_nonzero(window)), *per_class))
    return pd.DataFrame(rows, columns=[*TILE_COLUMNS, *(f"foreground_{name}" for name in classes)])


def read_tiles(folder: Path) -> pd.DataFrame:
    path = folder / TILES
    if not path.is_file():
        raise InputError(f"{path}: missing (tile mode writes it); rerun `dvc repro prepare`")
    return pd.read_csv(path)


def crop(images: np.ndarray, row: int, y: int, x: int, tile: tuple[int, int],
         neighbours: np.ndarray | None = None) -> np.ndarray:
    """images[row] (or its slice stack, `segpipe.cache.stacks`) cropped to the tile at (y, x): (h, w, S*C)."""
    stack = [row] if neighbours is None else neighbours[row]
    return np.concatenate([images[r, y:y + tile[0], x:x + tile[1]] for r in stack], axis=-1)
