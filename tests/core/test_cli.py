"""The stage boundary: user errors and a full disk become one `error:` line and exit status 1."""
import errno
import os

import pytest

from segpipe.core.cli import run_stage
from segpipe.core.errors import InputError


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
