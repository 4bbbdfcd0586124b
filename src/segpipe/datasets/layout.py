"""Checks shared by the adapters of real downloads: images paired with masks, test ids in order.

Each raises InputError naming the folder or file and the first few offending names, so a
half-extracted or renamed download is caught at `load` instead of deep inside `prepare`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd

from segpipe.errors import InputError


def name_few(names: Iterable[str], limit: int = 5) -> str:
    """The first `limit` names, comma separated, then how many more there are."""
    names = list(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def pair_images_with_masks(images: Sequence[Path], masks: Iterable[Path],
                           mask_for: Callable[[Path], Path], where: Path) -> list[tuple[Path, Path]]:
    """Pair each of `images` with `mask_for(image)`; keeps the order of `images`.

    `masks` are all mask files found on disk; every one must belong to an image. `where`
    is the folder the images were searched in, named when there are none.
    Raises InputError for no images, an image without a mask or a mask without an image.
    """
    if not images:
        raise InputError(f"{where}: no training images (is the download complete?)")
    pairs = [(image, mask_for(image)) for image in images]
    unclaimed = {Path(m) for m in masks}
    missing = [mask for _, mask in pairs if mask not in unclaimed]
    if missing:
        raise InputError(f"training images without a mask ({len(missing)}): expected {name_few(map(str, missing))}")
    unclaimed.difference_update(mask for _, mask in pairs)
    if unclaimed:
        raise InputError(f"masks without an image in {where} ({len(unclaimed)}): "
                         f"{name_few(sorted(map(str, unclaimed)))}")
    return pairs


def sample_ordered_test(sample_csv: Path, id_column: str, images: Iterable[Path],
                        image_for: Callable[[str], Path], where: Path) -> pd.DataFrame:
    """The test set as columns id, image, in the row order of the sample submission.

    Ids are kept as the strings the sample file holds (so "1" stays "1", "a_01.jpg" keeps
    its suffix). `images` are all test image files on disk, found in the folder `where`;
    `image_for(id)` is an id's file.
    Raises InputError if the sample lacks `id_column`, lists an id twice, lists an id with
    no image, or if an image on disk is not listed.
    """
    try:
        sample = pd.read_csv(sample_csv, dtype=str, keep_default_na=False, usecols=[id_column])
    except FileNotFoundError:
        raise InputError(f"{sample_csv}: missing (is the download complete?)") from None
    except ValueError:  # pandas' message for a missing usecols column
        raise InputError(f"{sample_csv}: no column {id_column!r}") from None
    ids = sample[id_column].tolist()
    wanted = [Path(image_for(i)) for i in ids]
    on_disk = {Path(p) for p in images}
    problems = {
        "ids listed twice": sorted(set(sample[id_column][sample[id_column].duplicated()])),
        f"ids with no image in {where}": [i for i, path in zip(ids, wanted) if path not in on_disk],
        f"images in {where} not in the sample": sorted(p.name for p in on_disk.difference(wanted)),
    }
    found = "; ".join(f"{what}: {name_few(bad)}" for what, bad in problems.items() if bad)
    if found:
        raise InputError(f"{sample_csv} disagrees with the test images: {found}")
    return pd.DataFrame({"id": ids, "image": wanted})
