"""The label spec: what a competition's masks hold, and everything that follows from it.

A binary competition has one foreground class. A multi-label one (Severstal's defects,
UW-Madison's organs) names up to 8 classes that may overlap: the network has a sigmoid per
class. A multiclass one (`exclusive`) has at most one class a pixel: the network has a softmax
over a background channel and the classes, and the maps go through `argmax_first` before any
cut. Every mask is cached as one (H, W) uint8 whatever the kind: bit k (value 1 << k) marks
class k, so a binary mask is the one-class case (bit 0, values {0, 1}) and every reader of the
cache keeps its shapes.

`Labels` is made once from the competition (`Competition.labels`), written into the cache's
layout (`segpipe.cache.tiles.Layout`), the checkpoint's inference contract and so the bundle,
and every stage asks it rather than branching on the class names. nnU-Net's `LabelManager`
plays this part there; smp's `mode` string is `Labels.kind`. No torch or OpenCV here: the
evaluation stages use it. The score that is maximised is not part of it (a new metric
retrains nothing): `segpipe.evaluation.scores`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Kind = Literal["binary", "multilabel", "multiclass"]  # smp's loss `mode` names
MAX_CLASSES = 8  # a bit each in the uint8 mask cache


@dataclass(frozen=True)
class Labels:
    """The classes of a competition's masks: () = binary, the one foreground class."""

    classes: tuple[str, ...] = ()  # the class names, in channel (and bit) order
    exclusive: bool = False  # at most one class a pixel: a softmax over background + classes, argmax first

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        if len(self.classes) > MAX_CLASSES or len(set(self.classes)) != len(self.classes) or "" in self.classes:
            raise ValueError(f"classes {list(self.classes)}: up to {MAX_CLASSES} distinct non-empty names")
        if self.exclusive and not self.classes:
            raise ValueError("exclusive classes need class names")

    # --- what the network and the maps look like ------------------------------------------

    @property
    def kind(self) -> Kind:
        return ("multiclass" if self.exclusive else "multilabel") if self.classes else "binary"

    @property
    def several(self) -> bool:
        """Named classes (multi-label or multiclass): maps are (C, H, W), each class searched alone."""
        return bool(self.classes)

    @property
    def channels(self) -> int:
        """The probability maps' channels: one per class, one for a binary competition."""
        return len(self.classes) or 1

    @property
    def outputs(self) -> int:
        """The network's output channels: the maps', plus the background of a softmax."""
        return self.channels + self.exclusive

    @property
    def names(self) -> tuple[str, ...]:
        """A name per channel: the classes, or "mask" for a binary competition."""
        return self.classes or ("mask",)

    def map_shape(self, size: tuple[int, int]) -> tuple[int, ...]:
        """The shape of one image's probability maps at `size`: (C, H, W), or (H, W) for a binary competition."""
        return (len(self.classes), *size) if self.classes else tuple(size)

    def as_channels(self, maps: np.ndarray) -> np.ndarray:
        """(N, C, H, W) maps of a batch stored as `map_shape` says (a view: binary maps get a channel axis)."""
        return maps if self.classes else maps[:, None]

    def indices(self) -> list[int | None]:
        """The class index of each channel for the per-class code paths: [None] for a binary competition."""
        return list(range(len(self.classes))) if self.classes else [None]

    # --- the bit masks ----------------------------------------------------------------------

    def bit(self, masks: np.ndarray, k: int | None) -> np.ndarray:
        """Bool masks of class `k` of (..., H, W) bit masks; any foreground when binary (`k` None or 0)."""
        masks = np.asarray(masks)
        return masks > 0 if not self.classes else ((masks >> k) & 1) > 0

    def split(self, masks: np.ndarray) -> np.ndarray:
        """(..., C, H, W) bool masks of each channel of (..., H, W) bit masks."""
        masks = np.asarray(masks)
        if not self.classes:
            return (masks > 0)[..., None, :, :]
        bits = np.arange(len(self.classes), dtype=masks.dtype)[:, None, None]
        return ((masks[..., None, :, :] >> bits) & 1) > 0

    def pack(self, bits: np.ndarray) -> np.ndarray:
        """(..., H, W) uint8 bit masks of (..., C, H, W) bool masks: `split` undone."""
        shifts = np.arange(self.channels, dtype=np.uint8)[:, None, None]
        return np.bitwise_or.reduce(np.asarray(bits).astype(np.uint8) << shifts, axis=-3)

    def packed(self, mask: np.ndarray) -> np.ndarray:
        """A mask as read (binary: non-zero is foreground) in the cache's uint8 bit form."""
        mask = np.asarray(mask)
        return mask.astype(np.uint8) if self.classes else (mask > 0).astype(np.uint8)

    def areas(self, masks: np.ndarray) -> np.ndarray:
        """(N, C) pixel count of each channel in (N, H, W) bit masks."""
        return class_areas(masks, self.channels) if self.classes else \
            np.count_nonzero(np.asarray(masks), axis=(1, 2))[:, None]

    def decided(self, probs: np.ndarray) -> np.ndarray:
        """(..., C, H, W) uint8 maps as the rules cut them: exclusive classes keep each pixel's winner."""
        return argmax_first(probs) if self.exclusive else probs

    # --- files ------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The json fields, defaults left out (a binary competition's files have none)."""
        return {**({"classes": list(self.classes)} if self.classes else {}),
                **({"exclusive": True} if self.exclusive else {})}

    @classmethod
    def from_dict(cls, stored: dict) -> Labels:
        return cls(tuple(stored.get("classes", ())), bool(stored.get("exclusive", False)))


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


def class_maps(probs: np.ndarray, k: int | None) -> np.ndarray:
    """Class `k`'s maps of (N, C, H, W) probabilities (a view); `probs` itself when `k` is None."""
    return probs if k is None else probs[:, k]


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
