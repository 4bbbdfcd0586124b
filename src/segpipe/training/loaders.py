"""Training data: the prepared uint8 cache, optionally augmented per sample with albumentations.

Samples stay uint8 all the way to the device, where `to_model_input` normalises them, so
the loader moves a quarter of the bytes a float pipeline would.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler, WeightedRandomSampler

from segpipe.cache import stacks
from segpipe.cache.tiles import crop
from segpipe.config.train import Augment
from segpipe.core.labels import Labels
from segpipe.core.runtime import opencv_threads

if TYPE_CHECKING:
    import albumentations as A


def build_augmentation(augment: Augment) -> A.Compose:
    """Scale, rotate and flip as in the brain-MRI U-Net tutorial, plus optional brightness."""
    import albumentations as A  # here: only `augment.batched: false` needs it, and it takes ~1 s to import

    transforms = [
        A.Affine(scale=(1 - augment.scale, 1 + augment.scale), rotate=(-augment.rotate, augment.rotate),
                 border_mode=cv2.BORDER_CONSTANT, p=1.0),
        A.HorizontalFlip(p=augment.hflip),
    ]
    if augment.brightness:
        transforms.append(A.RandomBrightnessContrast(augment.brightness, augment.brightness, p=0.5))
    return A.Compose(transforms)


class _CachedDataset(Dataset):
    """Samples read from the prepared (N,H,W,C) images and (N,H,W) masks, opened lazily.

    With `neighbours` (`segpipe.cache.stacks.neighbour_rows`), each image is its slice stack,
    (H,W,S*C). Call `set_epoch` before each epoch: every sample is drawn and augmented from
    seeds of (seed, epoch, item), so a run gives the same samples whatever the number of
    loader workers.
    """

    def __init__(self, images_path: Path, masks_path: Path, augmentation: A.Compose | None, seed: int,
                 neighbours: np.ndarray | None) -> None:
        self.images_path, self.masks_path = images_path, masks_path
        self.augmentation, self.seed, self.neighbours = augmentation, seed, neighbours
        self.epoch = 0
        self._images = self._masks = None  # opened lazily: memmaps don't survive pickling to workers

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._images is None:
            self._images = np.load(self.images_path, mmap_mode="r")
            self._masks = np.load(self.masks_path, mmap_mode="r")
        return self._images, self._masks

    def _augmented(self, image: np.ndarray, mask: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        if self.augmentation is None:
            return image, mask
        self.augmentation.set_random_seed(seed)
        out = self.augmentation(image=image, mask=mask)
        return out["image"], out["mask"]


class SliceDataset(_CachedDataset):
    """Rows `indices` of the cache, each image whole."""

    def __init__(self, images_path: Path, masks_path: Path, indices: np.ndarray,
                 augmentation: A.Compose | None = None, seed: int = 0,
                 neighbours: np.ndarray | None = None) -> None:
        super().__init__(images_path, masks_path, augmentation, seed, neighbours)
        self.indices = np.asarray(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        images, masks = self._arrays()
        row = self.indices[item]
        image, mask = stacks.gather(images, [row], self.neighbours)[0], np.array(masks[row])
        return self._augmented(image, mask, hash((self.seed, self.epoch, int(row))) & 0x7FFFFFFF)


class TileDataset(_CachedDataset):
    """Tile-sized crops of the cache (`segpipe.cache.tiles`), drawn for training or fixed for validation.

    Training (`draw=True`): item i of epoch e comes from its own generator seeded with
    (seed, e, i). With probability `foreground` the crop is placed so that a random
    foreground pixel of a random tile with foreground lands anywhere in it (nnU-Net's
    oversampling; with classes, `tiles`' `foreground_<class>` columns, a class present in
    these tiles is drawn first, then a pixel of that class); otherwise it is a uniform
    random crop of a random image. An epoch has
    `draws` draws (default: as many as `tiles` has rows, the images' pixels once). Validation (`draw=False`):
    item i is tile i of `tiles`.
    """

    def __init__(self, images_path: Path, masks_path: Path, tiles: pd.DataFrame, tile: tuple[int, int], *,
                 draw: bool, foreground: float = 0.0, seed: int = 0, augmentation: A.Compose | None = None,
                 neighbours: np.ndarray | None = None, draws: int | None = None) -> None:
        super().__init__(images_path, masks_path, augmentation, seed, neighbours)
        self.tile, self.draw, self.foreground = tuple(tile), draw, foreground
        self.draws = draws if draw else None
        self.corners = tiles[["row", "y", "x"]].to_numpy(np.int64)  # numpy, not pandas: ~1 ms less a sample
        self.rows = np.unique(self.corners[:, 0])
        # (mask bits, the tiles that hold them): one pool per class present (bit k), or any foreground
        per_class = [column for column in tiles.columns if column.startswith("foreground_")]
        pools = [(1 << k, column) for k, column in enumerate(per_class)] or [(0xFF, "foreground")]
        self.pools = [(bit, self.corners[tiles[column].to_numpy() > 0]) for bit, column in pools]
        self.pools = [(bit, corners) for bit, corners in self.pools if len(corners)]

    def __len__(self) -> int:
        return self.draws or len(self.corners)

    def __getitem__(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        images, masks = self._arrays()
        if self.draw:
            rng = np.random.default_rng([self.seed, self.epoch, item])
            row, y, x = self._draw(rng, masks)
        else:
            row, y, x = (int(v) for v in self.corners[item])
        image = crop(images, row, y, x, self.tile, self.neighbours)
        mask = np.array(masks[row, y:y + self.tile[0], x:x + self.tile[1]])
        return self._augmented(image, mask, int(rng.integers(2**31)) if self.draw else item)

    def _draw(self, rng: np.random.Generator, masks: np.ndarray) -> tuple[int, int, int]:
        height, width = masks.shape[1:3]
        th, tw = self.tile
        if self.pools and rng.random() < self.foreground:
            bit, tiles = self.pools[int(rng.integers(len(self.pools))) if len(self.pools) > 1 else 0]
            row, y, x = (int(v) for v in tiles[rng.integers(len(tiles))])
            on = np.flatnonzero(masks[row, y:y + th, x:x + tw] & bit)
            fy, fx = divmod(int(on[rng.integers(len(on))]), tw)
            cy, cx = y + fy, x + fx  # this pixel lands anywhere in the crop
            return (row, int(np.clip(cy - rng.integers(th), 0, height - th)),
                    int(np.clip(cx - rng.integers(tw), 0, width - tw)))
        row = int(self.rows[rng.integers(len(self.rows))])
        return row, int(rng.integers(height - th + 1)), int(rng.integers(width - tw + 1))


def mask_areas(masks_path: Path, rows: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Foreground pixel count of each of `rows` in the cached (N,H,W) masks, read chunk by chunk."""
    masks = np.load(masks_path, mmap_mode="r")
    rows = np.asarray(rows)
    return np.concatenate([np.count_nonzero(masks[rows[i:i + chunk]], axis=(1, 2))
                           for i in range(0, len(rows), chunk)] or [np.zeros(0, np.int64)])


def class_mask_areas(masks_path: Path, rows: np.ndarray, labels: Labels = Labels(), chunk: int = 512) -> np.ndarray:
    """`mask_areas`, or with several classes the (rows, classes) pixel count of each (`Labels.areas`)."""
    if not labels.several:
        return mask_areas(masks_path, rows, chunk)
    masks = np.load(masks_path, mmap_mode="r")
    rows = np.asarray(rows)
    return np.concatenate([labels.areas(masks[rows[i:i + chunk]]) for i in range(0, len(rows), chunk)]
                          or [np.zeros((0, labels.channels), np.int64)])


def lesion_weights(areas: np.ndarray) -> np.ndarray:
    """Sampling probabilities w_i = (a_i + 0.1 A/n) / (1.1 A), A = sum of the n areas.

    The brain-MRI U-Net tutorial's scheme: slices are drawn in proportion to their mask
    area, plus a tenth of the mean area so empty slices are still seen. The weights sum to
    1; with no foreground at all (A = 0) they are uniform. Given (n, classes) areas, the
    mean of each class's weights: a draw per class, whatever its share of the pixels.
    """
    areas = np.asarray(areas, dtype=np.float64)
    if areas.ndim == 2:  # (n, classes): each class draws an equal share, so a rare class is seen as often
        return np.mean([lesion_weights(areas[:, k]) for k in range(areas.shape[1])], axis=0)
    total, n = areas.sum(), len(areas)
    if total == 0:
        return np.full(n, 1.0 / n)
    return (areas + 0.1 * total / n) / (1.1 * total)


class ShardSampler(Sampler):
    """Every `world`-th index of `base`, starting at `rank`: one process's share under DDP.

    All processes seed `base` alike, so they draw the same sequence and take disjoint,
    equally long slices of it (the tail that does not divide evenly is dropped).
    """

    def __init__(self, base: Sampler, rank: int, world: int) -> None:
        self.base, self.rank, self.world = base, rank, world

    def __len__(self) -> int:
        return len(self.base) // self.world

    def __iter__(self):
        indices = list(self.base)[: len(self) * self.world]
        return iter(indices[self.rank::self.world])


class ForkSafeLoader(DataLoader):
    """A DataLoader whose workers fork while OpenCV runs one thread.

    Workers fork at every pass; a child forked while OpenCV's thread pool is configured for
    several threads can hang in its first warp (seen as an intermittent stall with
    `num_workers` > 0). The parent's setting is restored once the workers are started.
    """

    def _get_iterator(self):
        with opencv_threads(1 if self.num_workers else None):
            return super()._get_iterator()


def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool, seed: int, num_workers: int,
                weights: np.ndarray | None = None, drop_last: bool = False,
                shard: tuple[int, int] = (0, 1), draws: int | None = None) -> DataLoader:
    """A DataLoader of uint8 batches; pinned memory when CUDA is there.

    A pass yields `draws` items (default len(dataset)): shuffled without replacement, in as
    many permutations as it takes, or with `weights` drawn with replacement in proportion
    to them. Order and draws come from one generator seeded with `seed` (`loader.generator`),
    so saving its state is enough to resume a run mid-way. `shard` = (rank, world size)
    gives each DDP process its slice of every pass.
    """
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if weights is not None:
        sampler = WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double),
                                        num_samples=draws or len(dataset), replacement=True, generator=generator)
    elif shuffle and draws is not None:
        sampler = RandomSampler(dataset, num_samples=draws, generator=generator)
    rank, world = shard
    if world > 1:
        base = sampler or (RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset))
        sampler = ShardSampler(base, rank, world)
    return ForkSafeLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None,
                          sampler=sampler, num_workers=num_workers, generator=generator,
                          pin_memory=torch.cuda.is_available(), drop_last=drop_last,
                          persistent_workers=False)


