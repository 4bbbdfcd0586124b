"""Process-wide concerns: the one seed, the device, OpenCV's threads, and writing outputs atomically."""
from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import random
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from segpipe.core.errors import InputError

if TYPE_CHECKING:
    import torch

# errno values that mean "no room to write": a full disk, a quota, a file-size limit.
DISK_FULL = frozenset({errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)})
TEMP = re.compile(r"\..+\.tmp-(\d+)")  # `atomic_path`'s temporary sibling of an output, named by its process


def seed_everything(seed: int) -> None:
    """Seed every RNG the pipeline touches (python, numpy, torch) from `base.seed`."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def per_process(maxsize: int = 16):
    """`functools.lru_cache`, keyed by the process too: a forked worker must not share its parent's
    open files (their offsets), so each process opens its own, once."""
    def decorate(func):
        cached = functools.lru_cache(maxsize)(lambda pid, *args: func(*args))

        @functools.wraps(func)
        def wrapper(*args):
            return cached(os.getpid(), *args)

        wrapper.cache_clear = cached.cache_clear
        return wrapper
    return decorate


@contextlib.contextmanager
def opencv_threads(count: int | None) -> Iterator[None]:
    """Run the block with OpenCV using `count` threads (None: as it is), then restore the setting.

    Set it before forking workers that resize: a forked child that reconfigures its threads
    can hang, and each worker's own resize threads would fight the others for the cores.
    """
    import cv2

    before = cv2.getNumThreads()
    if count is not None:
        cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def pick_device(local_rank: int = 0) -> "torch.device":
    """CUDA when there is one (device `local_rank`), else the CPU set up by `flush_denormals`: the same
    params run on both. Call it before any tensor work of the process (see `flush_denormals`)."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    flush_denormals()
    return torch.device("cpu")


def flush_denormals() -> bool:
    """Compute on the CPU with denormal floats flushed to zero; False where the CPU cannot.

    Values under 1.2e-38 (a saturated sigmoid's exp, a tiny gradient squared in Adam) are slow on
    many x86 CPUs: up to 12x per training step at 32x32 (docs/performance.md#denormal-floats). The
    setting is per thread, and torch's intra-op threads copy it when they start: set after the
    first parallel op, it holds in the calling thread only. So it is set before any tensor work,
    and checked in every thread; a warning says when threads started before it.
    """
    import torch

    if not torch.set_flush_denormal(True):
        return False
    tiny = torch.full((torch.get_num_threads() << 16,), 1e-20)  # 1e-40 when squared: denormal unless flushed
    if torch.count_nonzero(tiny * tiny):
        print("warning: torch's CPU threads started before flush-to-zero was set, so some compute with denormal "
              "floats and may run several times slower (docs/performance.md#denormal-floats)",
              file=sys.stderr, flush=True)
    return True


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it onto `path` only if the block succeeds.

    A killed or failing stage therefore never leaves a half-written output for DVC to cache.
    Works for files and directories. A killed run cannot delete its own temporary sibling,
    so siblings left by processes that no longer exist are deleted here, on the next run.
    A full disk (or quota, or file size limit) while the block writes is an InputError naming `path`.
    """
    path = Path(path)
    tmp = _fresh_temp(path)
    try:
        yield tmp
        if path.is_dir() and tmp.is_dir():
            _remove(path)
        os.replace(tmp, path)
    except OSError as err:
        if err.errno not in DISK_FULL:
            raise
        raise InputError(f"{path}: no room to write it ({os.strerror(err.errno)}: disk full, quota or file size "
                         f"limit); nothing was written and earlier files are untouched: free space on "
                         f"{path.parent} and rerun") from None
    finally:
        _remove(tmp)


@contextlib.contextmanager
def scratch_folder(path: Path | str) -> Iterator[Path]:
    """Yield a new empty folder `.<name>.tmp-<pid>` beside `path`, deleted after the block.

    Named as `atomic_path` names its temporaries, so the folders of killed runs are deleted here
    on the next run (and by `remove_dead_temps`).
    """
    folder = _fresh_temp(Path(path))
    folder.mkdir()
    try:
        yield folder
    finally:
        _remove(folder)


def _fresh_temp(path: Path) -> Path:
    """This process's `.<name>.tmp-<pid>` beside `path`, not there yet; those of killed runs deleted first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    _remove(tmp)
    return tmp


def remove_stale_temps(path: Path) -> None:
    """Delete `.<name>.tmp-<pid>` siblings of `path` whose process is gone (killed runs)."""
    prefix = f".{path.name}.tmp-"
    for sibling in path.parent.iterdir():
        if sibling.name.startswith(prefix) and _left_by_dead_process(sibling.name):
            _remove(sibling)


def remove_dead_temps(root: Path | str, depth: int = 3) -> None:
    """Delete every `.<name>.tmp-<pid>` whose process is gone, in `root` and its folders `depth` levels down
    (hidden folders, such as .git and .dvc, and links are not entered).

    `atomic_path` removes a killed run's temporaries when it next writes that output, but a
    stage that DVC restores from its run cache writes nothing: this sweep, at every stage's
    start, reaches them too (`make run` runs the `source` stage first).
    """
    try:
        entries = list(os.scandir(root))
    except OSError:  # a folder we may not list holds nothing of ours
        return
    for entry in entries:
        if _left_by_dead_process(entry.name):
            _remove(Path(entry.path))
        elif depth > 0 and not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
            remove_dead_temps(entry.path, depth - 1)


def _left_by_dead_process(name: str) -> bool:
    match = TEMP.fullmatch(name)
    return match is not None and not _process_exists(int(match[1]))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def create_npy(path: Path | str, shape: tuple[int, ...], dtype=np.uint8) -> np.memmap:
    """A new .npy of `shape` opened for writing as a memory map, its disk space reserved now.

    The pages of a fresh memory-mapped file get disk blocks only when first written; on a
    full disk that write kills the process with SIGBUS (and a pool whose worker dies that
    way waits forever). Reserving the blocks up front turns a full disk into an OSError here.
    """
    from numpy.lib.format import open_memmap

    array = open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    if hasattr(os, "posix_fallocate") and array.size:  # not on macOS/Windows
        fd = os.open(path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
        except OSError as err:
            if err.errno in DISK_FULL:
                raise
            # a file system that cannot reserve space: write as before, unprotected
        finally:
            os.close(fd)
    return array


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        import shutil

        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def save_torch(payload: object, path: Path | str) -> None:
    """`torch.save(payload)` to `path`, atomically, with a full disk an InputError naming `path` as elsewhere.

    torch's own writer reports a failed write only as `RuntimeError: [enforce fail at
    inline_container.cc] ... unexpected pos`; writing through a file object of ours keeps the
    OSError it hid, and that is raised instead.
    """
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        writer = _KeepsWriteErrors(handle)
        try:
            torch.save(payload, writer)
        except RuntimeError:
            if writer.error is None:
                raise
            raise writer.error from None


class _KeepsWriteErrors:
    """A binary file's writes, keeping the first OSError: torch.save reports it only as a RuntimeError."""

    def __init__(self, handle):
        self.handle, self.error = handle, None

    def write(self, data) -> int:
        try:
            return self.handle.write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def flush(self) -> None:
        self.handle.flush()


def write_json(path: Path | str, payload: dict) -> None:
    """Write `payload` as sorted, indented json, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
