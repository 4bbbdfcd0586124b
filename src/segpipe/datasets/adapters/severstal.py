"""Severstal Steel Defect Detection (Kaggle competition `severstal-steel-defect-detection`).

The layout `load` reads, extracted or still in the competition's zip:

    train_images/<ImageId>     1600 x 256 grayscale steel, stored as 3-channel JPEG; ImageId e.g. 0002cc93b.jpg
    test_images/<ImageId>
    train.csv                  the defects; there are no mask files
    sample_submission.csv      the test ids and their order

`train.csv` comes in two formats, both read. Today's is `ImageId,ClassId,EncodedPixels`,
one row per non-empty (image, class) pair: a training image it does not list has no
defect. The original release was `ImageId_ClassId,EncodedPixels`, id `<ImageId>_<k>`,
four rows per image, empty when that class is absent. RLE is 1-indexed and column-major on
256 x 1600 (pixel k is row (k - 1) % 256, column (k - 1) // 256). There are four defect
classes, ClassId 1..4; a training image's mask is the key `<train.csv locator>::<ImageId>`
(see `rle_labels`), decoded from train.csv into bit k for ClassId k + 1. Classes never
overlap in the real data, but nothing here depends on that.

The class names are `defect1`..`defect4`, not "1".."4": a name then never reads as a
channel number (defect1 is channel 0), and per-class keys in metrics and params stay
self-explanatory; the submission still writes the ClassIds "1".."4" (`labels`). Ids keep
the `.jpg`, as Kaggle writes them; each image is its own group (there are no patients).
The submission follows the sample found in the source: today's `ImageId,EncodedPixels,ClassId`
(a ClassId column) or the original `ImageId_ClassId,EncodedPixels` (ids `<ImageId>_<k>`).
Images load as (H, W, 1): the three channels are equal, and the model repeats the one as needed.
"""
from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import pandas as pd

from segpipe.core.errors import InputError

from .. import readers, rle_labels
from ..base import Competition, DatasetSection, SubmissionSpec
from ..layout import test_images_in_order
from ..source import KaggleHome
from ..tree import Tree, as_tree

SLUG = "severstal-steel-defect-detection"
KAGGLE = KaggleHome("competition", SLUG)
MARKER = "sample_submission.csv"  # the layout's top folder holds this file
TRAIN_CSV = "train.csv"
SHAPE = (256, 1600)  # (H, W) of every image
CLASSES = ("defect1", "defect2", "defect3", "defect4")
LABELS = ("1", "2", "3", "4")  # the ClassIds, in class order
PAIR = "ImageId_ClassId"  # the original format's id column: <ImageId>_<ClassId>
SUBMISSION = SubmissionSpec("ImageId", "EncodedPixels", "F", None, competition=SLUG,
                            class_column="ClassId", labels=LABELS, code_competition=True)
ORIGINAL_SUBMISSION = SubmissionSpec(PAIR, "EncodedPixels", "F", None, competition=SLUG,
                                     id_format="{id}_{label}", labels=LABELS, code_competition=True)


_split_pairs = partial(rle_labels.split_pairs, column=PAIR, form="<ImageId>_<ClassId>")


def _label_rows(table: pd.DataFrame, where: str) -> pd.DataFrame:
    """train.csv in either format -> columns id, label, rle (see the module doc)."""
    if {PAIR, "EncodedPixels"} <= set(table.columns):
        image_ids, class_ids = _split_pairs(table[PAIR], where)
    elif {"ImageId", "ClassId", "EncodedPixels"} <= set(table.columns):
        image_ids, class_ids = table.ImageId, table.ClassId
    else:
        raise InputError(f"{where}: expected the columns ImageId,ClassId,EncodedPixels (or the original "
                         f"ImageId_ClassId,EncodedPixels), found {','.join(table.columns)}")
    return pd.DataFrame({"id": image_ids, "label": class_ids, "rle": table.EncodedPixels})


TRAIN_LABELS = rle_labels.LabelCsv(LABELS, _label_rows)
READ_MASK = partial(rle_labels.read_mask, csv=TRAIN_LABELS, shape=SHAPE, order="F")


class Params(DatasetSection):
    source: str = "data/sources/severstal"


def load(root: Path | Tree, **_options) -> Competition:
    """Index the dataset in `root` (a folder, a zip, or a Tree); InputError names what is missing or wrong."""
    tree = as_tree(root).rooted(MARKER)
    test, submission = _test_table(tree)
    return Competition(name="severstal", train=_train_table(tree), test=test, submission=submission,
                       read_image=readers.read_gray, read_mask=READ_MASK, classes=CLASSES)


def _train_table(tree: Tree) -> pd.DataFrame:
    """Every image in train_images/, sorted, listed in train.csv or not (then it has no defect)."""
    return rle_labels.image_table(tree, TRAIN_CSV, TRAIN_LABELS, SHAPE)


def _test_table(tree: Tree) -> tuple[pd.DataFrame, SubmissionSpec]:
    """The test images in the order of the sample submission, and the submission format it shows.

    The sample may list an image once (today's) or once per class (the original); the image's
    first row places it. Every listed image must be in test_images/, and every image there listed.
    """
    shown = f"{tree.where}/{MARKER}"
    if MARKER not in tree:
        raise InputError(f"{shown}: missing (is the download complete?)")
    sample = tree.read_csv(MARKER, dtype=str, keep_default_na=False)
    if PAIR in sample:
        spec, listed = ORIGINAL_SUBMISSION, _split_pairs(sample[PAIR], shown)[0]
    elif {"ImageId", "ClassId"} <= set(sample.columns):
        spec, listed = SUBMISSION, sample.ImageId
    else:
        raise InputError(f"{shown}: expected the columns ImageId,EncodedPixels,ClassId (or the original "
                         f"ImageId_ClassId,EncodedPixels), found {','.join(sample.columns)}")
    test = test_images_in_order(tree, listed, "test_images/*.jpg", shown)
    return test, dataclasses.replace(spec, sample_submission=tree.locate(MARKER))
