"""The embedded default competition, generated offline by `segpipe.synthetic` (the default kind: brain-MRI-like
lesion slices).

It is laid out like a real Kaggle download (`segpipe.synthetic.write`), so the pipeline runs
the same code paths it would on LGG or Ultrasound Nerve, with no network access or
credentials. `kind` picks what the images show: "brain", "thin" (thin curves for tile mode),
"multi" (three overlapping classes: a multi-label competition) or "exclusive" (the same
classes, one a pixel: a multi-class competition). Patients are ordered slice stacks, so the
tables carry `slice` for 2.5D context.
"""
from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import PositiveInt

from segpipe.core.errors import InputError
from segpipe.core.runtime import atomic_path
from segpipe.synthetic import write

from .. import readers
from ..base import Competition, DatasetSection, SubmissionSpec
from ..layout import name_few

REMAKE = "rerun `dvc repro -f download`"  # a generated set out of step, as the pipeline remakes it
BINARY = SubmissionSpec(*write.BINARY_COLUMNS, rle_order="F", sample_submission=None)  # load() fills in the path
CLASSES = SubmissionSpec(write.CLASS_COLUMNS[0], write.CLASS_COLUMNS[1], rle_order="F", sample_submission=None,
                         class_column=write.CLASS_COLUMNS[2])


class Params(DatasetSection):
    train_patients: PositiveInt = 32
    test_patients: PositiveInt = 8
    slices_per_patient: PositiveInt = 16
    height: PositiveInt = 64
    width: PositiveInt = 64
    kind: Literal["brain", "thin", "multi", "exclusive"] = "brain"  # brain: MRI-like lesions; thin: thin structures on large
    # images; multi: three overlapping lesion classes (a multi-label competition); exclusive: the same
    # classes, one a pixel (a multi-class competition: softmax with a background)


def generate(root: Path, *, seed: int, train_patients: int, test_patients: int, slices_per_patient: int,
             height: int, width: int, kind: str = "brain") -> None:
    """Generate the competition into `root` (replaced atomically); same arguments, same bytes."""
    if kind not in write.KINDS:  # before the old folder is touched
        raise InputError(f"params.yaml: synthetic.kind: unknown kind {kind!r}; choose one of {sorted(write.KINDS)}")
    with atomic_path(root) as tmp:
        write.write(tmp, seed, kind, train_patients, test_patients, slices_per_patient, height, width)


def load(root: Path, kind: str = "brain", remedy: str = REMAKE, **_options) -> Competition:
    """Read a generated (or same-shaped) download into the pipeline's view of a dataset; a file missing or out of
    step is an InputError that ends with `remedy`."""
    root = Path(root)
    classes = write.KINDS[kind][1] if kind in write.KINDS else ()
    spec = CLASSES if classes else BINARY
    return Competition(name="synthetic", train=_train_table(root, remedy),
                       test=_test_table(root, spec, classes or (None,), remedy),
                       submission=dataclasses.replace(spec, sample_submission=root / "sample_submission.csv"),
                       read_image=readers.read_rgb,
                       read_mask=partial(readers.read_bit_mask, classes=len(classes)) if classes
                       else readers.read_binary_mask,
                       classes=classes, exclusive=kind == "exclusive")


def _slice_key(path: Path) -> tuple[str, int]:
    patient, _, number = path.stem.rpartition("_")
    if not patient or not number.isdigit():
        raise InputError(f"{path}: expected a name like <patient>_<slice>.png")
    return patient, int(number)


def _train_table(root: Path, remedy: str) -> pd.DataFrame:
    images = sorted((root / "train").glob("*.png"), key=_slice_key)
    if not images:
        raise InputError(f"{root / 'train'}: no training images ({remedy})")
    orphans = {p.name: p for p in (root / "train_masks").glob("*_mask.png")}
    rows = []
    for image in images:
        mask = root / "train_masks" / f"{image.stem}_mask.png"
        if orphans.pop(mask.name, None) is None:
            raise InputError(f"{mask}: missing mask for {image} ({remedy})")
        rows.append((image.stem, *_slice_key(image), image, mask))
    if orphans:
        more = f" (and {len(orphans) - 1} more)" if len(orphans) > 1 else ""
        raise InputError(f"{min(orphans.values())}: mask has no image in {root / 'train'}{more} ({remedy})")
    return pd.DataFrame(rows, columns=["id", "group", "slice", "image", "mask"])


def _test_table(root: Path, spec: SubmissionSpec, labels: tuple, remedy: str) -> pd.DataFrame:
    """The test slices in the sample's order: its rows are each id once per class (`labels`), classes in order;
    (None,): once, with no class column."""
    path = root / "sample_submission.csv"
    if not path.is_file():
        raise InputError(f"{path}: missing ({remedy})")
    sample = pd.read_csv(path, dtype=str, keep_default_na=False)
    columns = [spec.id_column] + ([spec.class_column] if spec.class_column else [])
    if not set(columns) <= set(sample.columns):
        raise InputError(f"{path}: expected the columns {','.join(spec.header())}, found {','.join(sample.columns)}")
    ids = list(dict.fromkeys(sample[spec.id_column]))
    on_disk = {p.stem for p in (root / "test").glob("*.png")}
    if spec.class_column:
        rows = list(zip(*(sample[c] for c in columns)))
        pattern = [(i, label) for i in ids for label in labels]
        order = {f"rows out of the pattern (each id once per class, in the order {', '.join(labels)})":
                 [f"{i} {c}" for (i, c), want in zip(rows, pattern) if (i, c) != want]}
        if len(rows) != len(pattern):
            order["row count"] = [f"{len(rows)} rows for {len(ids)} ids"]
    else:
        order = {"ids listed twice": sorted(set(sample[spec.id_column][sample.duplicated(spec.id_column)]))}
    problems = {**order, f"ids with no image in {root / 'test'}": [i for i in ids if i not in on_disk],
                "test images not in the sample": sorted(on_disk.difference(ids))}
    found = "; ".join(f"{what}: {name_few(bad)}" for what, bad in problems.items() if bad)
    if found:
        raise InputError(f"{path} disagrees with {root / 'test'}: {found} ({remedy})")
    keys = [_slice_key(Path(f"{i}.png")) for i in ids]  # the test stacks are ordered too (2.5D context)
    return pd.DataFrame({"id": ids, "group": [g for g, _ in keys], "slice": [z for _, z in keys],
                         "image": [root / "test" / f"{i}.png" for i in ids]})
