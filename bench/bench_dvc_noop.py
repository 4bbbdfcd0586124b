"""Time `dvc repro` with nothing to do in this repo, and check outputs are not stored twice.

There is no usual way to compare with: the table shows the time against the target. It
runs `dvc status` first and skips the timing when anything is out of date (a repro would
run stages, not measure overhead). Then, for every file of every cached output (as DVC
resolves dvc.yaml), whether it is a link into .dvc/cache (its inode is a cache file's:
a hardlink) or a separate file, which DVC also keeps in its cache: a second copy. A
reflink cannot be told from a copy, but needs btrfs, xfs or similar.
Targets: no-op repro under 3 s; no second copy of outputs.
Run as `python bench/bench_dvc_noop.py`.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dvc.repo import Repo
from side_by_side import print_table

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 3
REFLINK_FILESYSTEMS = {"btrfs", "xfs", "bcachefs", "ocfs2", "apfs"}


def dvc(*args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["dvc", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout


def repro_seconds() -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        dvc("repro")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def filesystem() -> str:
    mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    return max((m for m in mounts if str(ROOT).startswith(m[0])), key=lambda m: len(m[0]))[1]


def output_files() -> dict[str, list[Path]]:
    """Every cached output of the pipeline that exists: its dvc.yaml path -> its files."""
    with Repo(str(ROOT)) as repo:
        outs = [(out.def_path, Path(out.fs_path)) for out in repo.index.outs if out.use_cache]
    return {name: sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for name, path in outs if path.exists()}


def main() -> None:
    status = json.loads(dvc("status", "--json") or "{}")
    stale = {stage: why for stage, why in status.items() if why != ["always changed"]}  # `source` runs every time
    rows = []
    if stale:
        print(f"dvc status: not up to date ({', '.join(sorted(stale))}): no-op timing skipped\n")
    else:
        seconds = repro_seconds()
        rows.append(("dvc repro, nothing to do (s)", None, seconds, None, "< 3", seconds < 3))
    cache = {(st.st_dev, st.st_ino) for st in (p.stat() for p in (ROOT / ".dvc" / "cache").rglob("*") if p.is_file())}
    fs = filesystem()
    print(f"cache.type = {dvc('config', 'cache.type').strip()}; filesystem {fs}"
          f"{'' if fs in REFLINK_FILESYSTEMS else ' (no reflinks)'}\n")
    print(f"{'cached output':<34}{'files':>7}{'MB':>9}{'linked MB':>11}{'copy MB':>9}")
    total = twice = 0
    for name, files in output_files().items():
        sizes = [(p.stat().st_size, (p.stat().st_dev, p.stat().st_ino) in cache) for p in files]
        size, copied = sum(s for s, _ in sizes), sum(s for s, linked in sizes if not linked)
        total, twice = total + size, twice + copied
        print(f"{name:<34}{len(files):>7}{size / 2**20:>9.2f}{(size - copied) / 2**20:>11.2f}{copied / 2**20:>9.2f}")
    print()
    rows.append((f"stored twice, of {total / 2**20:.0f} MB (MB)", None, twice / 2**20, None, "0", twice == 0))
    print_table("dvc overhead", "seconds for the no-op repro; MB of outputs that are files of their own beside "
                "their cache copy", rows)


if __name__ == "__main__":
    main()
