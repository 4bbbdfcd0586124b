"""What one fold's training reads and writes: its loaders and its out-of-fold maps.

Resize mode trains on whole cached images. Tile mode (`segpipe.cache.tiles`) trains on crops
drawn with foreground oversampling, validates each epoch on the fixed tiles of the
validation images (nnU-Net's per-epoch "pseudo Dice" does the same), and writes the OOF
maps of the whole images by sliding windows, exactly as predict does the test images.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from segpipe.cache.tiles import Layout, Windows, read_tiles
from segpipe.config.train import Train
from segpipe.core.errors import InputError
from segpipe.core.labels import Labels
from segpipe.evaluation import oof_files
from segpipe.evaluation.metrics import DiceTally
from segpipe.inference.maps import Ensemble, predict_batches
from segpipe.network.contract import InferenceContract
from segpipe.training.distributed import Distributed
from segpipe.training.loaders import (
    SliceDataset,
    TileDataset,
    build_augmentation,
    class_mask_areas,
    lesion_weights,
    make_loader,
)


@dataclass(frozen=True)
class FoldPaths:
    """Inputs and outputs of one fold's training."""

    images: Path  # prepared (N,H,W,C) uint8
    masks: Path  # prepared (N,H,W) uint8
    model: Path  # best checkpoint
    oof: Path  # folder of the (n_val,H,W) uint8 probabilities and their ids (`segpipe.evaluation.oof_files`)
    live_dir: Path  # dvclive folder
    last: Path | None = None  # per-epoch resume state; None = no resume
    layout: Layout | None = None  # how prepare cached the images; None = resized whole images
    weights: tuple[Path, ...] = ()  # folders searched for named pretrained weights (`segpipe.network.pretrained`)

    @property
    def tiled(self) -> bool:
        return self.layout is not None and self.layout.tiled

    def windows(self, step: float) -> Windows | None:
        """Sliding-window inference at `step` in tile mode; None (whole images) in resize mode."""
        return self.layout.windows(step) if self.layout else None


def _datasets(cfg: Train, paths: FoldPaths, train_rows: np.ndarray, val_rows: np.ndarray, seed: int,
              neighbours: np.ndarray | None):
    augmentation = None if cfg.augment.batched else build_augmentation(cfg.augment)
    if not paths.tiled:
        labels = paths.layout.labels if paths.layout else Labels()
        weights = (lesion_weights(class_mask_areas(paths.masks, train_rows, labels)) if cfg.sampling == "lesion"
                   else None)
        return (SliceDataset(paths.images, paths.masks, train_rows, augmentation, seed, neighbours),
                SliceDataset(paths.images, paths.masks, val_rows, neighbours=neighbours), weights)
    if cfg.sampling != "uniform":
        raise InputError(f"train.sampling: {cfg.sampling!r} draws whole images; tile mode draws crops with "
                         "train.foreground instead: set train.sampling: uniform")
    tiles = read_tiles(paths.images.parent)
    tile = paths.layout.tile
    train_set = TileDataset(paths.images, paths.masks, tiles[tiles.row.isin(train_rows)], tile, draw=True,
                            foreground=cfg.foreground, seed=seed, augmentation=augmentation, neighbours=neighbours,
                            draws=cfg.steps_per_epoch * cfg.batch_size)
    val_set = TileDataset(paths.images, paths.masks, tiles[tiles.row.isin(val_rows)], tile, draw=False,
                          neighbours=neighbours)
    return train_set, val_set, None


def build_loaders(cfg: Train, paths: FoldPaths, train_rows: np.ndarray, val_rows: np.ndarray, seed: int,
                  dist: Distributed = Distributed(), neighbours: np.ndarray | None = None):
    """The training loader (uniform, lesion-weighted or tile draws) and the plain val loader.

An epoch of the training loader is `cfg.steps_per_epoch` batches, whatever the number of
training images: a small set is passed over several times, a large one in part (nnU-Net's
fixed iterations per epoch); over the run, `cfg.steps` optimizer steps.

    The training loader augments with albumentations only when `augment.batched` is off;
    otherwise `BatchAugment` does it on the device. Under DDP each process takes its shard
    of every pass, in batches of batch_size / world size, so the global batch matches a
    single-device run.
    """
    train_set, val_set, weights = _datasets(cfg, paths, train_rows, val_rows, seed, neighbours)
    batch_size = max(1, cfg.batch_size // dist.world_size)
    train_loader = make_loader(train_set, batch_size, shuffle=True, seed=seed, num_workers=cfg.num_workers,
                               weights=weights, drop_last=True, shard=(dist.rank, dist.world_size),
                               draws=cfg.steps_per_epoch * batch_size * dist.world_size)
    val_loader = make_loader(val_set, cfg.batch_size * 2, shuffle=False, seed=seed, num_workers=cfg.num_workers)
    return train_loader, val_loader


def write_oof(model: nn.Module, contract: InferenceContract, paths: FoldPaths, val_rows: np.ndarray, ids: np.ndarray,
              device: torch.device, batch_size: int, neighbours: np.ndarray | None = None) -> list[float]:
    """Write the fold's probabilities for its validation rows (`oof_files`), run as `contract` says (as predict
    runs the test images); return their Dice at 0.5, one per class (one for a binary competition)."""
    ensemble = Ensemble.following(contract, [model], device, names=[str(paths.model)])
    images = np.load(paths.images, mmap_mode="r")
    masks = np.load(paths.masks, mmap_mode="r")
    labels = contract.labels
    tally = DiceTally()
    with oof_files.writing(paths.oof, ids, labels.map_shape(images.shape[1:3])) as out:
        start = 0
        for probs in predict_batches(ensemble, images, batch_size, rows=val_rows, neighbours=neighbours,
                                     sliding=paths.windows(contract.window_step)):
            out[start:start + len(probs)] = probs
            tally.add(labels.as_channels(probs) >= 128, labels.split(masks[val_rows[start:start + len(probs)]]))
            start += len(probs)
    return tally.dice()
