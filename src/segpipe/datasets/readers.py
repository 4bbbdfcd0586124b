"""Image and mask readers shared by the dataset adapters (OpenCV, no per-pixel Python).

Files are read as bytes (a plain file or a zip member read in place) and decoded from
memory. Image readers return the decoded image and the file's original (height, width). Given
`at_least`, a JPEG is decoded at 1/2, 1/4 or 1/8 scale when that still covers the training
size (libjpeg's DCT scaling: far cheaper than a full decode plus resize); the original size
is then read from the header.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from segpipe.core.errors import InputError

from .tree import open_file, read_bytes

_REDUCED = {  # scale -> (colour flag, grayscale flag)
    8: (cv2.IMREAD_REDUCED_COLOR_8, cv2.IMREAD_REDUCED_GRAYSCALE_8),
    4: (cv2.IMREAD_REDUCED_COLOR_4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
    2: (cv2.IMREAD_REDUCED_COLOR_2, cv2.IMREAD_REDUCED_GRAYSCALE_2),
}
_JPEG = {".jpg", ".jpeg"}


def _read(path: Path, what: str) -> np.ndarray:
    """The file's bytes (a plain file or a zip member, see `tree.read_bytes`) as a uint8 buffer."""
    try:
        return np.frombuffer(read_bytes(path), np.uint8)
    except OSError as err:
        raise InputError(f"{path}: cannot decode {what} (missing or unreadable: {err.strerror or err})") from None


def image_size(path: Path | str, data: np.ndarray | None = None) -> tuple[int, int]:
    """(height, width) from the header of the file (or of its bytes, `data`), without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with (io.BytesIO(data) if data is not None else open_file(path)) as handle, Image.open(handle) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError, InputError) as err:
        raise InputError(f"{path}: cannot read image header ({err})") from None
    return height, width


def _decode(path: Path, gray: bool, at_least: tuple[int, int] | None) -> tuple[np.ndarray, tuple[int, int]]:
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    data = _read(path, "image")
    jpeg = Path(path).suffix.lower() in _JPEG
    original = None
    if at_least is not None and jpeg:
        original = image_size(path, data)
        for scale, flags in _REDUCED.items():
            if -(-original[0] // scale) >= at_least[0] and -(-original[1] // scale) >= at_least[1]:
                flag = flags[gray]
                break
    if jpeg and data.size:
        _check_jpeg_end(path, data)
    image = cv2.imdecode(data, flag) if data.size else None
    if image is None:
        raise InputError(f"{path}: cannot decode image (missing, truncated or not an image)")
    return image, original or image.shape[:2]


def _check_jpeg_end(path: Path, data: np.ndarray) -> None:
    """Refuse a JPEG cut short: libjpeg decodes one anyway, grey below the cut, with no error.

    A complete JPEG ends with the end-of-image marker FF D9, which cannot occur inside the
    compressed data; a little trailing padding after it is allowed.
    """
    if b"\xff\xd9" not in data[-4096:].tobytes():
        raise InputError(f"{path}: truncated JPEG (it has no end-of-image marker); download or copy it again")


def read_rgb(path: Path, at_least: tuple[int, int] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode to (H, W, 3) uint8 RGB (grayscale files repeated); also return the original size."""
    image, original = _decode(path, gray=False, at_least=at_least)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), original


def read_gray(path: Path, at_least: tuple[int, int] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode to (H, W, 1) uint8; also return the original size."""
    image, original = _decode(path, gray=True, at_least=at_least)
    return image[..., None], original


def read_binary_mask(path: Path) -> np.ndarray:
    """Decode a mask file to (H, W) bool, True where the mask is non-zero.

    Any binary mask reads the same: {0,1} or {0,255} grayscale, 16-bit or float, RGB (a pixel
    is foreground if any channel is), RGBA with an opaque alpha, and palette images (GIF,
    PNG), which are read as their palette indices, 0 being background, whatever colours the
    palette gives them. Anything else is an InputError naming the file: not an image, a
    varying alpha channel, or more than one foreground value (a JPEG-compressed, anti-aliased
    or multi-label mask, where "non-zero" would silently move the mask's edge).
    """
    data = _read(path, "mask")
    mask = _palette_indices(data)
    if mask is None and data.size:
        mask = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise InputError(f"{path}: cannot decode mask (missing, truncated or not an image)")
    if mask.ndim == 3 and mask.shape[2] == 4:
        alpha = mask[..., 3]
        if alpha.size and alpha.min() != alpha.max():
            raise InputError(f"{path}: mask has a transparency (alpha) channel that varies; save it without "
                             "transparency (grayscale or RGB, background 0)")
        mask = mask[..., :3]
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    foreground = mask != 0
    count = np.count_nonzero(foreground)
    if count and np.count_nonzero(mask == mask.flat[np.argmax(foreground)]) != count:
        values = np.unique(mask)  # only on failure: it sorts
        shown = ", ".join(f"{v:g}" for v in values[:6]) + (", ..." if len(values) > 6 else "")
        raise InputError(f"{path}: not a binary mask: {len(values)} values ({shown}) where 0 (background) and "
                         "one foreground value were expected; save it losslessly (PNG, not JPEG) with two values")
    return foreground


def _palette_indices(data: np.ndarray) -> np.ndarray | None:
    """A palette image's (H, W) indices, or None for any other file (OpenCV reads those)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image) if image.mode == "P" else None
    except (OSError, ValueError, SyntaxError):  # unreadable here: OpenCV tries, then we report it
        return None


def read_index_mask(path: Path, classes: int) -> np.ndarray:
    """Decode an index mask of `classes` exclusive classes to the (H, W) uint8 bit mask of `segpipe.core.labels`.

    Pixel value 0 is background and value k + 1 is class k, as a palette PNG's indices (whatever
    its colours) or a one-channel PNG's values; bit k of the result is set where class k is.
    A value above `classes`, or colours that differ between channels, is an InputError naming
    the file and the values found.
    """
    data = _read(path, "mask")
    index = _palette_indices(data)
    if index is None and data.size:
        index = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if index is None:
        raise InputError(f"{path}: cannot decode mask (missing, truncated or not an image)")
    if index.ndim == 3:
        if (index[..., :3] != index[..., :1]).any():
            raise InputError(f"{path}: an index mask must hold one value a pixel (0 background, k for the k-th "
                             "class of folder.classes), not colours; save it as a palette or one-channel PNG")
        index = index[..., 0]
    if index.max(initial=0) > classes:
        values = ", ".join(f"{v:g}" for v in np.unique(index)[:8])
        raise InputError(f"{path}: index mask values ({values}) above {classes}, the number of folder.classes")
    index = index.astype(np.int64)
    return np.where(index > 0, np.left_shift(1, np.maximum(index - 1, 0)), 0).astype(np.uint8)


def read_bit_mask(path: Path | str, classes: int) -> np.ndarray:
    """Decode a bit-mask PNG to its (H, W) uint8 bits, bit k for class k (`read_binary_mask` would binarise it).

    InputError naming the file when it is not a 1-channel 8-bit image or sets a bit past `classes`.
    """
    data = _read(Path(path), "mask")
    mask = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if mask is None:
        raise InputError(f"{path}: cannot decode mask (missing, truncated or not an image)")
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise InputError(f"{path}: not a bit mask: {mask.dtype} with shape {mask.shape} where a 1-channel "
                         "8-bit image was expected")
    top = int(mask.max(initial=0))
    if top >> classes:
        raise InputError(f"{path}: value {top} sets a bit past the {classes} classes (values 0..{(1 << classes) - 1})")
    return mask


CLASS_FILES_MARK = "|"  # joins the class files of one image in its `mask` entry


def class_files_key(locators: Sequence[Path | str]) -> str:
    """The `mask` entry of an image with one binary mask file per class: their locators, in class order."""
    named = [str(locator) for locator in locators]
    odd = [name for name in named if CLASS_FILES_MARK in name]
    if odd:
        raise InputError(f"{odd[0]}: a class mask file name may not contain {CLASS_FILES_MARK!r}")
    return CLASS_FILES_MARK.join(named)


def class_files(entry: Path | str) -> list[str]:
    """The files a `mask` entry reads: the class files of a `class_files_key`, else the entry itself."""
    return str(entry).split(CLASS_FILES_MARK)


def read_class_files(entry: Path | str) -> np.ndarray:
    """Read a `class_files_key`'s binary masks (`read_binary_mask`) as the (H, W) uint8 bit mask of
    `segpipe.core.labels`: bit k from the k-th file. Files of different sizes are an InputError."""
    files = class_files(entry)
    masks = [read_binary_mask(Path(name)) for name in files]
    for name, mask in zip(files[1:], masks[1:]):
        if mask.shape != masks[0].shape:
            raise InputError(f"{name}: class mask is {mask.shape[1]}x{mask.shape[0]} but {files[0]} is "
                             f"{masks[0].shape[1]}x{masks[0].shape[0]} (WxH)")
    return sum((mask.astype(np.uint8) << k for k, mask in enumerate(masks)), np.zeros(masks[0].shape, np.uint8))


def read_instance_files(entry: Path | str) -> np.ndarray:
    """The union of a `class_files_key`'s binary masks (one instance each, 2018 DSB's masks/ folder) as a
    (H, W) bool mask. Files of different sizes are an InputError."""
    files = class_files(entry)
    union = read_binary_mask(Path(files[0])).copy()
    for name in files[1:]:
        mask = read_binary_mask(Path(name))
        if mask.shape != union.shape:
            raise InputError(f"{name}: instance mask is {mask.shape[1]}x{mask.shape[0]} but {files[0]} is "
                             f"{union.shape[1]}x{union.shape[0]} (WxH)")
        union |= mask
    return union
