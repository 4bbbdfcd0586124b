"""Several classes in one uint8 mask: bit k (value 1 << k) marks class k.

A multi-label competition (classes may overlap: Severstal's defects, UW-Madison's organs)
caches its masks as (N, H, W) uint8 like a binary one, so every reader of the cache keeps
its shapes and a binary mask is the one-class case (bit 0, values {0, 1}). Each class is
resized on its own with the binary rule (`segpipe.cache.images.resize_bits`), then packed.
`ClassMasks` shows one class of a cached array as {0, 1} masks, so the binary scoring and
search code runs per class unchanged. No torch or OpenCV here: the evaluation stages use it.
"""
from __future__ import annotations

import numpy as np


def class_areas(masks: np.ndarray, classes: int) -> np.ndarray:
    """(N, classes) pixel count of each class in each of the (N, H, W) bit masks."""
    masks = np.asarray(masks)
    return np.stack([np.count_nonzero((masks >> k) & 1, axis=(1, 2)) for k in range(classes)], axis=1)


class ClassMasks:
    """Class `k` of (N, H, W) bit masks (a memmap is fine) as {0, 1} uint8 masks, read on indexing."""

    def __init__(self, masks: np.ndarray, k: int):
        self.masks, self.k = masks, k

    def __getitem__(self, index) -> np.ndarray:
        return (np.asarray(self.masks[index]) >> self.k) & 1

    def __len__(self) -> int:
        return len(self.masks)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.masks.shape


def of_class(masks: np.ndarray, k: int | None) -> np.ndarray | ClassMasks:
    """The masks of class `k`; all of them (the binary masks) when `k` is None."""
    return masks if k is None else ClassMasks(masks, k)


def argmax_first(probs: np.ndarray) -> np.ndarray:
    """Exclusive classes: each pixel of (..., C, H, W) uint8 class probabilities keeps only its
    winning class's probability, the others 0; where the background wins (its probability is
    255 minus the classes' sum: a softmax's), every class is 0. Ties go to the background,
    then to the lower class. The rules then cut what is left, class by class."""
    probs = np.asarray(probs)
    background = 255 - np.minimum(probs.sum(axis=-3, dtype=np.int32), 255)
    best = probs.argmax(axis=-3)[..., None, :, :]
    top = np.take_along_axis(probs, best, axis=-3)
    wins = (np.arange(probs.shape[-3])[:, None, None] == best) & (top > background[..., None, :, :])
    return np.where(wins, probs, 0).astype(np.uint8)


def class_maps(probs: np.ndarray, k: int | None) -> np.ndarray:
    """Class `k`'s maps of (N, C, H, W) probabilities (a view); `probs` itself when `k` is None."""
    return probs if k is None else probs[:, k]
