"""Carvana Image Masking Challenge (Kaggle competition `carvana-image-masking-challenge`).

The layout `load` reads, extracted or as Kaggle serves it (one zip per part: `train.zip`
holds `train/`, and so on; a Kaggle Notebook mounts those zips as they are):

    train/<carid>_<NN>.jpg              1918 x 1280 RGB JPEG, NN = 01..16 views of one car
    train_masks/<carid>_<NN>_mask.gif   single-frame palette GIF, non-zero is the car
    train_masks.csv                     img,rle_mask (row-major RLE; not read: the GIFs are)
    test/<carid>_<NN>.jpg
    sample_submission.csv               img,rle_mask: the test ids and their order

A download fetches only the parts we read, not `train_hq.zip`/`test_hq.zip` or
`metadata.csv.zip`. Ids are the image file names with their `.jpg` suffix, as
`train_masks.csv` and the submission write them; the group for folds is the car id, so a
car's 16 views stay in one fold. The submission is row-major RLE at full size.
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

SLUG = "carvana-image-masking-challenge"
NAME = re.compile(r"(?P<car>.+)_(?P<view>\d+)\.jpg")  # <carid>_<NN>.jpg
FILES = ("train.zip", "train_masks.zip", "train_masks.csv.zip", "test.zip", "sample_submission.csv.zip")
KAGGLE = KaggleHome("competition", SLUG, FILES)
MARKER = "sample_submission.csv"  # the layout's top folder holds this file


class Params(DatasetSection):
    source: str = "data/sources/carvana"  # an existing copy (folder or zip); this default is segpipe's own


def load(root: Path | Tree, **_options) -> Competition:
    """Index the dataset in `root` (a folder, a zip, or a Tree); InputError names what is missing or extra."""
    tree = as_tree(root).rooted(MARKER)
    test = layout.sample_ordered_test(tree, MARKER, "img", tree.glob("test/*.jpg"),
                                      lambda image_id: f"test/{image_id}", f"{tree.where}/test")
    return Competition(
        name="carvana",
        train=_train_table(tree),
        test=test,
        submission=SubmissionSpec("img", "rle_mask", "C", tree.locate(MARKER), competition=SLUG),
        read_image=readers.read_rgb,  # decodes at 1/2..1/8 scale when `at_least` allows
        read_mask=readers.read_binary_mask,
    )


def _mask_for(image: str) -> str:
    return f"train_masks/{PurePosixPath(image).stem}_mask.gif"


def _train_table(tree: Tree) -> pd.DataFrame:
    # NN is zero-padded, so sorting by name keeps each car's views together and in order
    images = tree.glob("train/*.jpg")
    odd = [PurePosixPath(image).name for image in images if not NAME.fullmatch(PurePosixPath(image).name)]
    if odd:
        raise InputError(f"{tree.where}/train: expected <carid>_<NN>.jpg, found {layout.name_few(odd)}")
    pairs = layout.pair_images_with_masks(images, tree.glob("train_masks/*_mask.gif"), _mask_for,
                                          f"{tree.where}/train")
    names = [PurePosixPath(image).name for image, _ in pairs]
    return pd.DataFrame({
        "id": names,
        "group": [NAME.fullmatch(name)["car"] for name in names],
        "image": [tree.locate(image) for image, _ in pairs],
        "mask": [tree.locate(mask) for _, mask in pairs],
    })
