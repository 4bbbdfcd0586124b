"""Time segpipe.submission.submit against a pandas loop, and check its memory does not grow with the test set.

Input: 256x256 uint8 car probabilities (predict's compressed .npz, `segpipe.inference.probmaps`) for
1918x1280 Carvana images.
The usual way: for each probability, cv2.resize to 1918x1280, threshold, the usual numpy
RLE (bench_rle.numpy_encode), append to a list; then DataFrame.to_csv(compression="gzip").
Ours: `write_submission` (resize, threshold, numba RLE; the pool's workers encode 32 rows at
a time and compress each chunk into its own gzip member, the parent appends the members in
submission order, then reads the file back and validates it), with 1 and 2 workers. Both
files are checked to hold the same rows.
Scaling: ours with 2 workers against 1, wall clock, the median over rounds of the two
times in the same round (`paired_speedup`); beside it the same ratio for fixed pure-CPU work
(`spin_in_processes`), which is what the machine's free second core allows right now.
Memory: `write_submission` with 2 workers runs in a child process for 1,000 and for 10,000
test images; the peak of the summed RSS of that process and its pool workers is polled
(psutil), and each one's high-water mark is shown too: the child's VmHWM (its ru_maxrss
would start at this script's RSS, which exec keeps) and its largest worker's ru_maxrss
(RUSAGE_CHILDREN of the child: the pool's workers are reaped when it closes).
Per core is images per CPU-second of the process and its pool workers: on a machine shared
with other jobs wall-clock images/s per worker says more about the other jobs.
Ours runs once untimed first: the first validation in a process loads rle's numba code.
Targets: >= 100 images/s per core; 2 workers >= 1.7x faster than 1 (wall clock);
peak RSS(10,000) <= 1.2x RSS(1,000).
Run as `python bench/bench_submit.py`.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import psutil
from bench_rle import numpy_encode
from side_by_side import CARVANA, car_mask, median_seconds, paired_speedup, print_table, spin_in_processes

from segpipe.datasets import SubmissionSpec
from segpipe.evaluation.postprocess import Rule
from segpipe.inference.probmaps import read_map, write_maps
from segpipe.submission.submit import write_submission

SPEED_IMAGES, MEMORY_IMAGES, REPEATS, SIZE = 200, (1_000, 10_000), 5, (256, 256)
CHILD = """
import json, resource, sys
from pathlib import Path
import pandas as pd
from segpipe.datasets import SubmissionSpec
from segpipe.evaluation.postprocess import Rule
from segpipe.submission.submit import write_submission
folder = Path(sys.argv[1])
index = pd.read_csv(folder / "test.csv", dtype={"id": str})
spec = SubmissionSpec("img", "rle_mask", "C", folder / "sample.csv")
write_submission(folder / "probs.npz", index, spec, Rule(0.5, 0.5, 0), folder / "submit.csv.gz", workers=2)
own = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps([own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))
"""


def make_test_set(folder: Path, count: int, noise: float = 8) -> tuple[pd.DataFrame, SubmissionSpec]:
    """probs.npz (`count` maps, 64 blurred car shapes with noise of sd `noise` in turn), the
    test index test.csv and the sample submission sample.csv in `folder`."""
    rng = np.random.default_rng(0)
    shapes = [cv2.GaussianBlur(car_mask(i, SIZE).astype(np.float32) * 255, (0, 0), 2) + rng.normal(0, noise, SIZE)
              for i in range(64)]
    shapes = np.clip(shapes, 0, 255).astype(np.uint8)
    folder.mkdir()
    write_maps(folder / "probs.npz", (shapes[i % 64] for i in range(count)))
    index = pd.DataFrame({"id": [f"car{i:05d}_{i % 16 + 1:02d}.jpg" for i in range(count)],
                          "height": CARVANA[0], "width": CARVANA[1]})
    index.to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"img": index.id, "rle_mask": ""}).to_csv(folder / "sample.csv", index=False)
    return index, SubmissionSpec("img", "rle_mask", "C", folder / "sample.csv")


def usual_way(probs: list[np.ndarray], ids: list[str], out: Path) -> None:
    encoded = []
    for prob in probs:
        mask = cv2.resize(prob, CARVANA[::-1]) >= 128
        encoded.append(numpy_encode(mask, "C"))
    pd.DataFrame({"img": ids, "rle_mask": encoded}).to_csv(out, index=False, compression="gzip")


def peak_rss(folder: Path) -> tuple[float, float, float]:
    """MB: (peak summed RSS of the child and its pool, its own VmHWM, its largest worker's ru_maxrss)."""
    child = psutil.Popen([sys.executable, "-c", CHILD, str(folder)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    peak = 0
    while child.poll() is None:
        total = 0
        with contextlib.suppress(psutil.Error):
            for process in [child, *child.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += process.memory_info().rss
        peak = max(peak, total)
        time.sleep(0.02)
    if child.returncode:
        raise SystemExit(f"write_submission on {folder} failed (exit {child.returncode})")
    own, workers = json.loads(child.stdout.read())
    return peak / 2**20, own / 2**10, workers / 2**10


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        index, spec = make_test_set(tmp / "speed", SPEED_IMAGES)
        probs = [read_map(tmp / "speed" / "probs.npz", row) for row in range(SPEED_IMAGES)]

        def ours(workers: int):
            return lambda: write_submission(tmp / "speed" / "probs.npz", index, spec, Rule(0.5, 0.5, 0), tmp / "ours.csv.gz",
                                            workers)

        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):  # the progress bar
            ours(1)()  # untimed: the first validation loads rle's numba code (~0.5 s), once per process
            seconds = median_seconds({"usual": lambda: usual_way(probs, index.id.tolist(), tmp / "usual.csv.gz"),
                                      "ours1": ours(1), "ours2": ours(2), "spin1": spin_in_processes(1),
                                      "spin2": spin_in_processes(2)}, REPEATS)
        assert pd.read_csv(tmp / "ours.csv.gz").equals(pd.read_csv(tmp / "usual.csv.gz")), "submissions differ"
        for count in MEMORY_IMAGES:  # noise-free maps deflate ~10x faster; memory does not depend on them
            make_test_set(tmp / str(count), count, noise=0)
        memory = [peak_rss(tmp / str(count)) for count in MEMORY_IMAGES]
    usual, one, two = (SPEED_IMAGES / seconds[key].cpu for key in ("usual", "ours1", "ours2"))
    print_table(f"submit: {SPEED_IMAGES} probabilities 256x256 -> 1918x1280 RLE rows in a .csv.gz, "
                f"median of {REPEATS} interleaved runs; same rows both ways",
                "images per CPU-second (= images/s per busy core; CPU of the process and its pool workers)",
                [(f"pandas loop vs ours, {n} worker{'s' * (n > 1)}", usual, ours, ours / usual, ">= 100", ours >= 100)
                 for n, ours in ((1, one), (2, two))])
    wall = {key: SPEED_IMAGES / seconds[key].wall for key in ("usual", "ours1", "ours2")}
    print(f"\nwall clock images/s: pandas loop {wall['usual']:.0f}, ours 1 worker {wall['ours1']:.0f}, 2 workers "
          f"{wall['ours2']:.0f}\n")
    scaling, ceiling = paired_speedup(seconds, "ours1", "ours2"), paired_speedup(seconds, "spin1", "spin2")
    print_table("submit scaling: 1 -> 2 workers, wall clock, median over rounds of the same round's ratio",
                "speed-up: seconds with 1 / seconds with 2",
                [("ours, 2 workers vs 1", None, scaling, None, ">= 1.7", scaling >= 1.7),
                 ("pure-CPU work, 2 processes vs 1", None, ceiling, None, "2.00 = idle", True)],
                columns=("", "speed-up"))
    print(f"ours reached {scaling / ceiling:.0%} of what the free second core allowed in the same rounds\n")
    small, large = memory
    print_table("submit memory: write_submission, 2 workers, in a child process", "peak RSS, MB",
                [(name, small[i], large[i], large[i] / small[i], "<= 1.2", large[i] / small[i] <= 1.2)
                 for i, name in enumerate(["process + pool, summed (polled)", "process itself (VmHWM)",
                                           "largest worker (ru_maxrss)"])],
                columns=tuple(f"{count:,} imgs" for count in MEMORY_IMAGES))


if __name__ == "__main__":
    main()
