"""Per-class masks given as RLE rows of one label csv (Severstal's train.csv, UW-Madison's), decoded on demand.

Such a competition has no mask files: one csv holds, per image id and class, the run-length
encoding of that class's pixels. An adapter describes its csv with a `LabelCsv` (how the
file names each class, and a function that turns the csv as read into rows of id, label,
rle) and gives each training image the mask key `<csv locator>::<image id>`, which
`mask_file` maps back to the csv. `read_mask` decodes an image's classes into the (H, W)
uint8 of `Competition.read_mask`, bit k for class k; an id the csv does not list has no
pixels of any class.

The csv is parsed once per process and kept (a plain `functools.lru_cache`, not
`per_process`: prepare's pool forks after `load` parsed it, so the workers inherit the
parse, and the readers pickled with each chunk carry only the key). The cache is keyed by
the file's size and mtime too, so a csv edited in a long-lived process is parsed again.
"""
from __future__ import annotations

import functools
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from segpipe import rle
from segpipe.core.errors import InputError

from .base import RleOrder
from .layout import name_few
from .tree import read_bytes

KEY_MARK = "::"  # separates the csv's locator from the image id in a mask key
_OUTER_FILE = re.compile(r"(?<=\.zip)!", re.IGNORECASE)  # a zip member's locator: the zip, then members


@dataclass(frozen=True)
class LabelCsv:
    """How a label csv names things. Frozen and made of module-level parts, so readers pickle it."""

    labels: tuple[str, ...]  # how the csv names each class, in class (bit) order
    # The csv as read (every column str, empty cells "") and its locator, for errors ->
    # a DataFrame with columns id, label, rle; InputError if the csv is not in its format.
    rows: Callable[[pd.DataFrame, str], pd.DataFrame]


def split_pairs(pairs: pd.Series, where: str, *, column: str, form: str,
                separator: str = "_") -> tuple[pd.Series, pd.Series]:
    """Ids `<image>_<label>` of the column `column` -> (images, labels), split at the last `separator`;
    InputError naming `where` and a malformed id (`form` says what one should look like)."""
    parts = pairs.str.rpartition(separator)
    bad = pairs[parts[1] == ""]
    if len(bad):
        raise InputError(f"{where}: {column} {bad.iloc[0]!r} is not {form} ({len(bad)} such rows)")
    return parts[0], parts[2]


def mask_key(locator: Path | str, image_id: str) -> Path:
    """The `mask` column entry of the image `image_id` whose classes the csv at `locator` holds."""
    return Path(f"{locator}{KEY_MARK}{image_id}")


def mask_file(entry: Path | str) -> str:
    """The file a `mask` column entry reads: the csv of a mask key, else the entry itself (a mask file)."""
    locator, marked, _ = str(entry).rpartition(KEY_MARK)
    return locator if marked else str(entry)


def class_rles(locator: Path | str, csv: LabelCsv) -> dict[str, tuple[str, ...]]:
    """Per image id listed in the csv, the RLE of each class in class order ("" for none); do not modify it.

    InputError, naming the file and the id, for a class the csv should not have or a
    (id, class) pair listed twice.
    """
    locator = str(locator)
    try:
        stat = os.stat(_OUTER_FILE.split(locator, maxsplit=1)[0])
    except OSError as err:
        raise InputError(f"{locator}: cannot read the label csv ({err.strerror or err})") from None
    return _parse(locator, csv, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _parse(locator: str, csv: LabelCsv, _size: int, _mtime: int) -> dict[str, tuple[str, ...]]:
    try:
        frame = pd.read_csv(io.BytesIO(read_bytes(locator)), dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as err:  # pandas' parser errors are ValueErrors
        raise InputError(f"{locator}: not a readable csv ({err})") from None
    rows = csv.rows(frame, locator)
    unknown = rows[~rows.label.isin(csv.labels)]
    if len(unknown):
        raise InputError(f"{locator}: image {unknown.id.iloc[0]} has class {unknown.label.iloc[0]!r}, which is not "
                         f"one of {', '.join(csv.labels)} ({len(unknown)} such rows)")
    twice = rows[rows.duplicated(["id", "label"])]
    if len(twice):
        raise InputError(f"{locator}: image {twice.id.iloc[0]} lists class {twice.label.iloc[0]} twice "
                         f"({len(twice)} repeated rows)")
    bit = {label: k for k, label in enumerate(csv.labels)}
    by_id: dict[str, list[str]] = {}
    for image_id, label, encoded in zip(rows.id, rows.label, rows.rle):
        by_id.setdefault(image_id, [""] * len(bit))[bit[label]] = encoded
    return {image_id: tuple(encoded) for image_id, encoded in by_id.items()}


def check_runs(table: Mapping[str, tuple[str, ...]], locator: Path | str, labels: tuple[str, ...],
               shape_of: Callable[[str], tuple[int, int]]) -> None:
    """InputError naming the file, the id and the class of the first malformed RLE in `table` (see `class_rles`).

    `shape_of(image_id)` is the image's (height, width). Cheap (no mask is built), so
    `load` can catch a bad row before prepare decodes thousands of images.
    """
    bad = []
    for image_id, encoded in table.items():
        height, width = shape_of(image_id)
        for label, text in zip(labels, encoded):
            try:
                rle.validate(text, height * width)
            except ValueError as err:
                bad.append((image_id, label, err))
    if bad:
        image_id, label, err = bad[0]
        more = f" (and {name_few([f'{i} class {c}' for i, c, _ in bad[1:]])})" if len(bad) > 1 else ""
        named = f", class {label}" if label else ""
        raise InputError(f"{locator}: image {image_id}{named}: malformed RLE: {err}{more}")


def decode_classes(encoded: tuple[str, ...], shape: tuple[int, int], order: RleOrder, labels: tuple[str, ...],
                   where: str) -> np.ndarray:
    """The (H, W) uint8 whose bit k marks the pixels of `encoded[k]`; InputError naming `where` and the class."""
    mask = np.zeros(shape, np.uint8)
    for bit, (label, text) in enumerate(zip(labels, encoded)):
        if not text:
            continue
        try:
            pixels = rle.decode(text, shape, order)
        except ValueError as err:
            raise InputError(f"{where}, class {label}: malformed RLE: {err}") from None
        mask |= pixels.view(np.uint8) << bit
    return mask


def read_mask(key: Path | str, *, csv: LabelCsv, shape: tuple[int, int], order: RleOrder) -> np.ndarray:
    """The bit-packed (H, W) uint8 mask of the mask key `key` (see `mask_key`), for images of one `shape`.

    Give it to a Competition as `functools.partial(read_mask, csv=..., shape=..., order=...)`.
    """
    locator, _, image_id = str(key).rpartition(KEY_MARK)
    if not locator:
        raise InputError(f"{key}: not a mask key (<label csv>{KEY_MARK}<image id>)")
    encoded = class_rles(locator, csv).get(image_id, ())
    return decode_classes(encoded, shape, order, csv.labels, f"{locator}: image {image_id}")


def image_table(tree, csv_name: str, csv: LabelCsv, shape: tuple[int, int],
                images: str = "train_images/*.jpg") -> pd.DataFrame:
    """Columns id, group, image, mask: every image of `images` in `tree` (a `Tree`), sorted, each its own
    group, its mask the key into the label csv `csv_name` (an image the csv does not list has no class).

    InputError for a missing image folder or csv, csv rows of images that are not there, or a
    malformed RLE. The csv is parsed here, so prepare's workers inherit the parse.
    """
    found = tree.glob(images)
    folder = PurePosixPath(images).parent
    if not found:
        raise InputError(f"{tree.where}/{folder}: no training images (is the download complete?)")
    if csv_name not in tree:
        raise InputError(f"{tree.where}/{csv_name}: missing (is the download complete?)")
    locator = tree.locate(csv_name)
    table = class_rles(locator, csv)
    ids = [PurePosixPath(name).name for name in found]
    strays = sorted(set(table).difference(ids))
    if strays:
        raise InputError(f"{locator}: rows for images not in {tree.where}/{folder} ({len(strays)}): {name_few(strays)}")
    check_runs(table, locator, csv.labels, lambda _image_id: shape)
    return pd.DataFrame({"id": ids, "group": ids, "image": [tree.locate(name) for name in found],
                         "mask": [mask_key(locator, image_id) for image_id in ids]})
