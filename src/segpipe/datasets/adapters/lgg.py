"""LGG brain MRI segmentation: the Kaggle dataset `mateuszbuda/lgg-mri-segmentation`.

The download holds one folder per patient, each a stack of 3-channel TIFF slices
(pre-contrast, FLAIR, post-contrast) with a {0,255} mask beside each slice:

    kaggle_3m/<patient dir>/<patient dir>_<slice>.tif
    kaggle_3m/<patient dir>/<patient dir>_<slice>_mask.tif

Slice numbers start at 1 and are not zero-padded, so they are sorted as numbers. The
archive also carries a byte-identical copy under `lgg-mri-segmentation/kaggle_3m/`; only
one of the two trees is read, so no slice is counted twice. `data.csv` (clinical data) and
any other file that is not a slice are ignored.

It is a dataset, not a competition: there is no test set and no sample submission. `load`
returns an empty test table and the generic holdout in `segpipe.datasets` moves whole
patients into it; the submission for them is column-major RLE, like most Kaggle contests.
Its score is Buda et al.'s (2019): Dice per patient, a patient's slices pooled, the mean over
patients (`metric="patient_dice"`), which the blend and the post-processing maximise.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pandas as pd
from pydantic import Field

from segpipe.core.errors import InputError

from .. import readers
from ..base import Competition, DatasetSection, SubmissionSpec
from ..layout import pair_images_with_masks, tif_mask_for
from ..source import KaggleHome
from ..tree import Tree, as_tree

HANDLE = "mateuszbuda/lgg-mri-segmentation"
KAGGLE = KaggleHome("dataset", HANDLE)
TREE = "kaggle_3m/"  # the slice tree; the shallowest copy is read (the top-level one, else the duplicate)
SUBMISSION = SubmissionSpec(id_column="id", rle_column="rle_mask", rle_order="F",
                            sample_submission=None, competition=None)


class Params(DatasetSection):
    source: str = "data/sources/lgg"
    holdout_patients: float = Field(0.2, ge=0, lt=1)  # a dataset, not a competition: no test set of its own


def load(root: Path | Tree, **_options) -> Competition:
    """Index every slice of every patient once; the test table is empty (see module doc)."""
    tree = as_tree(root).rooted(TREE)
    return Competition(name="lgg", train=_train_table(tree),
                       test=pd.DataFrame({"id": pd.Series(dtype=str), "image": pd.Series(dtype=object)}),
                       submission=SUBMISSION, read_image=readers.read_rgb,
                       read_mask=readers.read_binary_mask, metric="patient_dice")


def _slices(tree: Tree) -> dict[str, tuple[list[tuple[int, str]], list[str]]]:
    """Per patient folder: (slice number, image name) pairs sorted by number, and the mask names."""
    patients: dict[str, tuple[list, list]] = {}
    for name in tree.glob(TREE + "*/*.tif"):
        patient, file = PurePosixPath(name).parts[1:]
        match = re.fullmatch(re.escape(patient) + r"_(\d+)(_mask)?\.tif", file)
        if match is None:
            continue  # not a slice: notes, thumbnails
        images, masks = patients.setdefault(patient, ([], []))
        if match[2]:
            masks.append(name)
        else:
            images.append((int(match[1]), name))
    return {patient: (sorted(images), masks) for patient, (images, masks) in sorted(patients.items())}


def _train_table(tree: Tree) -> pd.DataFrame:
    images, masks, groups, numbers = [], [], [], []
    for patient, (numbered, patient_masks) in _slices(tree).items():
        images += [name for _, name in numbered]
        groups += [patient] * len(numbered)
        numbers += [number for number, _ in numbered]
        masks += patient_masks
    if not images and not masks:
        raise InputError(f"no LGG slices found in {tree.where} (expected "
                         f"kaggle_3m/<patient>/<patient>_<slice>.tif; is the download complete?)")
    pairs = pair_images_with_masks(images, masks, tif_mask_for, where=f"{tree.where}/{TREE}")
    return pd.DataFrame({"id": [PurePosixPath(image).stem for image, _ in pairs], "group": groups, "slice": numbers,
                         "image": [tree.locate(image) for image, _ in pairs],
                         "mask": [tree.locate(mask) for _, mask in pairs]})
