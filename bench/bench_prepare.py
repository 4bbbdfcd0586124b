"""Time segpipe.cache.prepare against PIL open + resize, caching Carvana-sized JPEGs.

120 JPEGs of 1918x1280 are cached to 256x256 and 512x512. The usual way: for each file,
`Image.open(path).convert("RGB").resize(size)` into a numpy array, one process. Ours:
`prepare.cache_split` (libjpeg decodes at 1/2-1/8 scale when that still covers the size,
area resize with one OpenCV thread per worker, rows written into the .npy file by a
process pool), pool start-up and file creation included, with 1 and with 2 workers.
Each round runs every contender once; a ratio is the median of the rounds' ratios.
Targets: ours with 1 worker >= 1.5x PIL's images/s; 2 workers >= 1.7x one worker.
The line under the table times fixed pure-CPU work with 1 and 2 processes in the same
rounds: on a machine shared with other jobs it shows how much 2-worker speed-up there was.
Run as `python bench/bench_prepare.py`.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from side_by_side import median_seconds, paired_speedup, print_table, spin_in_processes, write_car_jpegs

from segpipe.cache.prepare import cache_split
from segpipe.datasets import Competition, SubmissionSpec, readers

COUNT, SIZES, REPEATS = 120, [(256, 256), (512, 512)], 7


def pil_way(paths: list[Path], size: tuple[int, int]) -> np.ndarray:
    out = np.empty((len(paths), *size, 3), np.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as image:
            out[i] = np.asarray(image.convert("RGB").resize(size[::-1]))
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = write_car_jpegs(tmp, COUNT)
        frame = pd.DataFrame({"id": [p.name for p in paths], "image": paths})
        competition = Competition("bench", frame, frame, SubmissionSpec("img", "rle", "C", None),
                                  readers.read_rgb, readers.read_binary_mask)

        def ours(size: tuple[int, int], workers: int):
            return lambda: cache_split(frame, competition, size, tmp / "cache.npy", None, workers, "prepare")

        rows, headroom = [], []
        for size in SIZES:  # progress bars (stderr) are still drawn, as in the stage, but not shown
            name = f"{size[0]}x{size[1]}"
            with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
                seconds = median_seconds({"pil": lambda: pil_way(paths, size), "ours1": ours(size, 1),
                                          "ours2": ours(size, 2), "spin1": spin_in_processes(1),
                                          "spin2": spin_in_processes(2)}, REPEATS)
            pil, one, two = (COUNT / seconds[key].wall for key in ("pil", "ours1", "ours2"))
            vs_pil, vs_one = paired_speedup(seconds, "pil", "ours1"), paired_speedup(seconds, "ours1", "ours2")
            rows.append((f"{name}: PIL vs ours 1 worker", pil, one, vs_pil, ">= 1.5", vs_pil >= 1.5))
            rows.append((f"{name}: ours 1 vs 2 workers", one, two, vs_one, ">= 1.7", vs_one >= 1.7))
            headroom.append(paired_speedup(seconds, "spin1", "spin2"))
    print_table(f"prepare: {COUNT} JPEGs of 1918x1280 (~300 KB, quality 95), {REPEATS} interleaved rounds",
                "images/s, median over rounds (usual = PIL, single process; or ours with 1 worker when comparing "
                "workers); ratio = median of the rounds' ratios", rows)
    print(f"\nfree second core: pure-CPU work ran {' and '.join(f'{r:.2f}x' for r in headroom)} faster on "
          "2 processes than on 1 in the same rounds (2.00 = idle machine)")


if __name__ == "__main__":
    main()
