"""Check a submission file against the competition's spec before it goes anywhere near Kaggle."""
from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

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



def validate_submission(path: Path, spec: SubmissionSpec, n_pixels: dict[str, int]) -> int:
    """Check a submission file against the spec; raise InputError naming the first problem.

    Header exactly `id,rle`; ids exactly those of the sample submission (when there is one)
    in the same order; every RLE well formed and inside its image (`n_pixels` by id).
    Returns the number of rows.
    """
    expected = read_ids(spec.sample_submission, spec.id_column) if spec.sample_submission else list(n_pixels)
    opener = gzip.open if str(path).endswith(".gz") or _is_gzip(path) else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != [spec.id_column, spec.rle_column]:
            raise InputError(f"{path}: header {header} should be {[spec.id_column, spec.rle_column]}")
        count = 0
        for count, row in enumerate(reader, start=1):
            if len(row) != 2:
                raise InputError(f"{path}: row {count} has {len(row)} fields: {row[:3]}")
            image_id, encoded = row
            if count > len(expected) or image_id != expected[count - 1]:
                want = expected[count - 1] if count <= len(expected) else "end of file"
                raise InputError(f"{path}: row {count} has id {image_id!r}, the sample submission has {want!r}")
            if image_id not in n_pixels:
                raise InputError(f"{path}: id {image_id!r} is not a test image")
            try:
                rle.validate(encoded, n_pixels[image_id])
            except ValueError as err:
                raise InputError(f"{path}: id {image_id!r}: malformed RLE: {err}") from None
    if count != len(expected):
        raise InputError(f"{path}: {count} rows, the sample submission has {len(expected)}")
    return count



def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"
