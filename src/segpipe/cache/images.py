"""Resize an image or a mask to the training size: the one rule prepare, predict and submit share; and the
check, before any resize, that a mask has its image's size."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from segpipe.core.errors import InputError
from segpipe.core.labels import Labels


def check_mask_size(mask: np.ndarray, image_size: tuple[int, int], mask_file: Path | str,
                    image_file: Path | str) -> None:
    """InputError naming `mask_file` if `mask` is not `image_size` = (H, W): resized, the two would no longer
    line up, and nothing later could tell."""
    if mask.shape != tuple(image_size):
        raise InputError(f"{mask_file}: mask is {mask.shape[1]}x{mask.shape[0]} but its image is "
                         f"{image_size[1]}x{image_size[0]} ({image_file})")


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W[, C]) to `size` = (H, W): area averaging down, bilinear up."""
    height, width = size
    shrinking = image.shape[0] * image.shape[1] > height * width
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return resized if resized.ndim == image.ndim else resized[..., None]


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a bool mask to `size` as {0,1} uint8, by bilinear weight then a 0.5 cut (smoother than nearest)."""
    return (_weights(mask, size) >= 128).astype(np.uint8)


def _weights(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A bool mask's bilinear weights at `size`, 0-255: what `resize_mask` cuts at 128."""
    return cv2.resize(mask.astype(np.uint8) * 255, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def resize_labels(mask: np.ndarray, size: tuple[int, int], labels: Labels) -> np.ndarray:
    """Resize a (H, W) mask holding `labels` to `size`: a binary one by `resize_mask`; a bit mask of
    several classes (`segpipe.core.labels`) class by class by the same rule, then packed again.

    Exclusive classes stay one a pixel: where two classes' bilinear weights both reach 0.5
    (at a boundary between them), the larger weight wins (the lower class on a tie).
    """
    if not labels.several:
        return resize_mask(mask > 0, size)
    soft = np.stack([_weights(bit, size) for bit in labels.split(mask)])
    kept = soft >= 128
    if labels.exclusive:
        kept &= np.arange(labels.channels)[:, None, None] == np.argmax(soft, axis=0)[None]
    return labels.pack(kept)
