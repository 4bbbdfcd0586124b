"""The shared readers: every binary mask encoding reads the same; anything else fails naming the file."""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from segpipe.core.errors import InputError
from segpipe.datasets import readers

MASK = np.zeros((20, 30), np.uint8)
MASK[5:12, 8:20] = 1
MASK[15, 3] = 1


def _palette(path: Path, palette: list[int]) -> None:
    image = Image.fromarray(MASK, "P")
    image.putpalette(palette)
    image.save(path)


def _rgba(path: Path, alpha: np.ndarray) -> None:
    cv2.imwrite(str(path), np.dstack([MASK * 255, MASK * 0, MASK * 255, alpha]))


BINARY = {  # file name -> how to write MASK that way
    "0_1.png": lambda p: cv2.imwrite(str(p), MASK),
    "0_255.png": lambda p: cv2.imwrite(str(p), MASK * 255),
    "0_255.tif": lambda p: cv2.imwrite(str(p), MASK * 255),
    "16bit.png": lambda p: cv2.imwrite(str(p), MASK.astype(np.uint16) * 65535),
    "float.tif": lambda p: cv2.imwrite(str(p), MASK.astype(np.float32)),
    "1bit.png": lambda p: Image.fromarray(MASK.astype(bool)).save(p),
    "rgb.png": lambda p: cv2.imwrite(str(p), np.dstack([MASK * 0, MASK * 200, MASK * 0])),
    "rgba_opaque.png": lambda p: _rgba(p, np.full_like(MASK, 255)),
    "palette.gif": lambda p: _palette(p, [0, 0, 0, 255, 255, 255]),
    # index 1 drawn black too (PIL's default for a bare "P" array): indices, not colours, count
    "palette_black.gif": lambda p: _palette(p, [0, 0, 0, 0, 0, 0]),
    "palette_inverted.png": lambda p: _palette(p, [255, 255, 255, 0, 0, 0]),
}


@pytest.mark.parametrize("name", BINARY)
def test_binary_masks_read_the_same_however_stored(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    BINARY[name](path)
    mask = readers.read_binary_mask(path)
    assert mask.dtype == np.bool_
    np.testing.assert_array_equal(mask, MASK.astype(bool))


def _soft(path: Path) -> None:
    cv2.imwrite(str(path), cv2.GaussianBlur(MASK * 255, (5, 5), 1.0))  # anti-aliased edge


NOT_BINARY = {  # file name -> (writer, what the message says)
    "mask.jpg": (lambda p: cv2.imwrite(str(p), MASK * 255), "not a binary mask"),  # compression noise
    "soft.png": (_soft, "not a binary mask"),
    "labels.png": (lambda p: cv2.imwrite(str(p), MASK + (MASK[::-1] > 0)), "not a binary mask: 3 values"),
    "nan.tif": (lambda p: cv2.imwrite(str(p), np.where(MASK > 0, np.nan, 0).astype(np.float32)),
                "not a binary mask"),
    "alpha.png": (lambda p: _rgba(p, MASK * 255), "alpha"),  # the mask drawn in transparency
    "notes.png": (lambda p: p.write_text("not an image"), "cannot decode mask"),
    "cut.png": (lambda p: p.write_bytes(cv2.imencode(".png", MASK * 255)[1].tobytes()[:60]), "cannot decode mask"),
    "cut.gif": (lambda p: (_palette(p, [0, 0, 0, 255, 255, 255]), p.write_bytes(p.read_bytes()[:40])),
                "cannot decode mask"),
    "missing.png": (lambda p: None, "cannot decode mask"),
}


@pytest.mark.parametrize("name", NOT_BINARY)
def test_anything_else_fails_naming_the_file(tmp_path: Path, name: str) -> None:
    write, problem = NOT_BINARY[name]
    path = tmp_path / name
    write(path)
    with pytest.raises(InputError, match=re.escape(str(path)) + ".*" + problem):
        readers.read_binary_mask(path)


@pytest.fixture
def photo(tmp_path: Path) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)


@pytest.mark.parametrize("at_least", [None, (16, 16)], ids=["full", "reduced"])
def test_a_truncated_jpeg_is_refused_though_libjpeg_decodes_it(tmp_path: Path, photo, at_least) -> None:
    whole = cv2.imencode(".jpg", photo)[1].tobytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(whole[: len(whole) * 3 // 4])
    assert cv2.imread(str(path)) is not None  # the reason for the check: no error from OpenCV
    with pytest.raises(InputError, match=re.escape(str(path)) + ": truncated JPEG"):
        readers.read_rgb(path, at_least=at_least)
    path.write_bytes(whole + b"\0" * 16)  # complete, with a little padding: fine
    assert readers.read_rgb(path, at_least=at_least)[1] == (64, 96)


@pytest.mark.parametrize("name, cut", [("cut.png", 0.6), ("cut.tif", 0.6), ("junk.png", 0.0)])
def test_a_truncated_or_corrupt_image_is_refused(tmp_path: Path, photo, name: str, cut: float) -> None:
    path = tmp_path / name
    whole = cv2.imencode(Path(name).suffix, photo)[1].tobytes()
    path.write_bytes(whole[: int(len(whole) * cut)] or b"\x89PNG garbage")
    for read in (readers.read_rgb, readers.read_gray):
        with pytest.raises(InputError, match=re.escape(str(path)) + ": cannot decode image"):
            read(path)
