"""Tile mode's cache: whole images that training crops from (ours) against pre-cut tiles.

40 Carvana-sized RGB images (1280x1918) and masks in .npy files, tiles of 256².
- Ours: the whole-image cache prepare writes; a training sample is `TileDataset`'s draw (a
  third placed on foreground, the rest uniform), a strided crop of the memmap.
- The usual way: prepare cuts the images into tiles at step 1/2 (nnU-Net's inference grid)
  and writes them as one (T, 256, 256, 3) array; a sample reads one random tile.
Timed: writing each cache from decoded images (the part of prepare that differs), reading
2,000 training samples from each with the page cache warm, and the disk each takes.
Run as `python bench/bench_tiles.py`.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from side_by_side import CARVANA, car_mask, median_seconds

from segpipe.cache.tiles import tile_index
from segpipe.core.runtime import create_npy
from segpipe.inference.windows import window_starts
from segpipe.training.loaders import TileDataset

IMAGES, TILE, SAMPLES, REPEATS = 40, (256, 256), 2_000, 3


def decoded() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    masks = np.stack([car_mask(i).astype(np.uint8) for i in range(IMAGES)])
    images = rng.integers(0, 256, (IMAGES, *CARVANA, 3), dtype=np.uint8)
    return images, masks


def write_whole(folder: Path, images: np.ndarray, masks: np.ndarray) -> None:
    out = create_npy(folder / "images.npy", images.shape)
    out[:] = images
    out.flush()
    mask_out = create_npy(folder / "masks.npy", masks.shape)
    mask_out[:] = masks
    mask_out.flush()
    tile_index(mask_out, TILE).to_csv(folder / "tiles.csv", index=False)


def corners() -> list[tuple[int, int]]:
    return [(y, x) for y in window_starts(CARVANA[0], TILE[0], 0.5) for x in window_starts(CARVANA[1], TILE[1], 0.5)]


def write_tiles(folder: Path, images: np.ndarray, masks: np.ndarray) -> None:
    grid = corners()
    out = create_npy(folder / "tiles.npy", (IMAGES * len(grid), *TILE, 3))
    mask_out = create_npy(folder / "tile_masks.npy", (IMAGES * len(grid), *TILE))
    for i in range(IMAGES):
        for j, (y, x) in enumerate(grid):
            out[i * len(grid) + j] = images[i, y:y + TILE[0], x:x + TILE[1]]
            mask_out[i * len(grid) + j] = masks[i, y:y + TILE[0], x:x + TILE[1]]
    out.flush()
    mask_out.flush()


def read_whole(folder: Path) -> None:
    dataset = TileDataset(folder / "images.npy", folder / "masks.npy", pd.read_csv(folder / "tiles.csv"), TILE,
                          draw=True, foreground=0.33, seed=0)
    for item in range(SAMPLES):
        dataset[item % len(dataset)]


def read_tiles(folder: Path) -> None:
    tiles, masks = np.load(folder / "tiles.npy", mmap_mode="r"), np.load(folder / "tile_masks.npy", mmap_mode="r")
    rng = np.random.default_rng(0)
    for pick in rng.integers(len(tiles), size=SAMPLES):
        np.array(tiles[pick]), np.array(masks[pick])


def size_mb(folder: Path, names: tuple[str, ...]) -> float:
    return sum((folder / name).stat().st_size for name in names) / 2**20


def main() -> None:
    images, masks = decoded()
    with tempfile.TemporaryDirectory() as tmp:
        whole, tiled = Path(tmp) / "whole", Path(tmp) / "tiled"
        whole.mkdir()
        tiled.mkdir()
        seconds = median_seconds({"write whole": lambda: write_whole(whole, images, masks),
                                  "write tiles": lambda: write_tiles(tiled, images, masks),
                                  "read whole": lambda: read_whole(whole), "read tiles": lambda: read_tiles(tiled)},
                                 REPEATS)
        disk = {"whole": size_mb(whole, ("images.npy", "masks.npy")),
                "tiles": size_mb(tiled, ("tiles.npy", "tile_masks.npy"))}
    print(f"Tile-mode cache: {IMAGES} images of {CARVANA[0]}x{CARVANA[1]}, tiles {TILE[0]}², median of {REPEATS}\n")
    print(f"{'':<34}{'pre-cut tiles':>14}{'whole (ours)':>14}{'tiles/ours':>12}")
    write_t, write_w = seconds["write tiles"].wall, seconds["write whole"].wall
    print(f"{'write the cache (s)':<34}{write_t:>14.2f}{write_w:>14.2f}{write_t / write_w:>12.2f}")
    read_t, read_w = SAMPLES / seconds["read tiles"].wall, SAMPLES / seconds["read whole"].wall
    print(f"{'training samples/s (warm)':<34}{read_t:>14.0f}{read_w:>14.0f}{read_t / read_w:>12.2f}")
    print(f"{'disk (MB)':<34}{disk['tiles']:>14.0f}{disk['whole']:>14.0f}{disk['tiles'] / disk['whole']:>12.2f}")
    print(f"\npre-cut tiles at step 1/2: {len(corners())} per image, every pixel stored "
          f"{len(corners()) * TILE[0] * TILE[1] / (CARVANA[0] * CARVANA[1]):.1f} times; crops from whole images "
          "can start at any pixel")


if __name__ == "__main__":
    main()
