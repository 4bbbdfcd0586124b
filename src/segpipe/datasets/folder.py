"""The user's own data: a folder of images and masks, described by a glob and a mask rule.

    train_images: "images/*.png"        glob relative to the folder
    mask: "{stem}_mask.png"             where an image's mask is, relative to the image's own
          "../masks/{stem}.png"         folder; fields {stem} {name} {suffix} of the image
    test_images: "test/*.png"           optional; without it the generic holdout makes one
    group_regex: "^(case\\d+)_"         its first group, searched in the stem, is the patient

A file the train glob matches that is some matched image's mask is skipped, so "*.png" with
"{stem}_mask.png" works. Ids are file stems, sorted naturally (`case2` before `case10`).
Masks may be {0,1}, {0,255} or RGB: any non-zero pixel is foreground.

`download` copies exactly the matched files from `source` into the data folder, keeping
their relative paths, and renames the folder into place only when every file is there.
Copies, not hard links: DVC makes cached files read-only, which would reach through a
link to the user's originals.
"""
from __future__ import annotations

import os
import re
import shutil
import string
from functools import partial
from pathlib import Path

import pandas as pd

from segpipe.errors import InputError
from segpipe.runtime import atomic_path

from . import readers
from .base import Competition, SubmissionSpec
from .layout import name_few, pair_images_with_masks


def download(root: Path, *, source: str, train_images: str, mask: str, test_images: str | None = None,
             group_regex: str | None = None, rle_order: str = "F", **_options) -> None:
    """Copy the matched train images, their masks and the test images from `source` into `root`."""
    source = Path(source)
    if not source.is_dir():
        raise InputError(f"{source}: the source folder does not exist (params: dataset source)")
    train, test = _index(source, train_images, mask, test_images, group_regex)
    files = [*train.image, *train["mask"], *test.image]
    relative = [Path(os.path.relpath(path, source)) for path in files]
    outside = [str(path) for path, rel in zip(files, relative) if rel.parts[0] == os.pardir]
    if outside:
        raise InputError(f"files outside the source folder {source}: {name_few(outside)}")
    with atomic_path(root) as tmp:
        for path, rel in zip(files, relative):
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, tmp / rel)


def load(root: Path, *, source: str | None = None, train_images: str, mask: str, test_images: str | None = None,
         group_regex: str | None = None, rle_order: str = "F", **_options) -> Competition:
    """Index the copied folder `root` (`source` is only used by `download`)."""
    if rle_order not in ("C", "F"):
        raise InputError(f"rle_order must be 'C' (row-major) or 'F' (column-major), got {rle_order!r}")
    train, test = _index(Path(root), train_images, mask, test_images, group_regex)
    return Competition(name="folder", train=train, test=test,
                       submission=SubmissionSpec("id", "rle_mask", rle_order, None, competition=None),
                       read_image=readers.read_rgb, read_mask=readers.read_binary_mask)


def _index(base: Path, train_images: str, rule: str, test_images: str | None,
           group_regex: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The train table (id, group, image, mask) and test table (id, image) of the folder `base`."""
    _check_rule(rule)
    pattern = _compile(group_regex)
    mask_for = partial(_mask_path, rule=rule)
    candidates = _glob(base, train_images)
    masks = {mask_for(path) for path in candidates}
    images = sorted((path for path in candidates if path not in masks), key=_natural)
    pairs = pair_images_with_masks(images, [m for m in map(mask_for, images) if m.is_file()], mask_for, base)
    stems = [image.stem for image, _ in pairs]
    unmatched = [stem for stem in stems if pattern and not pattern.search(stem)]
    if unmatched:
        raise InputError(f"group_regex {pattern.pattern!r} does not match the image names {name_few(unmatched)}")
    train = pd.DataFrame({"id": stems, "group": [pattern.search(s)[1] if pattern else s for s in stems],
                          "image": [image for image, _ in pairs], "mask": [m for _, m in pairs]})
    tests = sorted(_glob(base, test_images), key=_natural) if test_images else []
    clash = sorted(str(p) for p in set(tests) & (set(images) | masks))
    if clash:
        raise InputError(f"test_images {test_images!r} matches training files too: {name_few(clash)}")
    test = pd.DataFrame({"id": pd.Series([p.stem for p in tests], dtype=str), "image": pd.Series(tests, dtype=object)})
    for split, frame in (("train", train), ("test", test)):
        twice = frame[frame.id.duplicated(keep=False)]
        if len(twice):
            raise InputError(f"{split} images share a file name (ids must be unique): "
                             f"{name_few(map(str, twice.image))}")
    return train, test


def _check_rule(rule: str) -> None:
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(rule) if field is not None}
        rule.format(stem="x", name="x.png", suffix=".png")
    except (KeyError, IndexError, ValueError) as err:
        raise InputError(f"mask rule {rule!r}: use only the fields {{stem}}, {{name}}, {{suffix}} ({err!r})") from None
    if not fields & {"stem", "name"}:
        raise InputError(f"mask rule {rule!r} names the same file for every image: use {{stem}} or {{name}}")


def _mask_path(image: Path, rule: str) -> Path:
    # normpath, not resolve: "../masks" must stay comparable with glob results and symlinks kept
    return Path(os.path.normpath(image.parent / rule.format(stem=image.stem, name=image.name, suffix=image.suffix)))


def _compile(group_regex: str | None) -> re.Pattern | None:
    if group_regex is None:
        return None
    try:
        pattern = re.compile(group_regex)
    except re.error as err:
        raise InputError(f"group_regex {group_regex!r} is not a valid regex: {err}") from None
    if pattern.groups < 1:
        raise InputError(f"group_regex {group_regex!r} needs a (group) that captures the patient id")
    return pattern


def _glob(base: Path, pattern: str) -> list[Path]:
    if not pattern or Path(pattern).is_absolute():  # pathlib globs only relative patterns
        raise InputError(f"glob {pattern!r} must be a non-empty pattern relative to {base}")
    found = [Path(os.path.normpath(p)) for p in base.glob(pattern) if p.is_file()]
    if not found:
        raise InputError(f"{base}: no files match {pattern!r}")
    return found


def _natural(path: Path) -> tuple[list, list]:
    """Sort key comparing the digit runs of the stem (then the whole path) as numbers."""
    def key(text: str) -> list:
        return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", text))]
    return key(path.stem), key(str(path))
