"""How much a crop to the brain's bounding box would enlarge LGG's lesions at a fixed training size.

nnU-Net crops each case to its nonzero region before resampling. On LGG's slices the black
around the brain is not exactly zero, so the box depends on the intensity taken as
background. For each cut-off this prints, over the slices, the box's share of the slice
(each slice's own box, and its patient's box: the union over the volume, as nnU-Net crops
a case) and how many times more pixels a lesion gets when the box, grown to a square so the
aspect is kept, is resized to the training size instead of the whole slice; and whether any
lesion pixel falls outside its slice's box.

    python bench/lgg_brain_box.py /data/lgg
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

CUTOFFS = (0, 5, 10, 20)  # the brightest channel above this is brain
QUANTILES = (10, 25, 50, 75, 90)


def box(foreground: np.ndarray) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of `foreground`'s bounding box; the whole slice when it has none."""
    rows, cols = np.flatnonzero(foreground.any(1)), np.flatnonzero(foreground.any(0))
    if not len(rows):
        return 0, foreground.shape[0], 0, foreground.shape[1]
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def square_share(y0: int, y1: int, x0: int, x1: int, side: int) -> float:
    """The share of a `side` x `side` slice that the box, grown to a square, covers."""
    return min(side, max(y1 - y0, x1 - x0)) ** 2 / side**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="the LGG folder (kaggle_3m/ or a folder above it)")
    args = parser.parse_args()
    images = sorted(p for p in args.source.rglob("*.tif") if not p.name.endswith("_mask.tif"))
    if not images:
        raise SystemExit(f"{args.source}: no LGG slices (*.tif) under it")
    slices = defaultdict(list)  # cutoff -> (patient, box) per slice
    outside = 0
    for path in images:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR).max(axis=2)
        mask = cv2.imread(str(path.with_name(path.stem + "_mask.tif")), cv2.IMREAD_GRAYSCALE) > 0
        for cutoff in CUTOFFS:
            y0, y1, x0, x1 = box(image > cutoff)
            slices[cutoff].append((path.parent.name, (y0, y1, x0, x1)))
            if cutoff == max(CUTOFFS):
                outside += int(mask.sum() - mask[y0:y1, x0:x1].sum())
    side = image.shape[0]  # LGG's slices are square, all of one size
    print(f"{len(images)} slices of {side}x{side}; lesion pixels outside their slice's box at cut-off "
          f"{max(CUTOFFS)}: {outside}")
    print("cut-off | box share of the slice, per slice (quantiles " + "/".join(map(str, QUANTILES)) +
          ") | per patient | lesion pixels x (median slice, median patient)")
    for cutoff, rows in slices.items():
        own = np.array([square_share(*b, side) for _, b in rows])
        volumes = defaultdict(list)
        for patient, b in rows:
            volumes[patient].append(b)
        union = np.array([square_share(min(b[0] for b in v), max(b[1] for b in v), min(b[2] for b in v),
                                       max(b[3] for b in v), side) for v in volumes.values()])
        print(f"{cutoff} | {' '.join(f'{q:.2f}' for q in np.percentile(own, QUANTILES))} | "
              f"{' '.join(f'{q:.2f}' for q in np.percentile(union, QUANTILES))} | "
              f"{1 / np.median(own):.2f}, {1 / np.median(union):.2f}")


if __name__ == "__main__":
    main()
