"""Checks shared by the adapters of real downloads: images paired with masks, test ids in order.

Each raises InputError naming the folder or file and the first few offending names, so a
half-extracted or renamed download is caught at `load` instead of deep inside `prepare`.
"""
from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Callable, Iterable, Sequence

import pandas as pd

from segpipe.core.errors import InputError

from .tree import Tree


def name_few(names: Iterable[str], limit: int = 5) -> str:
    """The first `limit` names, comma separated, then how many more there are."""
    names = list(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def patient_groups(names: Sequence[str], group_regex: str | None, param: str = "group_regex",
                   what: str = "image names") -> list[str]:
    """Each name's patient: the first group of `group_regex` searched in it, or the name itself when
    there is no regex. InputError naming `param` for an invalid regex, one without a group, or one
    that some names (`what` they are) do not match."""
    if group_regex is None:
        return list(names)
    try:
        pattern = re.compile(group_regex)
    except re.error as err:
        raise InputError(f"{param} {group_regex!r} is not a valid regex: {err}") from None
    if pattern.groups < 1:
        raise InputError(f"{param} {group_regex!r} needs a (group) that captures the patient id")
    found = [pattern.search(name) for name in names]
    unmatched = [name for name, match in zip(names, found) if not match]
    if unmatched:
        raise InputError(f"group_regex {group_regex!r} does not match the {what} {name_few(unmatched)}")
    return [match[1] for match in found]


def tif_mask_for(image: str) -> str:
    """<name>.tif -> <name>_mask.tif: how Ultrasound Nerve and LGG name a slice's mask."""
    return image.removesuffix(".tif") + "_mask.tif"


def pair_images_with_masks(images: Sequence[str], masks: Iterable[str],
                           mask_for: Callable[[str], str], where: str) -> list[tuple[str, str]]:
    """Pair each of `images` with `mask_for(image)`; keeps the order of `images`.

    Images and masks are names in a source's Tree. `masks` are all mask files found; every
    one must belong to an image. `where` is the folder the images were searched in.
    Raises InputError for no images, an image without a mask or a mask without an image.
    """
    if not images:
        raise InputError(f"{where}: no training images (is the download complete?)")
    pairs = [(image, mask_for(image)) for image in images]
    unclaimed = set(masks)
    missing = [mask for _, mask in pairs if mask not in unclaimed]
    if missing:
        raise InputError(f"training images without a mask ({len(missing)}): expected {name_few(map(str, missing))}")
    unclaimed.difference_update(mask for _, mask in pairs)
    if unclaimed:
        raise InputError(f"masks without an image in {where} ({len(unclaimed)}): "
                         f"{name_few(sorted(map(str, unclaimed)))}")
    return pairs


def sample_ordered_test(tree: Tree, sample: str, id_column: str, images: Iterable[str],
                        image_for: Callable[[str], str], where: str) -> pd.DataFrame:
    """The test set as columns id, image (locators), in the row order of the sample submission.

    `sample` is the sample submission's name in `tree`. Ids are kept as the strings the
    sample file holds (so "1" stays "1", "a_01.jpg" keeps its suffix). `images` are the
    names of all test images, found in the folder `where`; `image_for(id)` is an id's name.
    Raises InputError if the sample lacks `id_column`, lists an id twice, lists an id with
    no image, or if an image on disk is not listed.
    """
    shown = f"{tree.where}/{sample}"
    if sample not in tree:
        raise InputError(f"{shown}: missing (is the download complete?)")
    try:
        table = tree.read_csv(sample, dtype=str, keep_default_na=False, usecols=[id_column])
    except ValueError:  # pandas' message for a missing usecols column
        raise InputError(f"{shown}: no column {id_column!r}") from None
    ids = table[id_column].tolist()
    wanted = [image_for(i) for i in ids]
    on_disk = set(images)
    problems = {
        "ids listed twice": sorted(set(table[id_column][table[id_column].duplicated()])),
        f"ids with no image in {where}": [i for i, name in zip(ids, wanted) if name not in on_disk],
        f"images in {where} not in the sample": sorted(PurePosixPath(n).name for n in on_disk.difference(wanted)),
    }
    found = "; ".join(f"{what}: {name_few(bad)}" for what, bad in problems.items() if bad)
    if found:
        raise InputError(f"{shown} disagrees with the test images: {found}")
    return pd.DataFrame({"id": ids, "image": [tree.locate(name) for name in wanted]})


def test_images_in_order(tree: Tree, listed: Iterable[str], folder_glob: str, shown: str) -> pd.DataFrame:
    """Columns id, image: the images of `folder_glob` in the order their names first appear in `listed`
    (a sample submission with a row per image and class lists each name several times).

    Raises InputError naming `shown` (the sample) if a listed name has no image, or an image
    is not listed.
    """
    ids = list(dict.fromkeys(listed))
    on_disk = {PurePosixPath(name).name: name for name in tree.glob(folder_glob)}
    folder = f"{tree.where}/{PurePosixPath(folder_glob).parent}"
    problems = {f"ids with no image in {folder}": [i for i in ids if i not in on_disk],
                f"images in {PurePosixPath(folder_glob).parent} not in the sample": sorted(set(on_disk).difference(ids))}
    found = "; ".join(f"{what}: {name_few(bad)}" for what, bad in problems.items() if bad)
    if found:
        raise InputError(f"{shown} disagrees with the test images: {found}")
    return pd.DataFrame({"id": pd.Series(ids, dtype=str),
                         "image": pd.Series([tree.locate(on_disk[i]) for i in ids], dtype=object)})
