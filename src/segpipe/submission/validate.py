"""Check a submission file against the competition's spec before it goes anywhere near Kaggle."""
from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from segpipe import rle
from segpipe.core.errors import InputError
from segpipe.datasets.base import SubmissionSpec
from segpipe.datasets.tree import read_bytes


def read_ids(sample_submission: Path, id_column: str) -> list[str]:
    """The ids of a sample submission, as strings, in file order."""
    sample = pd.read_csv(io.BytesIO(read_bytes(sample_submission)), dtype=str, keep_default_na=False)
    if id_column not in sample:
        raise InputError(f"{sample_submission}: no column {id_column!r} (columns: {list(sample.columns)})")
    return sample[id_column].tolist()



def validate_submission(path: Path, spec: SubmissionSpec, n_pixels: dict[str, int], labels: Sequence[str] = ()) -> int:
    """Check a submission file against the spec; raise InputError naming the first problem.

    Header exactly the spec's (`id,rle`); ids exactly those of the sample submission (when
    there is one) in the same order, or with `labels` (a multi-label competition) one row
    per test image and class, classes in order; every RLE well formed and inside its image
    (`n_pixels` by id). Returns the number of rows.
    """
    images = list(n_pixels) if labels or not spec.sample_submission else read_ids(spec.sample_submission,
                                                                                  spec.id_column)
    if spec.rows == "instance":
        return _validate_instances(path, spec, n_pixels, list(dict.fromkeys(images)))
    expected = [_row_key(spec, image, label) for image in images for label in labels] if labels else \
        [(image,) for image in images]
    header_want = spec.header() if labels else [spec.id_column, spec.rle_column]
    keys = [header_want.index(spec.id_column)] + ([header_want.index(spec.class_column)] if labels and
                                                  spec.class_column else [])
    at = header_want.index(spec.rle_column)
    count = 0
    for count, row in _rows(path, header_want):
        key = tuple(row[i] for i in keys)
        if count > len(expected) or key != expected[count - 1]:
            want = _named(expected[count - 1]) if count <= len(expected) else "'end of file'"
            raise InputError(f"{path}: row {count} has id {_named(key)}, the "
                             f"{'test set' if labels else 'sample submission'} has {want}")
        image_id = images[(count - 1) // len(labels)] if labels else row[keys[0]]
        if image_id not in n_pixels:
            raise InputError(f"{path}: id {image_id!r} is not a test image")
        try:
            rle.validate(row[at], n_pixels[image_id])
        except ValueError as err:
            raise InputError(f"{path}: id {_named(key)}: malformed RLE: {err}") from None
    if count != len(expected):
        raise InputError(f"{path}: {count} rows, the {'test set' if labels else 'sample submission'} has "
                         f"{len(expected)}")
    return count


def _validate_instances(path: Path, spec: SubmissionSpec, n_pixels: dict[str, int], images: list[str]) -> int:
    """Instance rows: each image's rows together, images in order; one empty row for an image without
    instances, otherwise no empty row; every RLE well formed; an image's instances disjoint."""
    header_want = [spec.id_column, spec.rle_column]
    position = {image: k for k, image in enumerate(images)}
    at = -1  # the image position the rows have reached
    by_image: dict[str, list[tuple[int, str]]] = {}
    count = 0
    for count, (image_id, encoded) in _rows(path, header_want):
        if image_id not in position or image_id not in n_pixels:  # a sample submission's id may lack an image
            raise InputError(f"{path}: row {count} has id {image_id!r}, which is not a test image")
        if position[image_id] < at:
            raise InputError(f"{path}: row {count}: the rows of id {image_id!r} are not together in the order of the "
                             f"{'sample submission' if spec.sample_submission else 'test set'}")
        if position[image_id] > at + 1:
            raise InputError(f"{path}: row {count} has id {image_id!r}, but id {images[at + 1]!r} comes first")
        at = position[image_id]
        by_image.setdefault(image_id, []).append((count, encoded))
    if at != len(images) - 1:
        raise InputError(f"{path}: no row for id {images[at + 1]!r} ({len(images) - at - 1} test images missing)")
    for image_id, rows in by_image.items():
        if len(rows) > 1 and any(not encoded for _, encoded in rows):
            raise InputError(f"{path}: row {next(c for c, e in rows if not e)}: id {image_id!r} has instances and "
                             "an empty row too (the empty row is for an image with none)")
        runs = []
        for number, encoded in rows:
            try:
                runs.append(rle.runs(encoded, n_pixels[image_id]))
            except ValueError as err:
                raise InputError(f"{path}: row {number}, id {image_id!r}: malformed RLE: {err}") from None
        joined = np.concatenate(runs)
        joined = joined[np.argsort(joined[:, 0], kind="stable")]
        if (joined[1:, 0] < joined[:-1, 0] + joined[:-1, 1]).any():
            raise InputError(f"{path}: id {image_id!r}: two of its instances overlap (instances must be disjoint)")
    return count


def _rows(path: Path, header_want: list[str]) -> Iterator[tuple[int, list[str]]]:
    """(row number from 1, fields) of the submission at `path` (gzip or plain), streamed; InputError for a
    header other than `header_want` or a row with another number of fields."""
    opener = gzip.open if str(path).endswith(".gz") or _is_gzip(path) else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != header_want:
            raise InputError(f"{path}: header {header} should be {header_want}")
        for count, row in enumerate(reader, start=1):
            if len(row) != len(header_want):
                raise InputError(f"{path}: row {count} has {len(row)} fields: {row[:3]}")
            yield count, row


def _named(key: tuple[str, ...]) -> str:
    """A row's key in a message: 'id', or 'id' class 'label'."""
    return repr(key[0]) + (f" class {key[1]!r}" if len(key) > 1 else "")


def _row_key(spec: SubmissionSpec, image_id: str, label: str) -> tuple[str, ...]:
    """What names a per-class row: its id (and its class, where a column holds it)."""
    row_id = spec.id_format.format(id=image_id, label=label)
    return (row_id, label) if spec.class_column else (row_id,)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def check_uploadable(name: str, spec: SubmissionSpec) -> str:
    """The Kaggle slug `make submit` uploads to; InputError when a CSV upload cannot be scored."""
    if spec.competition is None:
        raise InputError(f"{name} is not a Kaggle competition (or {name}.holdout_patients made its test set a "
                         "local holdout); nothing to submit — its holdout score is in metrics/holdout.json")
    if spec.code_competition:
        raise InputError(f"{spec.competition} is a code competition: Kaggle scores only the output of a notebook "
                         "run on its hidden test set, so a CSV upload is refused; submissions/submit.csv.gz is "
                         "your local check of the format")
    return spec.competition


def row_labels(spec: SubmissionSpec, classes: Sequence[str]) -> list[str]:
    """How the submission names each class, in class order; [] for one class."""
    return list(spec.labels or classes) if classes else []
