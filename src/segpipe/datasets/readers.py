"""Image and mask readers shared by the dataset adapters (OpenCV, no per-pixel Python).

Image readers return the decoded image and the file's original (height, width). Given
`at_least`, a JPEG is decoded at 1/2, 1/4 or 1/8 scale when that still covers the training
size (libjpeg's DCT scaling: far cheaper than a full decode plus resize); the original size
is then read from the header.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from segpipe.errors import InputError

_REDUCED = {  # scale -> (colour flag, grayscale flag)
    8: (cv2.IMREAD_REDUCED_COLOR_8, cv2.IMREAD_REDUCED_GRAYSCALE_8),
    4: (cv2.IMREAD_REDUCED_COLOR_4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
    2: (cv2.IMREAD_REDUCED_COLOR_2, cv2.IMREAD_REDUCED_GRAYSCALE_2),
}
_JPEG = {".jpg", ".jpeg"}


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError) as err:
        raise InputError(f"{path}: cannot read image header ({err})") from None
    return height, width


def _decode(path: Path, gray: bool, at_least: tuple[int, int] | None) -> tuple[np.ndarray, tuple[int, int]]:
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    original = None
    if at_least is not None and Path(path).suffix.lower() in _JPEG:
        original = image_size(path)
        for scale, flags in _REDUCED.items():
            if -(-original[0] // scale) >= at_least[0] and -(-original[1] // scale) >= at_least[1]:
                flag = flags[gray]
                break
    image = cv2.imread(str(path), flag)
    if image is None:
        raise InputError(f"{path}: cannot decode image (missing, truncated or not an image)")
    return image, original or image.shape[:2]


def read_rgb(path: Path, at_least: tuple[int, int] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode to (H, W, 3) uint8 RGB (grayscale files repeated); also return the original size."""
    image, original = _decode(path, gray=False, at_least=at_least)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), original


def read_gray(path: Path, at_least: tuple[int, int] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode to (H, W, 1) uint8; also return the original size."""
    image, original = _decode(path, gray=True, at_least=at_least)
    return image[..., None], original


def read_binary_mask(path: Path) -> np.ndarray:
    """Decode a mask file to (H, W) bool: {0,1}, {0,255}, RGB and palette GIF all work.

    Non-zero is foreground. A palette image is read as its indices, where 0 is background.
    """
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise InputError(f"{path}: cannot decode mask (missing, truncated or not an image)")
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    return mask > 0
