"""Image and mask readers shared by the dataset adapters (OpenCV, no per-pixel Python)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB; grayscale files are repeated to 3 channels."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot decode image (missing, truncated or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_binary_mask(path: Path) -> np.ndarray:
    """Decode a mask file to (H, W) bool; masks stored as {0,1}, {0,255} or RGB all work."""
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise ValueError(f"{path}: cannot decode mask (missing, truncated or not an image)")
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    return mask > 0
