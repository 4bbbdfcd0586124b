"""Training curves: dvclive on the process that writes (rank 0), nothing on the others."""
from __future__ import annotations

import contextlib
from pathlib import Path


class _Silent:
    """What ranks other than 0 log into: nothing."""

    step = 0

    def log_metric(self, name: str, value: float) -> None:
        pass

    def next_step(self) -> None:
        pass


def open_live(live_dir: Path, *, resumed: bool, main: bool):
    """dvclive on rank 0 (resuming its history when the run resumes); a silent logger elsewhere."""
    if not main:
        return contextlib.nullcontext(_Silent())
    from dvclive import Live

    return Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None, report=None, resume=resumed)
