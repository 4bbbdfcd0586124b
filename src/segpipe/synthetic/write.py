"""Lay a synthetic competition out as a Kaggle download: the same files for every kind.

    train/<id>.png             3-channel 8-bit slices
    train_masks/<id>_mask.png  1-channel: {0, 255} for a binary kind; bit k (value 1 << k) where
                               class k is for a kind with classes
    test/<id>.png
    train_masks.csv            column-major RLE, empty for an empty mask: img,rle_mask; with classes
                               id,rle_mask,class, a row per (slice, class)
    sample_submission.csv      the same columns: "1 1" for every test id (and class), ids shuffled

Ids are `<patient>_<slice>` (`p0007_1` ... `p0007_12`: 1-based, not zero-padded, so
lexicographic sorting is wrong) and the sample submission is shuffled, so code that
assumes sorted order breaks here rather than on a real competition. All randomness comes
from one SeedSequence with one child per patient and a master rng that names the patients
and shuffles the sample, so the same arguments give byte-identical files (given the same
numpy and OpenCV builds) and each patient is independent of the others.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from . import brain, multi, thin

Slices = Callable[[np.random.Generator, int, int, int], Iterator[tuple[np.ndarray, np.ndarray]]]
BINARY_COLUMNS = ("img", "rle_mask")
CLASS_COLUMNS = ("id", "rle_mask", "class")
# kind -> (one patient's slices, the class names; () = a binary mask)
KINDS: dict[str, tuple[Slices, tuple[str, ...]]] = {
    "brain": (brain.patient_slices, ()),
    "thin": (thin.patient_slices, ()),
    "multi": (multi.patient_slices, multi.CLASSES),
    "exclusive": (multi.patient_slices, multi.CLASSES),  # one class a pixel: a multi-class competition
}


def write(root: Path, seed: int, kind: str, train_patients: int, test_patients: int, slices_per_patient: int,
          height: int, width: int) -> None:
    """Write the competition of `kind` into the new folder `root`; same arguments, same bytes."""
    from segpipe.rle import encode  # imported late so that reading a set never needs numba

    make_slices, classes = KINDS[kind]
    for folder in ("train", "train_masks", "test"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    total = train_patients + test_patients
    children = np.random.SeedSequence(seed).spawn(1 + total)
    master = np.random.default_rng(children[0])
    numbers = master.choice(np.arange(1, 4 * total + 10), size=total, replace=False)
    rows, test_ids = [], []
    for i, number in enumerate(numbers):
        rng, name = np.random.default_rng(children[1 + i]), f"p{number:04d}"
        for z, (image, mask) in enumerate(make_slices(rng, slices_per_patient, height, width), start=1):
            sid = f"{name}_{z}"
            split = "train" if i < train_patients else "test"
            _write_png(root / split / f"{sid}.png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            if split == "test":
                test_ids.append(sid)
                continue
            if kind == "exclusive":
                mask = multi.exclusive_bits(mask)
            _write_png(root / "train_masks" / f"{sid}_mask.png", mask if classes else mask.astype(np.uint8) * 255)
            rles = ([encode((mask & np.uint8(1 << k)) > 0, order="F") for k in range(len(classes))] if classes
                    else [encode(mask, order="F")])
            rows.append((name, z, sid, rles))
    labels = classes or (None,)
    columns = CLASS_COLUMNS if classes else BINARY_COLUMNS
    _write_csv(root / "train_masks.csv", columns,
               [(sid, encoded, label) for _, _, sid, rles in sorted(rows) for encoded, label in zip(rles, labels)])
    _write_csv(root / "sample_submission.csv", columns,
               [(test_ids[k], "1 1", label) for k in master.permutation(len(test_ids)) for label in labels])


def _write_png(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image):
        raise OSError(f"{path}: could not write PNG")


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[tuple[str, str, str | None]]) -> None:
    # by hand rather than pandas: fixed "\n" line endings keep the bytes platform-independent
    lines = [",".join(columns), *(",".join(row[:len(columns)]) for row in rows)]
    path.write_text("".join(line + "\n" for line in lines))
