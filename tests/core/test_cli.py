"""The stage boundary: user errors and a full disk become one `error:` line and exit status 1."""
import errno
import os

import pytest

from segpipe.core.cli import run_stage
from segpipe.core.errors import InputError
from tests.core.test_runtime import dead_pid


def fail_with(err: BaseException):
    def main() -> None:
        raise err
    return main


def test_an_input_error_is_one_line_and_exit_status_1(capsys):
    with pytest.raises(SystemExit) as exit_:
        run_stage(fail_with(InputError("params.yaml: train.lrr: Extra inputs are not permitted")))
    assert exit_.value.code == 1
    assert capsys.readouterr().err == "error: params.yaml: train.lrr: Extra inputs are not permitted\n"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_a_full_disk_outside_atomic_path_names_the_file(capsys, code):
    with pytest.raises(SystemExit) as exit_:
        run_stage(fail_with(OSError(code, os.strerror(code), "dvclive/fold0/metrics.json")))
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and err.count("\n") == 1
    assert err.startswith(f"error: dvclive/fold0/metrics.json: no room to write ({os.strerror(code)}")


def test_anything_else_is_a_bug_and_keeps_its_traceback():
    with pytest.raises(FileNotFoundError):
        run_stage(fail_with(FileNotFoundError(errno.ENOENT, "gone", "x")))
    with pytest.raises(KeyError):
        run_stage(fail_with(KeyError("threshold")))


def test_a_stage_first_removes_what_killed_runs_left_anywhere_in_the_workspace(tmp_path, monkeypatch):
    """A stage that DVC restores from its run cache never runs the `atomic_path` that would remove its own."""
    dead = dead_pid()
    left = [tmp_path / "data" / f".prepared.tmp-{dead}", tmp_path / "submissions" / f".submit.csv.gz.tmp-{dead}",
            tmp_path / "dvclive" / "unet" / "fold0" / f".metrics.json.tmp-{dead}"]
    (left[0] / "train_images.npy").parent.mkdir(parents=True)
    (left[0] / "train_images.npy").write_bytes(b"half")
    for path in left[1:]:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
    running = tmp_path / "data" / f".folds.csv.tmp-{os.getppid()}"  # a live process: maybe writing right now
    running.write_text("busy")
    kept = [tmp_path / "data" / "folds.csv", tmp_path / ".dvc" / "tmp" / f".lock.tmp-{dead}"]  # DVC's own: not ours
    for path in kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    monkeypatch.chdir(tmp_path)
    run_stage(lambda: None)
    assert not [path for path in left if path.exists()]
    assert running.exists() and all(path.exists() for path in kept)
