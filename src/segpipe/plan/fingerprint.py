"""Measure a competition's training set: the fingerprint the plan is derived from (nnU-Net's first step).

Counts (images, groups, test images) cover the whole set; pixel statistics come from a
seeded sample of at most `SAMPLE` training images, decoded at native size: image sizes and
channels, intensity percentiles per channel, the share of empty masks, the foreground
share, the areas of the connected components, and, for each candidate training size, the
Dice of every non-empty mask against itself after a resize down to that size and back
(what the resolution alone costs, before any model).
"""
from __future__ import annotations

import multiprocessing
import os
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from tqdm import tqdm

from segpipe.cache.images import check_mask_size, resize_mask
from segpipe.core.runtime import opencv_threads
from segpipe.plan.sizes import candidate_sides, scaled_sides

if TYPE_CHECKING:
    from segpipe.datasets import Competition

SAMPLE = 400  # images decoded for the pixel statistics (Carvana's 5088 would take minutes on 2 cores)
QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.9)
_INTENSITY_PIXELS = 4096  # pixels of each sampled image kept for the intensity percentiles


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def _measure_one(row: tuple[str, str], *, read_image, read_mask, seed: int) -> dict:
    image_file, mask_file = row
    image, (height, width) = read_image(Path(image_file), at_least=None)
    mask = read_mask(Path(mask_file)) > 0
    check_mask_size(mask, (height, width), mask_file, image_file)  # before prepare's own check: this reads first
    rng = np.random.default_rng([seed, height, width, int(mask.sum())])
    flat = image.reshape(-1, image.shape[2])
    pixels = flat[rng.integers(len(flat), size=min(len(flat), _INTENSITY_PIXELS))]
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    round_trip = {}
    if mask.any():
        for side in candidate_sides(height, width):
            small = resize_mask(mask, scaled_sides(height, width, side))
            round_trip[side] = dice(resize_mask(small.astype(bool), (height, width)) > 0, mask)
    return {"height": height, "width": width, "channels": image.shape[2], "pixels": pixels,
            "foreground": float(mask.mean()), "areas": stats[1:count, cv2.CC_STAT_AREA].tolist(),
            "round_trip": round_trip}


def _quantiles(values, digits: int = 4) -> dict:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {}
    return {f"p{int(q * 100):02d}": round(float(np.quantile(values, q)), digits) for q in QUANTILES}


def measure(competition: Competition, seed: int, workers: int = 0, sample: int = SAMPLE) -> dict:
    """The fingerprint of `competition`'s training set, as a json-ready dict (deterministic for `seed`)."""
    train = competition.train
    take = np.sort(np.random.default_rng(seed).choice(len(train), size=min(sample, len(train)), replace=False))
    rows = list(zip(train.image.astype(str).to_numpy()[take], train["mask"].astype(str).to_numpy()[take]))
    measure_one = partial(_measure_one, read_image=competition.read_image, read_mask=competition.read_mask,
                          seed=seed)
    workers = workers or os.cpu_count() or 1
    with opencv_threads(1), multiprocessing.get_context("fork").Pool(workers) as pool:
        found = list(tqdm(pool.imap(measure_one, rows, chunksize=8), total=len(rows), desc="fingerprint"))
    heights, widths = [f["height"] for f in found], [f["width"] for f in found]
    pixels = np.concatenate([f["pixels"] for f in found]).astype(np.float64)
    areas = [a for f in found for a in f["areas"]]
    labelled = [f for f in found if f["round_trip"]]
    image_area = float(np.median(np.multiply(heights, widths)))
    return {
        "images": int(len(train)),
        "groups": int(train.group.nunique()),
        "test_images": int(len(competition.test)),
        "sampled": len(found),
        "height": {"min": min(heights), "median": int(np.median(heights)), "max": max(heights)},
        "width": {"min": min(widths), "median": int(np.median(widths)), "max": max(widths)},
        "one_size": len(set(zip(heights, widths))) == 1,
        "channels": int(found[0]["channels"]),
        "intensity": {
            "mean": [round(float(v), 2) for v in pixels.mean(0)],
            "std": [round(float(v), 2) for v in pixels.std(0)],
            "p01": [round(float(v), 2) for v in np.quantile(pixels, 0.01, axis=0)],
            "p99": [round(float(v), 2) for v in np.quantile(pixels, 0.99, axis=0)],
        },
        "empty_share": round(1 - len(labelled) / len(found), 4),
        "foreground_share": round(float(np.mean([f["foreground"] for f in found])), 5),
        "objects": {"per_image": round(len(areas) / len(found), 3), "area": _quantiles(areas, 1),
                    "area_share": _quantiles(np.asarray(areas) / image_area, 6)},
        # Dice of each non-empty mask with itself after a resize to short side s and back (low quantiles: small
        # objects); images of other sizes than the first sampled one have other candidates and are left out
        "round_trip": {str(side): _quantiles([f["round_trip"][side] for f in labelled if side in f["round_trip"]])
                       for side in labelled[0]["round_trip"]} if labelled else {},
    }
