"""Content fingerprints of source files, remembered by their stat, as DVC's own state database does.

The `source` stage indexes the chosen dataset's source whenever it runs (`make run` runs it first):
the source is not a DVC dependency, so that a missing or mistyped path is segpipe's own error and
one dataset's bad path never blocks another's. Re-reading every file at each run would cost
minutes on Carvana, so a plain file whose path, size, mtime and inode are unchanged keeps
the fingerprint remembered for it; a zip member's fingerprint is its CRC, free from the zip's
directory. The state file is segpipe's (under data/sources/.state), never in the source.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from segpipe.core.runtime import atomic_path

from .tree import Tree

STATE = ".state"  # under the sources folder


@dataclass(frozen=True)
class Changes:
    """What differs from the last index of the same dataset: names edited, added and removed."""

    edited: list[str]
    added: list[str]
    removed: list[str]

    def __str__(self) -> str:
        parts = [f"{len(names)} {word} ({_some(names)})" for word, names in
                 (("edited", self.edited), ("added", self.added), ("removed", self.removed)) if names]
        return ", ".join(parts) or "no file changed"


def state_file(sources: Path, name: str) -> Path:
    return Path(sources) / STATE / f"{name}.json"


def fingerprints(tree: Tree, names: list[str], state: Path | None, workers: int = 4) -> tuple[list[str], Changes | None]:
    """The content fingerprint of each of `names`, and the changes since the last call (None on the first).

    Files are re-read only when their stat changed; `state` (None: remember nothing) is
    rewritten with what this call saw.
    """
    remembered = _read(state)
    keys = {name: _stat_key(tree, name) for name in names}
    fresh = [name for name in names if keys[name] is None or remembered.get(name, {}).get("key") != keys[name]]
    with ThreadPoolExecutor(workers) as pool:  # hashing reads files; it releases the GIL
        computed = dict(zip(fresh, pool.map(tree.fingerprint, fresh)))
    result = [computed.get(name) or remembered[name]["fingerprint"] for name in names]
    changes = None
    if remembered:
        now = dict(zip(names, result))
        changes = Changes(edited=[n for n in names if n in remembered and remembered[n]["fingerprint"] != now[n]],
                          added=[n for n in names if n not in remembered],
                          removed=sorted(set(remembered) - set(now)))
    if state is not None:
        with atomic_path(state) as tmp:
            tmp.write_text(json.dumps({n: {"key": keys[n], "fingerprint": f} for n, f in zip(names, result)}))
    return result, changes


def _stat_key(tree: Tree, name: str) -> list | None:
    """[path, size, mtime_ns, inode] of a plain file; None for a zip member (its CRC is free)."""
    entry = tree.entries[name]
    if entry.crc is not None:
        return None
    stat = Path(entry.locator).stat()
    return [str(entry.locator), stat.st_size, stat.st_mtime_ns, stat.st_ino]


def _read(state: Path | None) -> dict:
    if state is None or not Path(state).is_file():
        return {}
    try:
        return json.loads(Path(state).read_text())
    except (ValueError, OSError):  # a damaged state only costs a full re-read
        return {}


def _some(names: list[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
