"""Any competition whose masks are run-length encoded in one csv: a row per image, per (image, class)
or per instance, described by params alone ([add your competition](docs/competition.md)).

    labels: train.csv                   the label csv, relative to the source folder
    train_images: "train/{id}"          an image's file from its id ({id}: the id as the csv writes it)
    every_image: false                  true: every file the rule matches trains, one the csv does not
                                        list has no mask (Severstal lists only the defects)
    test_images: "test/{id}"            optional; without it the generic holdout makes one
    sample_submission: sample_submission.csv   optional: the test ids, their order and the header
    id_column / rle_column: ImageId / EncodedPixels
    class_column: ClassId               a row per (image, class): the column naming the class, or
    id_split: "_"                       ids "<image>_<class>", split at the last "_" (Clouds)
    classes: ["1", "2", "3", "4"]       the classes as the csv names them, in channel order
    instances: false                    true: an image (and class) has a row per object, OR-ed
                                        (Airbus: a row per ship, one empty row for none)
    rle_order: F                        F: column-major (most), C: row-major (Carvana)
    rle_start: 1                        0 when pixel numbers start at 0
    rle_relative: false                 true: each start counts from the previous run's end (SIIM-ACR)
    empty: ["", "-1"]                   the cells that mean "no pixels"
    image_size: null                    [H, W] of every image; null reads each image's header
    mask_size: null                     [H, W] the masks are submitted (and scored) at, when not
                                        each image's own (Understanding Clouds: [350, 525])
    group_regex: null                   its first group, searched in the id, is the patient
    metric: dice                        the score to maximise (see `segpipe.evaluation.scores`)
    submission_rows: null               image | instance; null: instance when `instances`
    competition: null                   the Kaggle slug `make submit` uploads to (the data itself is
                                        read from `source`: a copy, or a Kaggle Notebook's input)

The submission has the label csv's columns (or the sample's header), its RLE 1-indexed and
absolute in `rle_order`, an empty cell for no pixels.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from segpipe.core.errors import InputError

from .. import readers, rle_labels
from ..base import Competition, DatasetSection, RleOrder, SubmissionSpec
from ..layout import name_few, patient_groups
from ..tree import Tree, as_tree, natural_key

SIZE_MARK = "@"  # a mask key's id ends in @<H>x<W>: the image's size, which the RLE needs


class Params(DatasetSection):
    source: str = "data/sources/rle_csv"  # the competition's folder (or its zip)
    labels: str = "train.csv"
    train_images: str = "train/{id}"
    every_image: bool = False
    test_images: str | None = None
    sample_submission: str | None = None
    id_column: str = "ImageId"
    rle_column: str = "EncodedPixels"
    class_column: str | None = None
    id_split: str | None = None
    classes: list[str] = []
    instances: bool = False
    rle_order: RleOrder = "F"
    rle_start: Literal[0, 1] = 1
    rle_relative: bool = False
    empty: list[str] = ["", "-1"]
    image_size: tuple[int, int] | None = None
    mask_size: tuple[int, int] | None = None
    group_regex: str | None = None
    metric: Literal["dice", "patient_dice", "iou_hits", "object_f2", "object_ap"] = "dice"
    submission_rows: Literal["image", "instance"] | None = None
    competition: str | None = None
    holdout_patients: float | None = Field(None, ge=0, lt=1)

    @model_validator(mode="after")
    def _defaults(self) -> "Params":
        if self.holdout_patients is None:  # a labelled holdout when there is no test set
            object.__setattr__(self, "holdout_patients", 0.0 if self.test_images else 0.2)
        if self.submission_rows is None:
            object.__setattr__(self, "submission_rows", "instance" if self.instances else "image")
        return self


@dataclass(frozen=True)
class CsvRows:
    """The label csv as read -> rows id, label, rle (1-indexed absolute runs); frozen, so that the parse
    cache (`rle_labels.class_rles`) finds it again after pickling."""

    id_column: str
    rle_column: str
    class_column: str | None
    id_split: str | None
    instances: bool
    start: int
    relative: bool
    empty: tuple[str, ...]

    def __call__(self, frame: pd.DataFrame, where: str) -> pd.DataFrame:
        wanted = [self.id_column, self.rle_column] + ([self.class_column] if self.class_column else [])
        missing = [c for c in wanted if c not in frame]
        if missing:
            raise InputError(f"{where}: no column {', '.join(map(repr, missing))} (columns: {', '.join(frame.columns)})")
        ids, labels = frame[self.id_column], pd.Series("", index=frame.index)
        if self.id_split:
            ids, labels = rle_labels.split_pairs(ids, where, column=self.id_column, form=f"<image>{self.id_split}<class>",
                                                 separator=self.id_split)
        elif self.class_column:
            labels = frame[self.class_column]
        rows = pd.DataFrame({"id": ids, "label": labels, "rle": frame[self.rle_column].str.strip()})
        twice = rows.duplicated(["id", "label"], keep=False)
        if twice.any() and not self.instances:
            first = rows[twice].iloc[0]
            raise InputError(f"{where}: image {first.id} has {int((twice & (rows.id == first.id)).sum())} rows"
                             f"{f' of class {first.label}' if first.label else ''}; if each row is one object, "
                             "set instances: true")
        standard = self.start == 1 and not self.relative
        if standard and not twice.any():
            return rows.assign(rle=rows.rle.where(~rows.rle.isin(self.empty), ""))
        merged = rows.groupby(["id", "label"], sort=False).rle.agg(list)
        texts = []
        for (image_id, label), cells in merged.items():
            try:
                texts.append(union(cells, start=self.start, relative=self.relative, empty=self.empty))
            except ValueError as err:
                raise InputError(f"{where}: image {image_id}{f', class {label}' if label else ''}: malformed RLE: "
                                 f"{err}") from None
        keys = merged.index.to_frame(index=False)
        return pd.DataFrame({"id": keys["id"], "label": keys["label"], "rle": texts})


def union(cells: list[str], *, start: int = 1, relative: bool = False, empty=("",)) -> str:
    """One 1-indexed, absolute, sorted RLE of the pixels of every RLE in `cells` (pixel numbers from
    `start`; with `relative`, each run's start counted from the previous run's end); ValueError if one
    is malformed."""
    runs = []
    for text in cells:
        if text in empty:
            continue
        try:
            values = np.array(text.split(), np.int64)
        except ValueError:
            raise ValueError(f"{text[:40]!r} is not a list of integers") from None
        if len(values) % 2:
            raise ValueError(f"an odd number of values ({len(values)}); it must be start/length pairs")
        starts, lengths = values[0::2], values[1::2]
        if relative:
            starts = np.cumsum(starts) + np.concatenate([[0], np.cumsum(lengths[:-1])])
        starts = starts + (1 - start)
        if len(starts) and (starts.min() < 1 or lengths.min() < 1):
            raise ValueError(f"a start below {start} or a length below 1 in {text[:40]!r}")
        runs.append(np.stack([starts, starts + lengths], axis=1))
    if not runs:
        return ""
    table = np.concatenate(runs)
    table = table[np.argsort(table[:, 0], kind="stable")]
    reach = np.maximum.accumulate(table[:, 1])
    new = np.concatenate([[True], table[1:, 0] > reach[:-1]])  # touching runs join
    firsts = table[new, 0]
    ends = reach[np.concatenate([np.flatnonzero(new)[1:] - 1, [len(table) - 1]])]
    return " ".join(f"{a} {b}" for a, b in zip(firsts.tolist(), (ends - firsts).tolist()))


def read_mask(key: Path | str, *, csv: rle_labels.LabelCsv, order: RleOrder) -> np.ndarray:
    """The (H, W) mask of a mask key whose id ends in `SIZE_MARK` and the image's size (bit k: class k)."""
    locator, _, sized = str(key).rpartition(rle_labels.KEY_MARK)
    image_id, _, size = sized.rpartition(SIZE_MARK)
    height, width = (int(n) for n in size.split("x"))
    encoded = rle_labels.class_rles(locator, csv).get(image_id, ())
    return rle_labels.decode_classes(encoded, (height, width), order, csv.labels, f"{locator}: image {image_id}")


def load(root: Path | Tree, *, labels: str = "train.csv", train_images: str = "train/{id}", every_image: bool = False,
         test_images: str | None = None, sample_submission: str | None = None, id_column: str = "ImageId",
         rle_column: str = "EncodedPixels", class_column: str | None = None, id_split: str | None = None,
         classes=(), instances: bool = False, rle_order: RleOrder = "F", rle_start: int = 1,
         rle_relative: bool = False, empty=("", "-1"), image_size=None, mask_size=None, group_regex: str | None = None,
         metric: str = "dice", submission_rows: str | None = None, competition: str | None = None,
         **_options) -> Competition:
    """Index the competition in `root` (a folder, a zip or a Tree) as its params describe it."""
    tree, classes = as_tree(root), tuple(classes)
    if (class_column or id_split) and not classes:
        raise InputError("rle_csv: class_column / id_split name each row's class: list the classes in rle_csv.classes")
    if classes and not (class_column or id_split):
        raise InputError("rle_csv.classes needs rle_csv.class_column or rle_csv.id_split: how a row names its class")
    rows = submission_rows or ("instance" if instances else "image")
    if classes and (rows == "instance" or metric.startswith("object_")):
        raise InputError("rle_csv: submission_rows: instance and the object metrics are for one class; "
                         "leave rle_csv.classes empty")
    if labels not in tree:
        raise InputError(f"{tree.where}/{labels}: missing (the label csv, rle_csv.labels)")
    locator = tree.locate(labels)
    csv = rle_labels.LabelCsv(classes or ("",), CsvRows(id_column, rle_column, class_column, id_split, instances,
                                                        int(rle_start), bool(rle_relative), tuple(empty)))
    table = rle_labels.class_rles(locator, csv)
    train_rule = _Rule(train_images, "train_images")
    on_disk = train_rule.ids(tree)
    strays = sorted(set(table).difference(on_disk), key=natural_key)
    if strays:
        raise InputError(f"{locator}: rows for images with no file {train_images!r} ({len(strays)}): {name_few(strays)}")
    ids = sorted(on_disk if every_image else table, key=natural_key)
    if not ids:
        raise InputError(f"{locator}: no training images")
    images = [tree.locate(train_rule.name(i)) for i in ids]
    sizes = {i: tuple(image_size) if image_size else readers.image_size(path) for i, path in zip(ids, images)}
    rle_labels.check_runs(table, locator, csv.labels, sizes.__getitem__)
    train = pd.DataFrame({"id": pd.Series(ids, dtype=str),
                          "group": patient_groups(ids, group_regex, "rle_csv.group_regex", "ids"),
                          "image": pd.Series(images, dtype=object),
                          "mask": [rle_labels.mask_key(locator, f"{i}{SIZE_MARK}{h}x{w}") for i, (h, w) in sizes.items()]})
    test, header = _test_table(tree, test_images, sample_submission, id_column, id_split)
    spec = SubmissionSpec(id_column, rle_column, rle_order, tree.locate(sample_submission) if sample_submission else None,
                          id_format=f"{{id}}{id_split}{{label}}" if id_split else "{id}", class_column=class_column,
                          labels=classes, columns=header if classes else (), rows=rows,
                          mask_size=tuple(mask_size) if mask_size else None, competition=competition)
    return Competition(name="rle_csv", train=train, test=test, submission=spec, read_image=readers.read_rgb,
                       read_mask=partial(read_mask, csv=csv, order=rle_order), classes=classes, metric=metric)


def _test_table(tree: Tree, rule: str | None, sample: str | None, id_column: str,
                id_split: str | None) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The test images (id, image) in the sample's order (else by name), and the sample's header."""
    if rule is None:
        return pd.DataFrame({"id": pd.Series([], dtype=str), "image": pd.Series([], dtype=object)}), ()
    test_rule = _Rule(rule, "test_images")
    header: tuple[str, ...] = ()
    if sample:
        if sample not in tree:
            raise InputError(f"{tree.where}/{sample}: missing (rle_csv.sample_submission)")
        table = tree.read_csv(sample, dtype=str, keep_default_na=False)
        if id_column not in table:
            raise InputError(f"{tree.where}/{sample}: no column {id_column!r} (columns: {', '.join(table.columns)})")
        listed = table[id_column]
        if id_split:
            listed = rle_labels.split_pairs(listed, f"{tree.where}/{sample}", column=id_column,
                                            form=f"<image>{id_split}<class>", separator=id_split)[0]
        ids, header = list(dict.fromkeys(listed)), tuple(table.columns)
        missing = [i for i in ids if test_rule.name(i) not in tree]
        if missing:
            raise InputError(f"{tree.where}/{sample}: ids with no file {rule!r} ({len(missing)}): {name_few(missing)}")
    else:
        ids = sorted(test_rule.ids(tree), key=natural_key)
        if not ids:
            raise InputError(f"{tree.where}: no files match test_images {rule!r}")
    return pd.DataFrame({"id": pd.Series(ids, dtype=str),
                         "image": pd.Series([tree.locate(test_rule.name(i)) for i in ids], dtype=object)}), header


@dataclass(frozen=True)
class _Rule:
    """An image path rule with one `{id}` field, both ways: id -> name, and the names in a tree -> ids."""

    rule: str
    param: str

    def __post_init__(self):
        if self.rule.count("{id}") != 1 or ".." in PurePosixPath(self.rule).parts:
            raise InputError(f"rle_csv.{self.param} {self.rule!r}: a path inside the source with {{id}} once")

    def name(self, image_id: str) -> str:
        return self.rule.replace("{id}", image_id)

    def ids(self, tree: Tree) -> list[str]:
        head, tail = self.rule.split("{id}")
        regex = re.compile(re.escape(head) + "(.+)" + re.escape(tail))
        return [m[1] for m in map(regex.fullmatch, tree.entries) if m and "/" not in m[1]]
