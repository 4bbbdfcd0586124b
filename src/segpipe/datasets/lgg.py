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
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from segpipe.errors import InputError

from . import readers
from .base import Competition, SubmissionSpec
from .layout import name_few, pair_images_with_masks

HANDLE = "mateuszbuda/lgg-mri-segmentation"
# Where a slice tree may sit under the download root, in order of preference: the top-level
# tree, else the duplicate (some extractions keep only one of them).
TREES = (Path("kaggle_3m"), Path("lgg-mri-segmentation") / "kaggle_3m")
SUBMISSION = SubmissionSpec(id_column="id", rle_column="rle_mask", rle_order="F",
                            sample_submission=None, competition=None)


def download(root: Path, **_options) -> None:
    """Download and extract the dataset into `root` (a no-op once it is complete)."""
    from segpipe import kaggle  # late: the Kaggle client is only needed when downloading

    kaggle.download_dataset(HANDLE, Path(root))


def load(root: Path, **_options) -> Competition:
    """Index every slice of every patient once; the test table is empty (see module doc)."""
    tree = slice_tree(Path(root))
    return Competition(name="lgg", train=_train_table(tree),
                       test=pd.DataFrame({"id": pd.Series(dtype=str), "image": pd.Series(dtype=object)}),
                       submission=SUBMISSION, read_image=readers.read_rgb,
                       read_mask=readers.read_binary_mask)


def slice_tree(root: Path) -> Path:
    """The one `kaggle_3m` folder to read: the first of TREES that holds patient folders."""
    for tree in TREES:
        if _patient_dirs(root / tree):
            return root / tree
    looked = " and ".join(str(root / tree) for tree in TREES)
    raise InputError(f"no LGG patient folders found: looked in {looked} (expected "
                     f"kaggle_3m/<patient>/<patient>_<slice>.tif; is the download complete?)")


def _patient_dirs(tree: Path) -> list[Path]:
    if not tree.is_dir():
        return []
    return sorted(p for p in tree.iterdir() if p.is_dir() and not p.name.startswith("."))


def _slices(patient: Path) -> tuple[list[tuple[int, Path]], list[Path]]:
    """(slice number, image) pairs sorted by number, and the mask files, of one patient folder."""
    pattern = re.compile(re.escape(patient.name) + r"_(\d+)(_mask)?\.tif")
    images, masks = [], []
    for path in patient.iterdir():
        match = pattern.fullmatch(path.name)
        if match is None or not path.is_file():
            continue  # not a slice: data.csv, notes, thumbnails
        if match[2]:
            masks.append(path)
        else:
            images.append((int(match[1]), path))
    return sorted(images), masks


def _train_table(tree: Path) -> pd.DataFrame:
    images, masks, groups = [], [], []
    for patient in _patient_dirs(tree):
        numbered, patient_masks = _slices(patient)
        images += [path for _, path in numbered]
        groups += [patient.name] * len(numbered)
        masks += patient_masks
    if not images and not masks:
        empty = name_few(p.name for p in _patient_dirs(tree))
        raise InputError(f"{tree}: no <patient>_<slice>.tif files in the patient folders ({empty})")
    pairs = pair_images_with_masks(images, masks, _mask_for, where=tree)
    return pd.DataFrame({"id": [image.stem for image, _ in pairs], "group": groups,
                         "image": [image for image, _ in pairs], "mask": [mask for _, mask in pairs]})


def _mask_for(image: Path) -> Path:
    return image.with_name(f"{image.stem}_mask.tif")
