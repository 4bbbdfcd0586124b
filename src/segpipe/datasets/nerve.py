"""Ultrasound Nerve Segmentation (Kaggle competition `ultrasound-nerve-segmentation`).

Layout after `download` (the whole competition zip, extracted):

    train/<subject>_<img>.tif         580 x 420 8-bit grayscale TIFF
    train/<subject>_<img>_mask.tif    its mask, in the same folder; non-zero is nerve
    test/<img>.tif                    <img> is a bare integer: 1, 2, ...
    train_masks.csv                   subject,img,pixels (not read: the mask TIFFs are)
    sample_submission.csv             img,pixels: the test ids and their order

Train ids are `<subject>_<img>`, sorted numerically (neither part is zero-padded); the
group for folds is the subject, so a patient's ~120 images stay in one fold. Test ids are
the bare integers of the sample submission, and the submission is column-major RLE,
empty for no nerve. Images load as (H, W, 1): the model repeats the channel as needed.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from segpipe.errors import InputError

from . import layout, readers
from .base import Competition, SubmissionSpec

SLUG = "ultrasound-nerve-segmentation"
NAME = re.compile(r"(?P<subject>\d+)_(?P<img>\d+)\.tif")  # <subject>_<img>.tif


def download(root: Path, **_options) -> None:
    """Fetch the competition into `root` and extract it (train/, test/ and the two csvs)."""
    from segpipe import kaggle  # only now: the Kaggle client wants credentials at import

    kaggle.download_competition(SLUG, Path(root))


def load(root: Path, **_options) -> Competition:
    """Index an extracted download under `root`; InputError names what is missing or extra."""
    root = Path(root)
    sample = root / "sample_submission.csv"
    test = layout.sample_ordered_test(sample, "img", (root / "test").glob("*.tif"),
                                      lambda image_id: root / "test" / f"{image_id}.tif", root / "test")
    return Competition(
        name="nerve",
        train=_train_table(root),
        test=test,
        submission=SubmissionSpec("img", "pixels", "F", sample, competition=SLUG),
        read_image=readers.read_gray,
        read_mask=readers.read_binary_mask,
    )


def _numbers(image: Path) -> tuple[int, int]:
    match = NAME.fullmatch(image.name)
    return int(match["subject"]), int(match["img"])


def _mask_for(image: Path) -> Path:
    return image.with_name(f"{image.stem}_mask.tif")


def _train_table(root: Path) -> pd.DataFrame:
    files = list((root / "train").glob("*.tif"))
    images = [f for f in files if not f.stem.endswith("_mask")]
    odd = [image.name for image in images if not NAME.fullmatch(image.name)]
    if odd:
        raise InputError(f"{root / 'train'}: expected <subject>_<img>.tif, found {layout.name_few(sorted(odd))}")
    images.sort(key=_numbers)
    pairs = layout.pair_images_with_masks(images, [f for f in files if f.stem.endswith("_mask")],
                                          _mask_for, root / "train")
    return pd.DataFrame({
        "id": [image.stem for image, _ in pairs],
        "group": [str(_numbers(image)[0]) for image, _ in pairs],
        "image": [image for image, _ in pairs],
        "mask": [mask for _, mask in pairs],
    })
