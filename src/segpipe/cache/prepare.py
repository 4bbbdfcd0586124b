"""Decode every training image and mask once, resize to training size (or scale), cache as uint8 arrays.

Training then reads `np.load(..., mmap_mode="r")` slices instead of decoding files in
every `__getitem__`. Decoding runs in a process pool; each worker writes its rows straight
into the output .npy files, so nothing large crosses process boundaries. Test images are
not cached (predict reads them once, straight from the source): only their ids and
original sizes, read from the file headers, go into the test index.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from tqdm import tqdm

from segpipe.cache.images import check_mask_size, resize_image, resize_labels
from segpipe.cache.tiles import TILE_COLUMNS, Layout, scaled_size, tile_index
from segpipe.core.errors import InputError
from segpipe.core.labels import Labels
from segpipe.core.runtime import atomic_path, create_npy, opencv_threads
from segpipe.datasets import Competition
from segpipe.datasets.readers import image_size
from segpipe.evaluation.scores import write_metric
from segpipe.paths.cache_files import TEST_INDEX, TILES, TRAIN_IMAGES, TRAIN_INDEX, TRAIN_MASKS

INDEX_COLUMNS = ("id", "group", "volume", "slice")  # the identity of a row, carried into the prepared indexes


@dataclass(frozen=True)
class _NpyRows:
    """Where the rows of a .npy file lie, so a worker can write row i without opening it as an array."""

    path: Path
    offset: int  # header size
    row_bytes: int

    @classmethod
    def of(cls, path: Path, array: np.memmap) -> _NpyRows:
        return cls(path, array.offset, array[0].nbytes)

    def write(self, index: int, row: np.ndarray) -> None:
        """One pwrite into the page cache: cheaper than faulting in each page of a writable
        mapping, and workers writing different rows never share a page table."""
        with open(self.path, "r+b") as handle:
            os.pwrite(handle.fileno(), np.ascontiguousarray(row, np.uint8).data,
                      self.offset + index * self.row_bytes)


def _decode_row(
    row: tuple[int, str, str | None],
    *,
    read_image: Callable,
    read_mask: Callable,
    size: tuple[int, int],
    channels: int,
    images: _NpyRows,
    masks: _NpyRows | None,
    labels: Labels = Labels(),
) -> tuple[int, int, int, int | tuple[int, ...]]:
    index, image_file, mask_file = row
    image, original = read_image(Path(image_file), at_least=size)
    if image.shape[2] != channels:
        raise InputError(f"{image_file}: has {image.shape[2]} channels, expected {channels}")
    images.write(index, resize_image(image, size))
    area = 0
    if masks is not None:
        mask = read_mask(mask_file)
        check_mask_size(mask, original, mask_file, image_file)
        if labels.exclusive and np.any(mask & (mask - 1)):  # two bits set somewhere
            raise InputError(f"{mask_file}: a pixel has two classes, but the competition's classes are exclusive "
                             "(one a pixel)")
        resized = resize_labels(mask, size, labels)
        area = int(np.count_nonzero(resized))
        if labels.several:  # any class's area, then each class's
            area = (area, *(int(a) for a in labels.areas(resized[None])[0]))
        masks.write(index, resized)
    return index, original[0], original[1], area


def cache_split(
    frame: pd.DataFrame,
    competition: Competition,
    size: tuple[int, int],
    images_path: Path,
    masks_path: Path | None,
    workers: int,
    desc: str,
) -> pd.DataFrame:
    """Decode `frame`'s images (and masks when `masks_path` is given) into .npy files.

    Returns the index table: one row per image with its original height and width and,
    for labelled splits, the mask area in pixels at training size (with classes: any
    class's, plus `area_<class>` for each).
    """
    channels = competition.read_image(Path(frame.image.iloc[0]), at_least=size)[0].shape[2]
    # space reserved up front: see create_npy
    images = _NpyRows.of(images_path, create_npy(images_path, (len(frame), *size, channels)))
    masks = _NpyRows.of(masks_path, create_npy(masks_path, (len(frame), *size))) if masks_path else None
    mask_files = frame["mask"].astype(str) if masks_path else [None] * len(frame)
    rows = list(zip(range(len(frame)), frame.image.astype(str), mask_files))
    decode = partial(_decode_row, read_image=competition.read_image, read_mask=competition.read_mask,
                     size=size, channels=channels, images=images, masks=masks, labels=competition.labels)
    # Chunks amortise inter-process traffic (~0.1 ms each, against ~5-10 ms an image), but a
    # worker left without a chunk idles while the last ones finish: at least 16 chunks a
    # worker keep that tail short (120 rows in chunks of 15 cost 2 workers ~10 %).
    chunksize = max(1, min(16, len(rows) // (16 * workers)))
    results = []
    with opencv_threads(1), multiprocessing.get_context("fork").Pool(workers) as pool:  # one thread per worker
        for result in tqdm(pool.imap_unordered(decode, rows, chunksize=chunksize), total=len(rows), desc=desc):
            results.append(result)
    results.sort()
    index = frame[[c for c in INDEX_COLUMNS if c in frame]].reset_index(drop=True)
    index["height"] = [r[1] for r in results]
    index["width"] = [r[2] for r in results]
    if masks_path is not None and competition.classes:
        areas = np.array([r[3] for r in results], dtype=np.int64).reshape(len(results), -1)  # any, then each class
        index["mask_area"] = areas[:, 0]
        for k, name in enumerate(competition.classes):
            index[f"area_{name}"] = areas[:, k + 1]
    elif masks_path is not None:
        index["mask_area"] = [r[3] for r in results]
    return index


def image_sizes(frame: pd.DataFrame, workers: int, desc: str) -> list[tuple[int, int]]:
    """(height, width) of each of `frame`'s images, read from the file headers in a process pool."""
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return list(tqdm(pool.imap(image_size, frame.image.astype(str), chunksize=64), total=len(frame), desc=desc))


def test_index(frame: pd.DataFrame, workers: int) -> pd.DataFrame:
    """The test index: id (and group and slice, where known) with each image's original height and width."""
    sizes = image_sizes(frame, workers, "test sizes")
    index = frame[[c for c in INDEX_COLUMNS if c in frame]].reset_index(drop=True)
    index["height"], index["width"] = [h for h, _ in sizes], [w for _, w in sizes]
    return index


def tile_layout(train: pd.DataFrame, scale: float, tile: tuple[int, int], workers: int) -> Layout:
    """Tile mode's layout: the training images' one size times `scale`, checked to hold a tile.

    The cache is one (N, H, W, C) array, so the training images must share a size (Carvana's
    are all 1280 x 1918); test images may have any size (they are predicted window by window).
    """
    sizes = image_sizes(train, workers, "train sizes")
    for path, size in zip(train.image, sizes):
        if size != sizes[0]:
            raise InputError(f"{path}: {size[0]}x{size[1]} (HxW), but {train.image.iloc[0]} is "
                             f"{sizes[0][0]}x{sizes[0][1]}; tile mode needs training images of one size "
                             "(use prepare.mode: resize)")
    size = scaled_size(*sizes[0], scale)
    if size[0] < tile[0] or size[1] < tile[1]:
        raise InputError(f"prepare.tile {list(tile)} is larger than the training images at prepare.scale {scale} "
                         f"({size[0]}x{size[1]}); use a smaller tile or a larger scale")
    return Layout("tile", size, scale, tuple(tile))


def prepare_competition(competition: Competition, out_dir: Path, size: tuple[int, int], workers: int = 0, *,
                        mode: str = "resize", scale: float = 1.0, tile: tuple[int, int] | None = None) -> None:
    """Write the prepared training cache and the test index for `competition` into `out_dir` (atomically).

    In tile mode (`mode="tile"`) the images are cached at `scale` instead of resized to
    `size`, and the tile index (`segpipe.cache.tiles`) is written too.
    """
    workers = workers or os.cpu_count() or 1
    for split, frame in (("train", competition.train), ("test", competition.test)):
        if frame.empty:
            raise InputError(f"{competition.name}: the {split} set is empty")
        duplicated = frame.id[frame.id.duplicated()].tolist()
        if duplicated:
            raise InputError(f"{competition.name}: duplicate {split} ids {duplicated[:5]}")
    layout = tile_layout(competition.train, scale, tile, workers) if mode == "tile" else Layout("resize", tuple(size))
    layout = dataclasses.replace(layout, labels=competition.labels)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        train = cache_split(competition.train, competition, layout.size, tmp / TRAIN_IMAGES, tmp / TRAIN_MASKS,
                            workers, "train")
        train.to_csv(tmp / TRAIN_INDEX, index=False)
        test_index(competition.test, workers).to_csv(tmp / TEST_INDEX, index=False)
        tiles = (tile_index(np.load(tmp / TRAIN_MASKS, mmap_mode="r"), layout.tile, layout.labels.classes) if layout.tile
                 else pd.DataFrame(columns=list(TILE_COLUMNS)))  # always there: the train stages depend on it
        tiles.to_csv(tmp / TILES, index=False)
        layout.write(tmp)
        write_metric(tmp, competition.metric)  # apart from the layout: a new metric retrains nothing
