"""Tiny competitions in Kaggle's label formats, made on disk (no network): an RLE csv with a row per
image, per (image, class) or per instance, and a folder of instance masks per image."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from segpipe import rle

SIZE = (40, 48)  # (H, W)


def objects(rng: np.random.Generator, count: int, shape=SIZE) -> list[np.ndarray]:
    """`count` disjoint rectangles (bool masks), a gap of a pixel or more between them."""
    found, taken = [], np.zeros(shape, bool)
    while len(found) < count:
        h, w = rng.integers(4, 10, 2)
        y, x = rng.integers(0, shape[0] - h), rng.integers(0, shape[1] - w)
        box = np.zeros(shape, bool)
        box[y:y + h, x:x + w] = True
        if not (cv2.dilate(box.view(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & taken).any():
            found.append(box)
            taken |= box
    return found


def union_mask(masks: list[np.ndarray], shape=SIZE) -> np.ndarray:
    """The pixels of any of `masks`."""
    return np.logical_or.reduce(masks) if masks else np.zeros(shape, bool)


def image_of(masks: list[np.ndarray], rng: np.random.Generator, shape=SIZE) -> np.ndarray:
    """An RGB image where the objects are brighter than the noise around them."""
    image = rng.integers(0, 90, (*shape, 3)).astype(np.uint8)
    for k, mask in enumerate(masks):
        image[mask] = 170 + 25 * (k % 3)
    return image


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def airbus(root: Path, train: int = 16, test: int = 4, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Airbus Ship Detection's layout: train_v2/<id>.jpg (PNG here, lossless), train_ship_segmentations_v2.csv
    `ImageId,EncodedPixels` a row per ship (one empty row for an image with none), column-major, and
    test_v2/ with sample_submission_v2.csv. Returns each train id's objects."""
    rng = np.random.default_rng(seed)
    lines, truth = ["ImageId,EncodedPixels"], {}
    for i in range(train):
        image_id = f"{i:04x}ab.png"
        ships = objects(rng, int(rng.integers(0, 4)))
        truth[image_id] = ships
        write_png(root / "train_v2" / image_id, image_of(ships, rng))
        lines += [f"{image_id},{rle.encode(s, order='F')}" for s in ships] or [f"{image_id},"]
    (root / "train_ship_segmentations_v2.csv").write_text("\n".join(lines) + "\n")
    sample = ["ImageId,EncodedPixels"]
    for i in range(test):
        image_id = f"{i:04x}cd.png"
        write_png(root / "test_v2" / image_id, image_of(objects(rng, 2), rng))
        sample.append(f"{image_id},1 2")
    (root / "sample_submission_v2.csv").write_text("\n".join(sample) + "\n")
    return truth


def severstal(root: Path, train: int = 16, test: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Severstal's layout: train_images/*.png, train.csv `ImageId,ClassId,EncodedPixels` a row per
    non-empty (image, class) (an unlisted image has no defect), sample_submission.csv with a row per
    test image. Returns each train image's bit mask (bit k: class k + 1)."""
    rng = np.random.default_rng(seed)
    lines, truth = ["ImageId,ClassId,EncodedPixels"], {}
    for i in range(train):
        image_id = f"{i:03d}.png"
        boxes = objects(rng, 4)
        present = rng.random(4) < 0.5
        bits = np.zeros(SIZE, np.uint8)
        for k, (box, on) in enumerate(zip(boxes, present)):
            if on:
                bits |= box.view(np.uint8) << k
                lines.append(f"{image_id},{k + 1},{rle.encode(box, order='F')}")
        truth[image_id] = bits
        write_png(root / "train_images" / image_id, image_of([b for b, on in zip(boxes, present) if on], rng))
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    sample = ["ImageId,EncodedPixels,ClassId"]
    for i in range(test):
        image_id = f"t{i:02d}.png"
        write_png(root / "test_images" / image_id, image_of(objects(rng, 1), rng))
        sample += [f"{image_id},1 1,{k}" for k in (1, 2, 3, 4)]
    (root / "sample_submission.csv").write_text("\n".join(sample) + "\n")
    return truth


def dsb(root: Path, train: int = 16, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """The 2018 Data Science Bowl's layout: stage1_train/<id>/images/<id>.png and
    stage1_train/<id>/masks/<hash>.png, one nucleus a file. Returns each id's nuclei."""
    rng = np.random.default_rng(seed)
    truth = {}
    for i in range(train):
        image_id = f"{i:02d}{'abcdef'[i % 6]}9"
        nuclei = objects(rng, int(rng.integers(1, 5)))
        truth[image_id] = nuclei
        write_png(root / "stage1_train" / image_id / "images" / f"{image_id}.png", image_of(nuclei, rng))
        for k, nucleus in enumerate(nuclei):
            write_png(root / "stage1_train" / image_id / "masks" / f"{k:02x}{image_id}.png", nucleus.astype(np.uint8) * 255)
    return truth


def tgs(root: Path, train: int = 8, test: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """TGS Salt's layout: train/images/<id>.png, train/masks/<id>.png (16-bit, {0, 65535}), train.csv
    `id,rle_mask` (column-major, an empty cell for no salt), test/images/ and sample_submission.csv.
    Returns each train id's mask."""
    rng = np.random.default_rng(seed)
    lines, truth = ["id,rle_mask"], {}
    for i in range(train):
        image_id = f"{i:03d}f{i % 3}"
        mask = union_mask(objects(rng, int(rng.integers(0, 3))))
        truth[image_id] = mask
        write_png(root / "train" / "images" / f"{image_id}.png", image_of([mask], rng))
        write_png(root / "train" / "masks" / f"{image_id}.png", mask.astype(np.uint16) * 65535)
        lines.append(f"{image_id},{rle.encode(mask, order='F')}")
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    sample = ["id,rle_mask"]
    for i in range(test):
        write_png(root / "test" / "images" / f"t{i}.png", image_of([], rng))
        sample.append(f"t{i},1 1")
    (root / "sample_submission.csv").write_text("\n".join(sample) + "\n")
    return truth
