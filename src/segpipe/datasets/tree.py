"""A read-only view of a dataset source: the files an adapter sees, wherever they lie.

A source is a folder, a zip, or a folder of zips (Kaggle serves Carvana as per-file zips
and a Kaggle Notebook mounts them unextracted). Files are never copied out of it: zip
members are listed from the central directory and read in place, and a zip inside a zip
is read in place when it is stored (the usual case: zipping JPEGs gains nothing); only a
compressed inner zip is extracted, once, into a folder of ours.

Each file has a *name*, its relative POSIX path as it would be after extraction (member
`train/a.jpg` of `train.zip` is `train/a.jpg`), and a *locator*, the Path that
`read_bytes` opens: a plain file, or `<zip>!<member>` (`a.zip!b.zip!c.jpg` when nested).
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from segpipe.core.errors import InputError
from segpipe.core.runtime import atomic_path, per_process

ZIP_MARK = ".zip!"  # separates a zip's path from a member's in a locator


@dataclass(frozen=True)
class Entry:
    locator: Path
    size: int
    crc: int | None = None  # zip members carry a CRC-32 of their content


class Tree:
    """Names -> entries of one source, with glob-style lookups; `where` is shown in errors."""

    def __init__(self, entries: dict[str, Entry], where: str):
        self.entries, self.where = entries, where

    @classmethod
    def scan(cls, source: Path, unzip_dir: Path | None = None) -> Tree:
        """Every file under the folder or zip `source`; zips are listed, not extracted.

        Hidden files and folders (`.gitkeep`, `.complete`) are skipped. A plain file wins
        over a zip member of the same name (a folder holding both `train/` and `train.zip`).
        A link is read as what it points to; one to anything but a regular file is refused.
        """
        source = Path(source)
        entries: dict[str, Entry] = {}
        if source.is_file():
            _add_zip(entries, "", (str(source),), unzip_dir)
        elif source.is_dir():
            for folder, dirs, files in os.walk(source):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                prefix = Path(folder).relative_to(source).as_posix()
                prefix = "" if prefix == "." else prefix + "/"
                for file in sorted(f for f in files if not f.startswith(".")):
                    path = Path(folder) / file
                    size = _regular_size(path)
                    if file.lower().endswith(".zip"):
                        _add_zip(entries, prefix, (str(path),), unzip_dir)
                    else:
                        entries[prefix + file] = Entry(path, size)
        else:
            raise InputError(f"{source}: no such file or folder (the dataset's source)")
        return cls(entries, str(source))

    def glob(self, pattern: str) -> list[str]:
        """Names matching a pathlib-style glob (`*` within one folder, `**` any depth), sorted."""
        regex = _glob_regex(pattern)
        return sorted(name for name in self.entries if regex.fullmatch(name))

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def locate(self, name: str) -> Path:
        return self.entries[name].locator

    def rooted(self, marker: str) -> Tree:
        """The sub-tree whose top holds `marker` (a file name, or a folder name ending in "/").

        The shallowest such folder wins; among equally deep ones, the last in natural order,
        so a kagglehub cache folder `versions/1 .. versions/12` resolves to `versions/12`.
        """
        tops = set()
        for name in self.entries:
            parts = name.split("/")
            for depth in range(len(parts)):
                rest = "/".join(parts[depth:])
                if rest.startswith(marker) if marker.endswith("/") else rest == marker:
                    tops.add("".join(part + "/" for part in parts[:depth]))
                    break
        if not tops:
            return self
        top = max(tops, key=lambda p: (-p.count("/"), natural_key(p)))
        return Tree({n[len(top):]: e for n, e in self.entries.items() if n.startswith(top)}, f"{self.where}/{top}".rstrip("/"))

    def read_bytes(self, name: str) -> bytes:
        return read_bytes(self.locate(name))

    def read_csv(self, name: str, **options):
        """The csv file `name` (perhaps a zip member) as a DataFrame; `options` go to pandas."""
        import pandas as pd

        return pd.read_csv(io.BytesIO(self.read_bytes(name)), **options)

    def fingerprint(self, name: str) -> str:
        """A content fingerprint: a zip member's CRC-32, else the BLAKE2b of the file's bytes."""
        entry = self.entries[name]
        if entry.crc is not None:
            return f"crc32:{entry.crc:08x}"
        with open(entry.locator, "rb") as handle:
            return "blake2b:" + hashlib.file_digest(handle, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def _regular_size(path: Path) -> int:
    """The size of the regular file at `path` (through a link); InputError for anything else: a device such as
    /dev/zero or a pipe would be read forever when the file is fingerprinted."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: a link to nothing ({os.readlink(path)}); remove it, or point it at the file") \
            from None
    if not stat.S_ISREG(info.st_mode):
        what = f"a link to {os.path.realpath(path)}, " if path.is_symlink() else ""
        raise InputError(f"{path}: not a regular file ({what}a device, pipe or socket); segpipe reads only regular "
                         "files: remove it from the source")
    return info.st_size


def as_tree(root) -> Tree:
    """`root` itself if it is a Tree, else a scan of the folder or zip at that path."""
    return root if isinstance(root, Tree) else Tree.scan(Path(root))


def natural_key(text: str) -> list:
    """Compare digit runs as numbers: `case2` before `case10`."""
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", text))]


def read_bytes(locator: Path | str) -> bytes:
    """The content of a plain file or of a zip member given as `<zip>!<member>`."""
    with open_file(locator) as handle:
        try:
            return handle.read()
        except zipfile.BadZipFile as err:  # a member whose CRC no longer matches
            raise InputError(f"{locator}: cannot read this zip member ({err})") from None


def open_file(locator: Path | str):
    """A plain file or a zip member (`<zip>!<member>`), opened for reading; only what is read is decoded."""
    text = str(locator)
    if ZIP_MARK not in text.lower():
        return open(text, "rb")
    *chain, member = _split(text)
    try:
        return _open_zip(tuple(chain)).open(member)
    except (KeyError, zipfile.BadZipFile) as err:
        raise InputError(f"{text}: cannot read this zip member ({err})") from None


def _split(locator: str) -> list[str]:
    parts, start = [], 0
    lowered = locator.lower()
    while (at := lowered.find(ZIP_MARK, start)) >= 0:
        parts.append(locator[start:at + 4])
        start = at + len(ZIP_MARK)
    return [*parts, locator[start:]]


@per_process(maxsize=16)
def _open_zip(chain: tuple[str, ...]) -> zipfile.ZipFile:
    """The zip at the end of `chain` (a zip, then members of it that are zips), opened once per process."""
    if len(chain) == 1:
        return zipfile.ZipFile(chain[0])
    return zipfile.ZipFile(_stored_member(_open_zip(chain[:-1]), chain[-1]))


def _stored_member(archive: zipfile.ZipFile, member: str) -> io.RawIOBase:
    """A seekable window onto a stored (uncompressed) member of `archive`: read in place."""
    info = archive.getinfo(member)
    whole = archive.fp if isinstance(archive.fp, _Window) else _Window(archive.fp, 0, 1 << 62)
    local = whole.read_at(info.header_offset, 30)  # local header: name and extra lengths at bytes 26, 28
    start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
    window = _Window(archive.fp, start, info.file_size)
    window.owner = archive  # closing the outer zip would close the file under the window
    return window


class _Window(io.RawIOBase):
    """Bytes [start, start + size) of an open file (or of another window), as a seekable read-only file.

    Reads use pread, so windows never move a file offset that something else relies on.
    """

    def __init__(self, base, start: int, size: int):
        self._base, self._start, self._size, self._pos = base, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = max(0, (0, self._pos, self._size)[whence] + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read_at(self, offset: int, count: int) -> bytes:
        count = max(0, min(count, self._size - offset))
        if isinstance(self._base, _Window):
            return self._base.read_at(self._start + offset, count)
        return os.pread(self._base.fileno(), count, self._start + offset)

    def readinto(self, buffer) -> int:
        data = self.read_at(self._pos, len(buffer))
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)


def _add_zip(entries: dict[str, Entry], prefix: str, chain: tuple[str, ...], unzip_dir: Path | None) -> None:
    """Add the members of the zip `chain` (see `_open_zip`) under `prefix`; inner zips too."""
    where = "!".join(chain)
    try:
        archive = _open_zip(chain)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        raise InputError(f"{where}: not a readable zip ({err})") from None
    for info in infos:
        if info.is_dir() or PurePosixPath(info.filename).name.startswith("."):
            continue
        name = prefix + info.filename
        if PurePosixPath(info.filename).is_absolute() or ".." in PurePosixPath(info.filename).parts:
            raise InputError(f"{where}: entry {info.filename!r} would lie outside the zip's folder; refusing the zip")
        if info.filename.lower().endswith(".zip"):  # a zip in a zip: Kaggle's competition archives
            inner_prefix = prefix + _parent(info.filename)
            if info.compress_type == zipfile.ZIP_STORED:
                _add_zip(entries, inner_prefix, (*chain, info.filename), unzip_dir)
            else:
                _add_zip(entries, inner_prefix, (str(_extract_once(archive, info, unzip_dir)),), unzip_dir)
        elif name not in entries:
            entries[name] = Entry(Path(f"{where}!{info.filename}"), info.file_size, info.CRC)


def _parent(member: str) -> str:
    parent = PurePosixPath(member).parent.as_posix()
    return "" if parent == "." else parent + "/"


def _extract_once(archive: zipfile.ZipFile, info: zipfile.ZipInfo, unzip_dir: Path | None) -> Path:
    """A compressed inner zip, extracted once into `unzip_dir` (named by its CRC, so a new one re-extracts)."""
    if unzip_dir is None:
        raise InputError(f"{archive.filename}: holds the compressed zip {info.filename}, which can only be read "
                         "extracted; unzip that one file and point the source at the result")
    target = Path(unzip_dir) / f"{info.CRC:08x}-{PurePosixPath(info.filename).name}"
    if not (target.is_file() and target.stat().st_size == info.file_size):
        with atomic_path(target) as tmp, archive.open(info) as src, open(tmp, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
    return target


def _glob_regex(pattern: str) -> re.Pattern:
    """pathlib's glob rules as a regex over POSIX names: `*`, `?` and `[...]` stay inside one folder."""
    parts = []
    for segment in PurePosixPath(pattern).parts:
        if segment == "**":
            parts.append("(?:[^/]+/)*")
            continue
        tokens = re.split(r"(\*|\?|\[[^\]]+\])", segment)
        parts.append("".join("[^/]*" if t == "*" else "[^/]" if t == "?" else
                             t.replace("[!", "[^") if t.startswith("[") else re.escape(t) for t in tokens) + "/")
    return re.compile("".join(parts).removesuffix("/"))
