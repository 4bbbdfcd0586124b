"""Which mask resize keeps thin and small classes: bilinear + 0.5 cut (segpipe's), nearest, area coverage.

A mask resized down to the training size is what the network learns from; an object the
resize erases is one it is taught not to see. For each rule this measures, over the masks
of one class shrunk by `--factor`:

- `kept`: the share of the original objects (8-connected components) that keep at least one
  pixel in the training-size mask (their pixels' coverage summed per training pixel);
- `area`: the training-size area (times factor²) over the original area: above 1 the rule fattens;
- `dice`: the Dice of the original with the training-size mask resized back the way submit
  resizes a prediction (bilinear, 0.5 cut): what the resolution costs before any model.

Masks: the thin-curve synthetic (2-4 px wide, at 512x768), the synthetic multi-label kind's
three classes (spot is a small disc, at 256²), and, with `--lgg`, the real LGG tumours
(256², `../shared/DATASETS.md`, "Real data for development").

    python bench/mask_resize.py
    python bench/mask_resize.py --lgg /data/lgg --factor 4
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from segpipe.cache.images import resize_mask
from segpipe.synthetic import multi, thin

RULES: dict[str, Callable[[np.ndarray, tuple[int, int]], np.ndarray]] = {
    "bilinear 0.5 (segpipe)": resize_mask,
    "nearest": lambda m, s: cv2.resize(m.astype(np.uint8), s[::-1], interpolation=cv2.INTER_NEAREST),
    "area >= 0.5": lambda m, s: (_coverage(m, s) >= 0.5).astype(np.uint8),
    "area >= 0.25": lambda m, s: (_coverage(m, s) >= 0.25).astype(np.uint8),
    "area > 0": lambda m, s: (_coverage(m, s) > 0).astype(np.uint8),
}


def _coverage(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The share of each training pixel that the mask covers (OpenCV's area interpolation)."""
    return cv2.resize(mask.astype(np.float32), size[::-1], interpolation=cv2.INTER_AREA)


def measure(masks: Iterable[np.ndarray], factor: int) -> dict[str, dict[str, float]]:
    totals = {name: np.zeros(5) for name in RULES}  # kept objects, objects, small area, area, dice sum
    images = 0
    for mask in masks:
        if not mask.any():
            continue
        images += 1
        height, width = mask.shape
        size = (height // factor, width // factor)
        count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        for name, rule in RULES.items():
            small = rule(mask, size)
            back = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
            kept = np.unique(labels[(back > 0) & (labels > 0)])
            again = resize_mask(small > 0, (height, width)) > 0
            overlap = np.count_nonzero(again & mask)
            totals[name] += [len(kept), count - 1, np.count_nonzero(small) * factor ** 2, np.count_nonzero(mask),
                             2 * overlap / (np.count_nonzero(again) + np.count_nonzero(mask))]
    return {name: {"kept": t[0] / t[1], "area": t[2] / t[3], "dice": t[4] / images, "images": images}
            for name, t in totals.items()}


def thin_masks(patients: int, seed: int) -> Iterable[np.ndarray]:
    rng = np.random.default_rng(seed)
    for _ in range(patients):
        for _, mask in thin.patient_slices(rng, 4, 512, 768):
            yield mask


def multi_masks(patients: int, seed: int, bit: int) -> Iterable[np.ndarray]:
    rng = np.random.default_rng(seed)
    for _ in range(patients):
        for _, mask in multi.patient_slices(rng, 12, 256, 256):
            yield (mask >> bit) & 1 > 0


def lgg_masks(root: Path) -> Iterable[np.ndarray]:
    for path in sorted(root.rglob("*_mask.tif")):
        yield cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factor", type=int, default=4, help="downscale factor per side (default 4)")
    parser.add_argument("--patients", type=int, default=8)
    parser.add_argument("--lgg", type=Path, help="an extracted LGG tree (kaggle_3m/...), to add the real tumours")
    args = parser.parse_args()
    sets = {"thin curves (512x768)": lambda: thin_masks(args.patients, 0)}
    for bit, name in enumerate(multi.CLASSES):
        sets[f"multi {name} (256²)"] = lambda bit=bit: multi_masks(args.patients, 1, bit)
    if args.lgg:
        sets["LGG tumour, real (256²)"] = lambda: lgg_masks(args.lgg)
    print(f"| masks, {args.factor}x down | rule | objects kept | area ratio | round-trip Dice |")
    print("|---|---|---|---|---|")
    for label, masks in sets.items():
        start = time.perf_counter()
        scores = measure(masks(), args.factor)
        for name, row in scores.items():
            print(f"| {label}, {row['images']} masks | {name} | {row['kept']:.3f} | {row['area']:.2f} | "
                  f"{row['dice']:.3f} |")
        print(f"<!-- {label}: {time.perf_counter() - start:.1f} s -->")


if __name__ == "__main__":
    main()
