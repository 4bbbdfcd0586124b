"""UW-Madison GI Tract Image Segmentation (Kaggle competition `uw-madison-gi-tract-image-segmentation`).

The layout `load` reads, extracted or still in the competition's zip:

    train/case<N>/case<N>_day<D>/scans/slice_<SSSS>_<W>_<H>_<spacingW>_<spacingH>.png
                                16-bit grayscale MRI slice; W x H vary (266x266, 360x310, ...)
    train.csv                   id,class,segmentation: the organs; there are no mask files
    test/...                    the same layout as train/ (empty in the public copy)
    sample_submission.csv       id,class,predicted (no rows in the public copy)

A slice's id is `case<N>_day<D>_slice_<SSSS>`, as train.csv and the submission write it;
slices sort by case, day and slice number, as numbers. `group` is the case (a patient:
all the days of a case stay in one fold), `slice` the slice's number and `volume` its
case/day, one MRI session: a case holds several volumes, so 2.5D context must take a
slice's neighbours from its volume, not from its group.

train.csv has 3 rows a slice, one per class (large_bowel, small_bowel, stomach, in this
order: bit k of the mask is class k), the RLE empty when the organ is absent. Classes may
overlap. The RLE is 1-indexed and row-major (C order): the competition's evaluation page
says column-major, but its scorer and the winners' code flatten the mask row by row, and so
does train.csv (case131_day0_slice_0066, 360 wide and 310 high: its large_bowel runs start
45601, 45959, 46319, 46678, ..., a width apart, one run a row). A slice's mask key is
`<train.csv locator>::<id>@<H>x<W>` (see `rle_labels`; the size comes from the file name,
as scans differ in size), and `read_mask` decodes it from train.csv, parsed once a process.

A scan is scaled to uint8 by its own minimum and maximum (the public baselines divide by
the maximum): intensity ranges differ between scans, so no fixed scale fits them all; it
needs no parameter, and a blank slice reads as zeros. A percentile clip would resist a few
very bright pixels, at the price of a parameter and of saturating the brightest tissue.
A scan loads as (H, W, 1); 2.5D context stacks neighbouring slices as channels. The size in the name must be the PNG's, or reading the
scan is an InputError naming the file and the id.

When test/ holds no scans (the public copy) the test table is empty and the generic
patient holdout makes one. Otherwise the test slices follow the sample submission (3 rows
a slice, the slice's first row places it), or case, day and slice order if it lists none.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from pydantic import Field

from segpipe.core.errors import InputError

from .. import rle_labels
from ..base import Competition, DatasetSection, SubmissionSpec
from ..layout import name_few
from ..source import KaggleHome
from ..tree import Tree, as_tree, natural_key, read_bytes

SLUG = "uw-madison-gi-tract-image-segmentation"
KAGGLE = KaggleHome("competition", SLUG)
MARKER = "train.csv"  # the layout's top folder holds this file
SAMPLE = "sample_submission.csv"
CLASSES = ("large_bowel", "small_bowel", "stomach")
SCAN = re.compile(r"case(?P<case>\d+)/(?P<volume>case(?P=case)_day(?P<day>\d+))/scans/"
                  r"slice_(?P<slice>\d{4})_(?P<width>\d+)_(?P<height>\d+)_[\d.]+_[\d.]+\.png")
SCAN_FORMAT = "case<N>/case<N>_day<D>/scans/slice_<SSSS>_<W>_<H>_<spacingW>_<spacingH>.png"
SIZED_ID = re.compile(r"(?P<id>.+)@(?P<height>\d+)x(?P<width>\d+)")  # the id part of a mask key
SUBMISSION = SubmissionSpec("id", "predicted", "C", None, competition=SLUG, class_column="class",
                            labels=CLASSES, columns=("id", "class", "predicted"), code_competition=True)


@dataclasses.dataclass(frozen=True)
class _Scan:
    name: str  # in the tree
    id: str
    case: str
    volume: str  # case<N>_day<D>
    slice: int
    shape: tuple[int, int]  # (H, W), from the file name

    @classmethod
    def of(cls, name: str, match: re.Match) -> _Scan:
        return cls(name, f"{match['volume']}_slice_{match['slice']}", f"case{match['case']}", match["volume"],
                   int(match["slice"]), (int(match["height"]), int(match["width"])))

    def order(self) -> tuple:
        return natural_key(self.volume), self.slice


def _label_rows(table: pd.DataFrame, where: str) -> pd.DataFrame:
    """train.csv -> columns id, label, rle (see `rle_labels.LabelCsv`)."""
    if not {"id", "class", "segmentation"} <= set(table.columns):
        raise InputError(f"{where}: expected the columns id,class,segmentation, found {','.join(table.columns)}")
    return pd.DataFrame({"id": table["id"], "label": table["class"], "rle": table["segmentation"]})


TRAIN_LABELS = rle_labels.LabelCsv(CLASSES, _label_rows)


class Params(DatasetSection):
    source: str = "data/sources/uwmgi"
    holdout_patients: float = Field(0.2, ge=0, lt=1)  # the public download's test folder is empty


def load(root: Path | Tree, **_options) -> Competition:
    """Index the dataset in `root` (a folder, a zip, or a Tree); InputError names what is missing or wrong."""
    tree = as_tree(root).rooted(MARKER)
    test, sample = _test_table(tree)
    return Competition(name="uwmgi", train=_train_table(tree), test=test,
                       submission=dataclasses.replace(SUBMISSION, sample_submission=sample),
                       read_image=read_scan, read_mask=read_mask, classes=CLASSES,
                       metric="dice_hausdorff")


def read_scan(path: Path | str, at_least: tuple[int, int] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode a scan to (H, W, 1) uint8, scaled by its own min and max; also return its (H, W).

    A PNG has no reduced decode, so `at_least` changes nothing. InputError, naming the file
    and the slice's id, when the PNG's size is not the one its file name gives.
    """
    match = SCAN.search(str(path))
    if match is None:
        raise InputError(f"{path}: not a UW-Madison scan name ({SCAN_FORMAT})")
    scan = _Scan.of(str(path), match)
    try:
        data = np.frombuffer(read_bytes(path), np.uint8)
    except OSError as err:
        raise InputError(f"{path}: cannot read scan {scan.id} ({err.strerror or err})") from None
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if pixels is None or pixels.ndim != 2:
        raise InputError(f"{path}: scan {scan.id} is not a one-channel PNG (missing, truncated or colour)")
    if pixels.shape != scan.shape:
        raise InputError(f"{path}: scan {scan.id} is {pixels.shape[1]}x{pixels.shape[0]} (WxH) but its file name "
                         f"says {scan.shape[1]}x{scan.shape[0]}")
    return cv2.normalize(pixels, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)[..., None], scan.shape


def read_mask(key: Path | str) -> np.ndarray:
    """The bit-packed (H, W) uint8 mask of the mask key `<train.csv locator>::<id>@<H>x<W>`."""
    locator, _, sized_id = str(key).rpartition(rle_labels.KEY_MARK)
    match = SIZED_ID.fullmatch(sized_id)
    if not locator or match is None:
        raise InputError(f"{key}: not a UW-Madison mask key (<train.csv>{rle_labels.KEY_MARK}<id>@<H>x<W>)")
    encoded = rle_labels.class_rles(locator, TRAIN_LABELS).get(match["id"], ())
    shape = (int(match["height"]), int(match["width"]))
    return rle_labels.decode_classes(encoded, shape, "C", CLASSES, f"{locator}: slice {match['id']}")


def _scans(tree: Tree, split: str) -> list[_Scan]:
    """The scans under `split`/, in case, day and slice order; InputError for a PNG named otherwise."""
    names = tree.glob(f"{split}/**/*.png")
    matches = [SCAN.fullmatch(name.removeprefix(f"{split}/")) for name in names]
    odd = [name for name, match in zip(names, matches) if match is None]
    if odd:
        raise InputError(f"{tree.where}/{split}: expected {SCAN_FORMAT}, found {name_few(odd)}")
    return sorted((_Scan.of(name, match) for name, match in zip(names, matches)), key=_Scan.order)


def _table(tree: Tree, scans: list[_Scan]) -> pd.DataFrame:
    return pd.DataFrame({"id": pd.Series([s.id for s in scans], dtype=str),
                         "group": pd.Series([s.case for s in scans], dtype=str),
                         "slice": pd.Series([s.slice for s in scans], dtype=np.int64),
                         "volume": pd.Series([s.volume for s in scans], dtype=str),
                         "image": pd.Series([tree.locate(s.name) for s in scans], dtype=object)})


def _train_table(tree: Tree) -> pd.DataFrame:
    """Every scan in train/, each with its rows of train.csv; the two must list the same slices."""
    scans = _scans(tree, "train")
    if not scans:
        raise InputError(f"{tree.where}/train: no training scans (expected {SCAN_FORMAT}; is the download complete?)")
    if MARKER not in tree:
        raise InputError(f"{tree.where}/{MARKER}: missing (is the download complete?)")
    locator = tree.locate(MARKER)
    table = rle_labels.class_rles(locator, TRAIN_LABELS)  # parsed here, so prepare's workers inherit it
    by_id = {scan.id: scan for scan in scans}
    strays = sorted(set(table).difference(by_id), key=natural_key)
    if strays:
        raise InputError(f"{locator}: rows for slices with no scan in {tree.where}/train ({len(strays)}): "
                         f"{name_few(strays)}")
    unlisted = [scan.name for scan in scans if scan.id not in table]
    if unlisted:
        raise InputError(f"{locator}: no rows for these scans ({len(unlisted)}; 3 rows a slice expected): "
                         f"{name_few(unlisted)}")
    rle_labels.check_runs(table, locator, CLASSES, lambda image_id: by_id[image_id].shape)
    keys = [rle_labels.mask_key(locator, f"{s.id}@{s.shape[0]}x{s.shape[1]}") for s in scans]
    return _table(tree, scans).assign(mask=pd.Series(keys, dtype=object))


def _test_table(tree: Tree) -> tuple[pd.DataFrame, Path | None]:
    """The test slices and the sample submission they follow; no sample when it lists no slice.

    With no test scans (the public copy) the table is empty. A sample that lists slices must
    list exactly the scans in test/.
    """
    scans = _scans(tree, "test")
    shown = f"{tree.where}/{SAMPLE}"
    listed = []
    if SAMPLE in tree:
        sample = tree.read_csv(SAMPLE, dtype=str, keep_default_na=False)
        if "id" not in sample:
            raise InputError(f"{shown}: expected the columns id,class,predicted, found {','.join(sample.columns)}")
        listed = list(dict.fromkeys(sample["id"]))
    if not listed:
        return _table(tree, scans), None
    on_disk, wanted = {scan.id: scan for scan in scans}, set(listed)
    problems = {f"slices with no scan in {tree.where}/test": [i for i in listed if i not in on_disk],
                "scans in test not in the sample": [s.name for s in scans if s.id not in wanted]}
    found = "; ".join(f"{what}: {name_few(bad)}" for what, bad in problems.items() if bad)
    if found:
        raise InputError(f"{shown} disagrees with the test scans: {found}")
    return _table(tree, [on_disk[i] for i in listed]), tree.locate(SAMPLE)
