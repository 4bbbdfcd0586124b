"""Ultrasound Nerve Segmentation (Kaggle competition `ultrasound-nerve-segmentation`).

The layout `load` reads (the competition extracted, as a Kaggle Notebook mounts it, or
still zipped):

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
from pathlib import Path, PurePosixPath

import pandas as pd

from segpipe.core.errors import InputError

from .. import layout, readers
from ..base import Competition, DatasetSection, SubmissionSpec
from ..source import KaggleHome
from ..tree import Tree, as_tree

SLUG = "ultrasound-nerve-segmentation"
NAME = re.compile(r"(?P<subject>\d+)_(?P<img>\d+)\.tif")  # <subject>_<img>.tif
KAGGLE = KaggleHome("competition", SLUG)
MARKER = "sample_submission.csv"  # the layout's top folder holds this file


class Params(DatasetSection):
    source: str = "data/sources/nerve"


def load(root: Path | Tree, **_options) -> Competition:
    """Index the dataset in `root` (a folder, a zip, or a Tree); InputError names what is missing or extra."""
    tree = as_tree(root).rooted(MARKER)
    test = layout.sample_ordered_test(tree, MARKER, "img", tree.glob("test/*.tif"),
                                      lambda image_id: f"test/{image_id}.tif", f"{tree.where}/test")
    return Competition(
        name="nerve",
        train=_train_table(tree),
        test=test,
        submission=SubmissionSpec("img", "pixels", "F", tree.locate(MARKER), competition=SLUG),
        read_image=readers.read_gray,
        read_mask=readers.read_binary_mask,
    )


def _numbers(image: str) -> tuple[int, int]:
    match = NAME.fullmatch(PurePosixPath(image).name)
    return int(match["subject"]), int(match["img"])


def _train_table(tree: Tree) -> pd.DataFrame:
    files = tree.glob("train/*.tif")
    images = [f for f in files if not f.endswith("_mask.tif")]
    odd = [PurePosixPath(image).name for image in images if not NAME.fullmatch(PurePosixPath(image).name)]
    if odd:
        raise InputError(f"{tree.where}/train: expected <subject>_<img>.tif, found {layout.name_few(sorted(odd))}")
    images.sort(key=_numbers)
    pairs = layout.pair_images_with_masks(images, [f for f in files if f.endswith("_mask.tif")],
                                          layout.tif_mask_for, f"{tree.where}/train")
    return pd.DataFrame({
        "id": [PurePosixPath(image).stem for image, _ in pairs],
        "group": [str(_numbers(image)[0]) for image, _ in pairs],
        "image": [tree.locate(image) for image, _ in pairs],
        "mask": [tree.locate(mask) for _, mask in pairs],
    })
