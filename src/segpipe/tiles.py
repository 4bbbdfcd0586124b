"""Tile mode: training on crops of images cached at `scale`, with nnU-Net's foreground oversampling.

Prepare writes, beside the cache, `layout.json` (the mode, the scale, the tile) and in tile
mode `tiles.csv`: the tiles that cover each training image edge to edge (image row, y, x)
with their foreground pixel count. Whole scaled images are cached, not tiles: a crop is a
strided read of the memmap at any offset, so training sees every position, not only a
grid, and the cache is no larger than the images (`bench/bench_tiles.py` times both).

Each training draw is, with probability `foreground`, centred near a random foreground
pixel of a tile that has one (nnU-Net oversamples foreground in 33 % of a batch), else a
uniform random crop of a random training image. Validation uses the index tiles as they are.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from torch.utils.data import Dataset

from segpipe.cache_files import LAYOUT, TILES
from segpipe.errors import InputError
from segpipe.windows import window_starts

TILE_COLUMNS = ("row", "y", "x", "foreground")


@dataclass(frozen=True)
class Layout:
    """How prepare cached the images: resized to `size`, or at `scale` for `tile`-sized crops."""

    mode: str  # resize | tile
    size: tuple[int, int]  # the cached (H, W) of the training images
    scale: float = 1.0  # tile mode: cached size / original size
    tile: tuple[int, int] | None = None  # tile mode: what the model sees

    def write(self, folder: Path) -> None:
        (folder / LAYOUT).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def read(cls, folder: Path) -> Layout:
        path = folder / LAYOUT
        if not path.is_file():  # a cache from before tile mode
            raise InputError(f"{path}: missing; rerun `dvc repro prepare`")
        raw = json.loads(path.read_text())
        return cls(raw["mode"], tuple(raw["size"]), raw.get("scale", 1.0), tuple(raw["tile"]) if raw.get("tile") else None)

    def scaled(self, height: int, width: int) -> tuple[int, int]:
        """The size an original (height, width) image is predicted at: `size` in resize mode."""
        if self.mode == "resize":
            return self.size
        return max(1, round(height * self.scale)), max(1, round(width * self.scale))


def tile_index(masks: np.ndarray, tile: tuple[int, int]) -> pd.DataFrame:
    """Tiles covering each (H, W) mask of `masks` without gaps (last ones flush), with foreground counts."""
    height, width = masks.shape[1:3]
    ys, xs = window_starts(height, tile[0], 1.0), window_starts(width, tile[1], 1.0)
    rows = []
    for row in range(len(masks)):
        mask = np.asarray(masks[row])
        rows += [(row, y, x, int(np.count_nonzero(mask[y:y + tile[0], x:x + tile[1]]))) for y in ys for x in xs]
    return pd.DataFrame(rows, columns=list(TILE_COLUMNS))


def read_tiles(folder: Path) -> pd.DataFrame:
    path = folder / TILES
    if not path.is_file():
        raise InputError(f"{path}: missing (tile mode writes it); rerun `dvc repro prepare`")
    return pd.read_csv(path)


def crop(images: np.ndarray, row: int, y: int, x: int, tile: tuple[int, int],
         neighbours: np.ndarray | None = None) -> np.ndarray:
    """images[row] (or its slice stack, `segpipe.context`) cropped to the tile at (y, x): (h, w, S*C)."""
    stack = [row] if neighbours is None else neighbours[row]
    return np.concatenate([images[r, y:y + tile[0], x:x + tile[1]] for r in stack], axis=-1)


class TileDataset(Dataset):
    """Crops of the cached images and masks, drawn for training or fixed for validation.

    Training (`draw=True`): item i of epoch e is drawn from its own generator seeded with
    (seed, e, i), so a run gives the same crops whatever the number of loader workers.
    An epoch has as many draws as `tiles` has rows (the training images' pixels, once).
    """

    def __init__(self, images_path: Path, masks_path: Path, tiles: pd.DataFrame, tile: tuple[int, int], *,
                 draw: bool, foreground: float = 0.0, seed: int = 0, augmentation=None,
                 neighbours: np.ndarray | None = None) -> None:
        self.images_path, self.masks_path, self.tile = images_path, masks_path, tuple(tile)
        self.corners = tiles[["row", "y", "x"]].to_numpy(np.int64)  # numpy, not pandas: ~1 ms less a sample
        self.rows = np.unique(self.corners[:, 0])
        self.with_foreground = self.corners[tiles.foreground.to_numpy() > 0]
        self.draw, self.foreground, self.seed, self.epoch = draw, foreground, seed, 0
        self.augmentation, self.neighbours = augmentation, neighbours
        self._images = self._masks = None  # opened lazily: memmaps don't survive pickling to workers

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.corners)

    def __getitem__(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        if self._images is None:
            self._images = np.load(self.images_path, mmap_mode="r")
            self._masks = np.load(self.masks_path, mmap_mode="r")
        if self.draw:
            rng = np.random.default_rng([self.seed, self.epoch, item])
            row, y, x = self._draw(rng)
        else:
            row, y, x = (int(v) for v in self.corners[item])
        image = crop(self._images, row, y, x, self.tile, self.neighbours)
        mask = np.array(self._masks[row, y:y + self.tile[0], x:x + self.tile[1]])
        if self.augmentation is not None:
            self.augmentation.set_random_seed(int(rng.integers(2**31)) if self.draw else item)
            out = self.augmentation(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        return image, mask

    def _draw(self, rng: np.random.Generator) -> tuple[int, int, int]:
        height, width = self._masks.shape[1:3]
        th, tw = self.tile
        if len(self.with_foreground) and rng.random() < self.foreground:
            row, y, x = (int(v) for v in self.with_foreground[rng.integers(len(self.with_foreground))])
            on = np.flatnonzero(self._masks[row, y:y + th, x:x + tw])
            fy, fx = divmod(int(on[rng.integers(len(on))]), tw)
            cy, cx = y + fy, x + fx  # this pixel lands anywhere in the crop
            return (row, int(np.clip(cy - rng.integers(th), 0, height - th)),
                    int(np.clip(cx - rng.integers(tw), 0, width - tw)))
        row = int(self.rows[rng.integers(len(self.rows))])
        return row, int(rng.integers(height - th + 1)), int(rng.integers(width - tw + 1))
