"""The user's own data: a folder of images and masks, described by a glob and a mask rule.

    train_images: "images/*.png"        glob relative to the folder
    mask: "{stem}_mask.png"             where an image's mask is, relative to the image's own
          "../masks/{stem}.png"         folder; fields {stem} {name} {suffix} of the image
    test_images: "test/*.png"           optional; without it the generic holdout makes one
    group_regex: "^(case\\d+)_"         its first group, searched in the stem, is the patient
    classes: [liver, tumour]            optional: the masks are index PNGs, value k the k-th class
    exclusive: true                     optional, index PNGs only: a softmax over background and classes
                                        (the multiclass kind) instead of a sigmoid per class;
    mask: "{stem}_{class}.png"          with {class} in the rule: one binary mask file per class
    mask: "../masks/*.png"              a glob: every file it matches is one instance of the image
                                        (2018 Data Science Bowl), their union the image's mask
    submission_rows: instance           a row per connected component of the predicted mask, one
                                        empty row for an image with none (Airbus, DSB 2018)
    metric: patient_dice                optional: the score to maximise, Dice per patient (group_regex's
                                        groups, slices pooled) instead of per image (`dice`); or
                                        `iou_hits`, TGS Salt's IoU-threshold score per image; or
                                        `object_f2` / `object_ap`, Airbus's / DSB 2018's on objects

A file the train glob matches that is some matched image's mask is skipped, so "*.png" with
"{stem}_mask.png" works. Ids are file stems, sorted naturally (`case2` before `case10`).
Masks may be {0,1}, {0,255} or RGB: any non-zero pixel is foreground. With `classes`, a
mask is an index PNG (palette or one channel): 0 background, k + 1 the class `classes[k]`,
exclusive classes that train as one sigmoid channel each ([several classes](docs/classes.md)).
A rule with `{class}` names one binary mask file per class instead (classes may then
overlap), and every image needs all of its class files. The submission then has a `class`
column, a row per (image, class).

The folder (or a zip of it) is read in place through the download stage's manifest; nothing
is copied, and editing, adding or removing a file there shows in `dvc status`.
"""
from __future__ import annotations

import fnmatch
import posixpath
import re
import string
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Literal, Sequence

import pandas as pd
from pydantic import Field, model_validator

from segpipe.core.errors import InputError
from segpipe.core.labels import Labels

from .. import readers
from ..base import Competition, DatasetSection, SubmissionSpec
from ..layout import name_few, pair_images_with_masks, patient_groups
from ..tree import Tree, as_tree, natural_key


class Params(DatasetSection):
    source: str = "data/sources/folder"  # the user's data folder (or a zip of it)
    train_images: str = "train/*.png"
    mask: str = "{stem}_mask.png"
    test_images: str | None = None
    group_regex: str | None = None
    rle_order: Literal["C", "F"] = "F"
    classes: list[str] = []  # index masks: value k + 1 is classes[k]; [] = binary masks
    exclusive: bool = False  # index masks: train the classes as exclusive (softmax with a background)
    metric: Literal["dice", "patient_dice", "iou_hits", "object_f2", "object_ap"] = "dice"  # the score to maximise
    submission_rows: Literal["image", "instance"] = "image"  # a row per image (and class), or per object
    holdout_patients: float | None = Field(None, ge=0, lt=1)

    @model_validator(mode="after")
    def _holdout_without_test(self) -> "Params":
        if self.holdout_patients is None:  # like LGG when there is no test set
            object.__setattr__(self, "holdout_patients", 0.0 if self.test_images else 0.2)
        return self


def load(root: Path | Tree, *, train_images: str, mask: str, test_images: str | None = None,
         group_regex: str | None = None, rle_order: str = "F", classes: Sequence[str] = (),
         exclusive: bool = False, metric: str = "dice", submission_rows: str = "image", **_options) -> Competition:
    """Index the folder `root` (a path, or the Tree of the source)."""
    if rle_order not in ("C", "F"):
        raise InputError(f"rle_order must be 'C' (row-major) or 'F' (column-major), got {rle_order!r}")
    tree = as_tree(root)
    classes = tuple(classes)
    try:
        Labels(classes)  # the label spec's own check of the names
    except ValueError as err:
        raise InputError(f"folder.{err}") from None
    per_class = _check_rule(mask, classes)
    instances = _is_glob(mask)
    if exclusive and (per_class or not classes):
        raise InputError("folder.exclusive is for index PNG masks (folder.classes without {class} in folder.mask): "
                         "their classes are one a pixel by construction")
    if classes and (instances or submission_rows == "instance" or metric.startswith("object_")):
        raise InputError("folder: instance masks (a glob in folder.mask), folder.submission_rows: instance and the "
                         "object metrics are for one class; leave folder.classes empty")
    train, test = _index(tree, train_images, mask, test_images, group_regex, classes if per_class else (), instances)
    spec = SubmissionSpec("id", "rle_mask", rle_order, None, competition=None, class_column="class" if classes else None,
                          rows=submission_rows)
    read_mask = (readers.read_instance_files if instances else readers.read_class_files if per_class else
                 partial(readers.read_index_mask, classes=len(classes)) if classes else readers.read_binary_mask)
    return Competition(name="folder", train=train, test=test, submission=spec, read_image=readers.read_rgb,
                       read_mask=read_mask, classes=classes, exclusive=exclusive, metric=metric)


def _index(tree: Tree, train_images: str, rule: str, test_images: str | None, group_regex: str | None,
           class_files: Sequence[str] = (), instances: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The train table (id, group, image, mask) and test table (id, image) of the folder `tree`.

    With `class_files` (the class names of a `{class}` rule), an image's mask entry joins
    its class files' locators (`readers.class_files_key`), classes in order; with `instances`
    (a glob rule), the files the glob matches, in name order.
    """
    mask_for = partial(_mask_path, rule=rule)
    candidates = _glob(tree, train_images)
    if instances:
        return _index_instances(tree, candidates, mask_for, test_images, group_regex, rule)
    names = [{"class": name} for name in class_files] or [{}]
    masks = {mask_for(name, **fields) for name in candidates for fields in names}
    outside = sorted(m for m in masks if m.startswith("../"))
    if outside:
        raise InputError(f"mask rule {rule!r} reaches outside the source folder {tree.where} "
                         f"({name_few(outside)}): point the source at a folder that holds images and masks")
    images = sorted((name for name in candidates if name not in masks), key=_natural)
    if class_files:
        pairs = [(image, [mask_for(image, **fields) for fields in names]) for image in images]
        missing = [m for _, files in pairs for m in files if m not in tree]
        if not images:
            raise InputError(f"{tree.where}: no training images (is the download complete?)")
        if missing:
            raise InputError(f"training images without a class mask ({len(missing)}; one file per class of "
                             f"folder.classes): expected {name_few(missing)}")
        entries = [readers.class_files_key([tree.locate(m) for m in files]) for _, files in pairs]
    else:
        pairs = pair_images_with_masks(images, [m for m in map(mask_for, images) if m in tree], mask_for, tree.where)
        entries = [tree.locate(m) for _, m in pairs]
    return _tables(tree, [image for image, _ in pairs], entries, group_regex, test_images, set(images) | masks)


def _index_instances(tree: Tree, candidates: list[str], mask_for, test_images: str | None,
                     group_regex: str | None, rule: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`_index` for a glob mask rule: each image's instance files (`readers.class_files_key`)."""
    folders: dict[str, list[str]] = {}
    for name in tree.entries:
        folders.setdefault(posixpath.dirname(name), []).append(name)
    matched = {image: _glob_near(tree, folders, mask_for(image)) for image in candidates}
    masks = {m for files in matched.values() for m in files}
    images = sorted((name for name in candidates if name not in masks), key=_natural)
    if not images:
        raise InputError(f"{tree.where}: no training images (is the download complete?)")
    bare = [image for image in images if not matched[image]]
    if bare:
        raise InputError(f"training images without an instance mask ({len(bare)}; mask rule {rule!r}): "
                         f"{name_few(bare)}")
    entries = [readers.class_files_key([tree.locate(m) for m in matched[image]]) for image in images]
    return _tables(tree, images, entries, group_regex, test_images, set(images) | masks)


def _glob_near(tree: Tree, folders: dict[str, list[str]], pattern: str) -> list[str]:
    """`tree.glob(pattern)`, looking only in the pattern's folder when that has no wildcard."""
    folder = posixpath.dirname(pattern)
    if _is_glob(folder):
        return tree.glob(pattern)
    regex = re.compile(fnmatch.translate(posixpath.basename(pattern)))
    return sorted(name for name in folders.get(folder, ()) if regex.fullmatch(posixpath.basename(name)))


def _tables(tree: Tree, images: list[str], entries: list, group_regex: str | None, test_images: str | None,
            taken: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The train table of `images` and their mask `entries`, and the test table of the `test_images` glob
    (which may match none of the `taken` training files)."""
    stems = [PurePosixPath(image).stem for image in images]
    train = pd.DataFrame({"id": stems, "group": patient_groups(stems, group_regex),
                          "image": [tree.locate(image) for image in images],
                          "mask": pd.Series(entries, dtype=object)})
    tests = sorted(_glob(tree, test_images), key=_natural) if test_images else []
    clash = sorted(set(tests) & taken)
    if clash:
        raise InputError(f"test_images {test_images!r} matches training files too: {name_few(clash)}")
    test = pd.DataFrame({"id": pd.Series([PurePosixPath(n).stem for n in tests], dtype=str),
                         "image": pd.Series([tree.locate(n) for n in tests], dtype=object)})
    for split, frame in (("train", train), ("test", test)):
        twice = frame[frame.id.duplicated(keep=False)]
        if len(twice):
            raise InputError(f"{split} images share a file name (ids must be unique): "
                             f"{name_few(map(str, twice.image))}")
    return train, test


def _check_rule(rule: str, classes: Sequence[str]) -> bool:
    """Check the mask rule's fields; True when it names a file per class (`{class}`)."""
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(rule) if field is not None}
        rule.format(stem="x", name="x.png", suffix=".png", **{"class": "c"})
    except (KeyError, IndexError, ValueError) as err:
        raise InputError(f"mask rule {rule!r}: use only the fields {{stem}}, {{name}}, {{suffix}} "
                         f"(and {{class}} with folder.classes) ({err!r})") from None
    if not fields & {"stem", "name"} and not _is_glob(rule):
        raise InputError(f"mask rule {rule!r} names the same file for every image: use {{stem}} or {{name}}")
    if "class" in fields and not classes:
        raise InputError(f"mask rule {rule!r} has {{class}} but folder.classes is empty: list the class names")
    return "class" in fields


def _is_glob(rule: str) -> bool:
    """Whether a mask rule is a glob of instance files."""
    return any(char in rule for char in "*?[")


def _mask_path(image: str, rule: str, **fields: str) -> str:
    """The name of `image`'s mask (of the class in `fields`); "../masks/{stem}.png" climbs out of the image's folder."""
    path = PurePosixPath(image)
    return posixpath.normpath(posixpath.join(path.parent.as_posix(), rule.format(
        stem=path.stem, name=path.name, suffix=path.suffix, **fields)))


def _glob(tree: Tree, pattern: str) -> list[str]:
    if not pattern or PurePosixPath(pattern).is_absolute():
        raise InputError(f"glob {pattern!r} must be a non-empty pattern relative to {tree.where}")
    if ".." in PurePosixPath(pattern).parts:
        raise InputError(f"glob {pattern!r} reaches outside the source folder {tree.where}: point the source higher")
    found = tree.glob(pattern)
    if not found:
        raise InputError(f"{tree.where}: no files match {pattern!r}")
    return found


def _natural(name: str) -> tuple[list, list]:
    """Sort key comparing the digit runs of the stem (then the whole name) as numbers."""
    return natural_key(PurePosixPath(name).stem), natural_key(name)
