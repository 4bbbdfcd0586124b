"""The sha256 of every file a bundle's inference reads, recorded by the bundle stage and checked before any is used.

Bytes damaged on a disk or in an upload inside a tensor still load as weights, and the
submission made with them is silently wrong; their digest tells. A file missing from the
bundle, or one the bundle never recorded, is named too.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Mapping

from segpipe.core.errors import InputError

REBUILD = "upload the bundle folder again as `make bundle` wrote it, or rebuild it with `make bundle`"


def sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def record(root: Path, names: Iterable[str]) -> dict[str, str]:
    """{name: sha256} of each of `names`, paths relative to the bundle `root`."""
    return {name: sha256(Path(root) / name) for name in sorted(names)}


def verify(root: Path, recorded: Mapping[str, str] | None, names: Iterable[str]) -> None:
    """InputError naming the first of `names` that is missing, unrecorded in `recorded`, or whose sha256 differs."""
    if recorded is None:
        raise InputError(f"{root}: the bundle records no sha256 of its files (an older segpipe built it), so damaged "
                         "weights could not be told from good ones; rebuild the bundle with `make bundle`")
    for name in names:
        path = Path(root) / name
        if name not in recorded:
            raise InputError(f"{path}: the bundle records no sha256 of it; {REBUILD}")
        if not path.is_file():
            raise InputError(f"{path}: missing from the bundle; {REBUILD}")
        found = sha256(path)
        if found != recorded[name]:
            raise InputError(f"{path}: its sha256 ({found[:12]}...) is not the one the bundle recorded "
                             f"({recorded[name][:12]}...): the file is damaged or was changed; {REBUILD}")
