"""Time a training sample: segpipe's cached memmap dataset against decoding per __getitem__.

200 Carvana-sized JPEGs (1918x1280) with PNG masks, trained at 256x256. The usual dataset
globs the files once, then in every `__getitem__` decodes the JPEG and the mask with
cv2.imread, resizes both to 256x256 and augments. Ours is `segpipe.training.loaders.SliceDataset` over
the cache that `segpipe.cache.prepare.cache_split` wrote: one memmap row copy, then the same
augmentation (`build_augmentation(Augment())`: scale, rotate, flip), as with
`train.augment.batched: false`. By default training moves augmentation to the device, so
its loader does only the row copy.
Target: ours >= 20x the usual samples/s. Run as `python bench/bench_loader.py`.
"""
from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pandas as pd
from side_by_side import median_seconds, print_table, write_car_jpegs
from torch.utils.data import Dataset

from segpipe.cache.prepare import cache_split
from segpipe.config.train import Augment
from segpipe.datasets import Competition, SubmissionSpec, readers
from segpipe.training.loaders import SliceDataset, build_augmentation

COUNT, SIZE, REPEATS = 200, (256, 256), 3


class DecodingDataset(Dataset):
    """The usual Kaggle dataset: decode and resize the files in every __getitem__."""

    def __init__(self, folder: Path, size: tuple[int, int], augmentation: A.Compose) -> None:
        self.images = sorted(glob.glob(str(folder / "*.jpg")))
        self.size, self.augmentation = size, augmentation

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        path = self.images[item]
        image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        mask = cv2.imread(path.replace(".jpg", "_mask.png"), cv2.IMREAD_GRAYSCALE)
        image = cv2.resize(image, self.size[::-1])
        mask = (cv2.resize(mask, self.size[::-1], interpolation=cv2.INTER_NEAREST) > 127).astype(np.uint8)
        out = self.augmentation(image=image, mask=mask)
        return out["image"], out["mask"]


def read_all(dataset: Dataset) -> None:
    for item in range(len(dataset)):
        dataset[item]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = write_car_jpegs(tmp, COUNT, with_masks=True)
        frame = pd.DataFrame({"id": [p.name for p in paths], "image": paths,
                              "mask": [p.with_name(f"{p.stem}_mask.png") for p in paths]})
        competition = Competition("bench", frame, frame, SubmissionSpec("img", "rle", "C", None),
                                  readers.read_rgb, readers.read_binary_mask)
        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):  # the progress bar
            cache_split(frame, competition, SIZE, tmp / "images.npy", tmp / "masks.npy", 2, "prepare")
        augmentation = build_augmentation(Augment())
        usual = DecodingDataset(tmp, SIZE, augmentation)
        ours = SliceDataset(tmp / "images.npy", tmp / "masks.npy", np.arange(COUNT), augmentation)
        assert ours[0][0].shape == usual[0][0].shape == (*SIZE, 3)
        seconds = median_seconds({"usual": lambda: read_all(usual), "ours": lambda: read_all(ours)}, REPEATS)
    usual_rate, ours_rate = COUNT / seconds["usual"].wall, COUNT / seconds["ours"].wall
    print_table(f"loader: {COUNT} JPEGs of 1918x1280 + PNG masks, training size {SIZE[0]}x{SIZE[1]}, "
                f"median of {REPEATS} interleaved passes", "samples/s (one process, __getitem__ over every image)",
                [("decode per item vs memmap cache", usual_rate, ours_rate, ours_rate / usual_rate, ">= 20",
                  ours_rate / usual_rate >= 20)])


if __name__ == "__main__":
    main()
