import errno
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from segpipe.core.errors import InputError
from segpipe.core.runtime import atomic_path, create_npy, scratch_folder


def test_atomic_path_publishes_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole" and list(tmp_path.iterdir()) == [target]


def test_atomic_path_replaces_a_directory(tmp_path):
    target = tmp_path / "prepared"
    (target / "old").mkdir(parents=True)
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("x")
    assert [p.name for p in target.iterdir()] == ["new"]


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped: what a killed stage leaves behind."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temps_left_by_killed_runs_are_removed_on_the_next_run(tmp_path):
    target = tmp_path / "prepared"
    stale = tmp_path / f".prepared.tmp-{dead_pid()}"
    (stale / "half").mkdir(parents=True)
    running = tmp_path / f".prepared.tmp-{os.getppid()}"  # a live process: maybe writing right now
    running.write_text("busy")
    other = tmp_path / f".train.csv.tmp-{dead_pid()}"  # another output's: cleaned when that is written
    other.write_text("x")
    with atomic_path(target) as tmp:
        tmp.mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, running.name, other.name])


def test_a_scratch_folder_is_gone_after_its_block_and_a_killed_runs_goes_on_the_next(tmp_path):
    stale = tmp_path / f".building.tmp-{dead_pid()}"  # what a SIGKILLed bundle stage leaves
    (stale / "bundle").mkdir(parents=True)
    with pytest.raises(RuntimeError):
        with scratch_folder(tmp_path / "building") as folder:
            assert folder.is_dir() and not any(folder.iterdir()) and folder.parent == tmp_path
            raise RuntimeError("failed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EDQUOT])
def test_a_full_disk_is_an_input_error_naming_the_output_and_keeps_the_old_one(tmp_path, code):
    target = tmp_path / "submit.csv.gz"
    target.write_text("old")
    with pytest.raises(InputError, match=re.escape(str(target)) + ": no room to write it .*free space"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise OSError(code, os.strerror(code))
    assert list(tmp_path.iterdir()) == [target] and target.read_text() == "old"


def test_other_os_errors_keep_their_traceback(tmp_path):
    with pytest.raises(PermissionError):
        with atomic_path(tmp_path / "out") as tmp:
            raise PermissionError(errno.EACCES, "denied", str(tmp))


@pytest.mark.skipif(not hasattr(os, "posix_fallocate"), reason="no posix_fallocate here")
def test_create_npy_reserves_its_disk_space(tmp_path):
    array = create_npy(tmp_path / "big.npy", (64, 256, 256), np.uint8)
    size = (tmp_path / "big.npy").stat()
    assert array.shape == (64, 256, 256) and size.st_blocks * 512 >= size.st_size  # not a sparse file
    assert np.load(tmp_path / "big.npy", mmap_mode="r").shape == (64, 256, 256)
