"""Probability maps from an `Ensemble`, shared by the OOF pass and the test pass.

Two layouts, as prepare made the images (`segpipe.cache.tiles.Layout`): whole images at training size,
predicted a batch at a time; or images at `scale`, predicted with sliding windows of the
training tile (`segpipe.inference.windows`), one image at a time. Either way the result is uint8
(0-255) maps in input order, one batch in memory at a time.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch

from segpipe.cache import stacks
from segpipe.cache.tiles import Windows
from segpipe.inference import windows
from segpipe.inference.ensemble import Ensemble
from segpipe.network.inputs import autocast, prepare_for_inference

__all__ = ["Ensemble", "Windows", "autocast", "ensemble_batches", "predict_batches", "prepare_for_inference"]


def to_uint8(probs: torch.Tensor) -> np.ndarray:
    return (probs * 255).round_().to(torch.uint8).cpu().numpy()


def ensemble_batches(ensemble: Ensemble, batches: Iterable[torch.Tensor],
                     sliding: Windows | None = None, window_batch: int = 16) -> Iterator[np.ndarray]:
    """Yield (B, H, W) uint8 probabilities for each (B, H, W, C) uint8 batch of `batches`.

    With `sliding`, each image of a batch is predicted window by window (`window_batch`
    windows at a time) and its map stitched at its own size, so a batch is then one image.
    """
    for batch in batches:
        if sliding is None:
            yield to_uint8(ensemble(batch))
            continue
        for image in batch.numpy():
            yield windows.stitch(ensemble, image, sliding.tile, sliding.step, window_batch, ensemble.device)[None]


def predict_batches(ensemble: Ensemble, images: np.ndarray, batch_size: int, *, rows: np.ndarray | None = None,
                    neighbours: np.ndarray | None = None, sliding: Windows | None = None) -> Iterator[np.ndarray]:
    """`ensemble_batches` over `images[rows]` (a memmap is fine: one batch is in memory at a time).

    With `neighbours` (`segpipe.cache.stacks`), each row goes in as its slice stack. With
    `sliding`, one image is read at a time and `batch_size` counts windows.
    """
    rows = np.arange(len(images)) if rows is None else np.asarray(rows)
    step = 1 if sliding else batch_size
    batches = (torch.from_numpy(stacks.gather(images, rows[start:start + step], neighbours))
               for start in range(0, len(rows), step))
    return ensemble_batches(ensemble, batches, sliding, batch_size)
