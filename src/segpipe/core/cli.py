"""The boundary between DVC and the library: stage arguments and user-facing errors."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from segpipe.core.errors import InputError


def parse_paths(description: str, *names: str, fold: bool = False, model: bool = False) -> argparse.Namespace:
    """Parse `--name PATH` for each of `names` (all required), plus `--fold K` and `--model NAME` if asked."""
    from pathlib import Path

    parser = argparse.ArgumentParser(description=description)
    for name in names:
        parser.add_argument(f"--{name}", type=Path, required=True)
    if fold:
        parser.add_argument("--fold", type=int, required=True)
    if model:
        parser.add_argument("--model", required=True, help="a model name under `models` in params.yaml")
    return parser.parse_args()


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main(); a user error becomes one line on stderr and exit status 1.

    So does a full disk (most writes go through `atomic_path`, which names the output; this
    catches any other): the user can fix it, and a traceback would not help them. First, the
    temporaries that killed runs left in the workspace (DVC runs a stage at the repository's
    root) are removed.
    """
    from pathlib import Path

    from segpipe.core.runtime import DISK_FULL, remove_dead_temps

    remove_dead_temps(Path.cwd())
    try:
        main()
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    except OSError as err:
        if err.errno not in DISK_FULL:
            raise
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}no room to write ({os.strerror(err.errno)}: disk full, quota or file size limit); "
              "free some space and rerun", file=sys.stderr)
        raise SystemExit(1) from None
