"""Carvana Image Masking Challenge (Kaggle competition `carvana-image-masking-challenge`).

Layout after `download` (the competition zip holds one zip per part; we fetch only the
parts we read, not `train_hq.zip`/`test_hq.zip` or `metadata.csv.zip`):

    train/<carid>_<NN>.jpg              1918 x 1280 RGB JPEG, NN = 01..16 views of one car
    train_masks/<carid>_<NN>_mask.gif   single-frame palette GIF, non-zero is the car
    train_masks.csv                     img,rle_mask (row-major RLE; not read: the GIFs are)
    test/<carid>_<NN>.jpg
    sample_submission.csv               img,rle_mask: the test ids and their order

Ids are the image file names with their `.jpg` suffix, as `train_masks.csv` and the
submission write them; the group for folds is the car id, so a car's 16 views stay in one
fold. The submission is row-major RLE at full size.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from segpipe.errors import InputError

from . import layout, readers
from .base import Competition, SubmissionSpec

SLUG = "carvana-image-masking-challenge"
NAME = re.compile(r"(?P<car>.+)_(?P<view>\d+)\.jpg")  # <carid>_<NN>.jpg
FILES = ["train.zip", "train_masks.zip", "train_masks.csv.zip", "test.zip", "sample_submission.csv.zip"]


def download(root: Path, **_options) -> None:
    """Fetch and extract the parts of the competition that `load` reads into `root`."""
    from segpipe import kaggle  # only now: the Kaggle client wants credentials at import

    kaggle.download_competition(SLUG, Path(root), files=FILES)


def load(root: Path, **_options) -> Competition:
    """Index an extracted download under `root`; InputError names what is missing or extra."""
    root = Path(root)
    sample = root / "sample_submission.csv"
    test = layout.sample_ordered_test(sample, "img", (root / "test").glob("*.jpg"),
                                      lambda image_id: root / "test" / image_id, root / "test")
    return Competition(
        name="carvana",
        train=_train_table(root),
        test=test,
        submission=SubmissionSpec("img", "rle_mask", "C", sample, competition=SLUG),
        read_image=readers.read_rgb,  # decodes at 1/2..1/8 scale when `at_least` allows
        read_mask=readers.read_binary_mask,
    )


def _mask_for(image: Path) -> Path:
    return image.parent.parent / "train_masks" / f"{image.stem}_mask.gif"


def _train_table(root: Path) -> pd.DataFrame:
    # NN is zero-padded, so sorting by name keeps each car's views together and in order
    images = sorted((root / "train").glob("*.jpg"))
    odd = [image.name for image in images if not NAME.fullmatch(image.name)]
    if odd:
        raise InputError(f"{root / 'train'}: expected <carid>_<NN>.jpg, found {layout.name_few(odd)}")
    pairs = layout.pair_images_with_masks(images, (root / "train_masks").glob("*_mask.gif"),
                                          _mask_for, root / "train")
    return pd.DataFrame({
        "id": [image.name for image, _ in pairs],
        "group": [NAME.fullmatch(image.name)["car"] for image, _ in pairs],
        "image": [image for image, _ in pairs],
        "mask": [mask for _, mask in pairs],
    })
