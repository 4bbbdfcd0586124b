"""Understanding Clouds from Satellite Images (Kaggle competition `understanding_cloud_organization`).

The layout `load` reads, extracted or still in the competition's zip:

    train_images/<image>.jpg   2100 x 1400 RGB satellite images; e.g. 0011165.jpg
    test_images/<image>.jpg
    train.csv                  Image_Label,EncodedPixels: four rows per image, <image>.jpg_<label>
    sample_submission.csv      the test ids and their order, four rows per image

The labels are the four cloud patterns `Fish`, `Flower`, `Gravel` and `Sugar` (also the
class names); a label's row is empty where the image does not show it. Patterns overlap
(a pixel may carry two), so the classes are multi-label, and every training image has at
least one: the threshold stage then searches the "top class forced on" rule
(`segpipe.evaluation.force_top`). RLE is 1-indexed and column-major, on the 1400 x 2100
image in train.csv; the submission's masks are at a quarter of each side, 350 x 525 (the
scorer compares them with the labels resized to that size), in the sample's
`Image_Label,EncodedPixels` with ids `<image>.jpg_<label>`. Each image is its own group.
The competition took CSV uploads (it is not a code competition).
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

SLUG = "understanding_cloud_organization"
KAGGLE = KaggleHome("competition", SLUG)
MARKER = "sample_submission.csv"  # the layout's top folder holds this file
TRAIN_CSV = "train.csv"
SHAPE = (1400, 2100)  # (H, W) of every image, and of train.csv's RLE
SUBMISSION_SIZE = (350, 525)  # (H, W) of the submitted masks
CLASSES = ("Fish", "Flower", "Gravel", "Sugar")
PAIR = "Image_Label"  # <image>.jpg_<label>
SUBMISSION = SubmissionSpec(PAIR, "EncodedPixels", "F", None, competition=SLUG, id_format="{id}_{label}",
                            mask_size=SUBMISSION_SIZE)

_split_pairs = partial(rle_labels.split_pairs, column=PAIR, form="<image>.jpg_<label>")


def _label_rows(table: pd.DataFrame, where: str) -> pd.DataFrame:
    """train.csv -> columns id, label, rle (see the module doc)."""
    if not {PAIR, "EncodedPixels"} <= set(table.columns):
        raise InputError(f"{where}: expected the columns {PAIR},EncodedPixels, found {','.join(table.columns)}")
    image_ids, labels = _split_pairs(table[PAIR], where)
    return pd.DataFrame({"id": image_ids, "label": labels, "rle": table.EncodedPixels})


TRAIN_LABELS = rle_labels.LabelCsv(CLASSES, _label_rows)
READ_MASK = partial(rle_labels.read_mask, csv=TRAIN_LABELS, shape=SHAPE, order="F")


class Params(DatasetSection):
    source: str = "data/sources/clouds"


def load(root: Path | Tree, **_options) -> Competition:
    """Index the dataset in `root` (a folder, a zip, or a Tree); InputError names what is missing or wrong."""
    tree = as_tree(root).rooted(MARKER)
    return Competition(name="clouds", train=_train_table(tree), test=_test_table(tree),
                       submission=dataclasses.replace(SUBMISSION, sample_submission=tree.locate(MARKER)),
                       read_image=readers.read_rgb, read_mask=READ_MASK, classes=CLASSES)


def _train_table(tree: Tree) -> pd.DataFrame:
    """Every image in train_images/, sorted; train.csv may list only those."""
    return rle_labels.image_table(tree, TRAIN_CSV, TRAIN_LABELS, SHAPE)


def _test_table(tree: Tree) -> pd.DataFrame:
    """The test images in the order of the sample submission (four rows an image; the first places it)."""
    shown = f"{tree.where}/{MARKER}"
    if MARKER not in tree:
        raise InputError(f"{shown}: missing (is the download complete?)")
    sample = tree.read_csv(MARKER, dtype=str, keep_default_na=False)
    if PAIR not in sample:
        raise InputError(f"{shown}: expected the columns {PAIR},EncodedPixels, found {','.join(sample.columns)}")
    return test_images_in_order(tree, _split_pairs(sample[PAIR], shown)[0], "test_images/*.jpg", shown)
