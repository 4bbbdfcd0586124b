"""Predict's streaming decode against a test-image cache, and its memory against the test set's size.

1. Decode rate. 120 Carvana-sized JPEGs (1918x1280, `side_by_side.write_car_jpegs`) to 256².
   Ours: `ImagesToPredict` in a DataLoader with 2 workers, as predict reads them (each image
   decoded once, reduced JPEG decode, uint8 to the model). The usual way had a cache:
   prepare decoded the test images into a .npy (at prepare's rate, `prepare.cache_split`
   with 2 workers, timed here on the same files), and predict read it back (a memmap
   read, timed too). Streaming pays one decode; the cache paid the same decode plus a
   write and a read. The network is left out: it is the same both ways.
2. Memory. `predict_test` (the real one: workers, ensemble, compressed maps) on 1,000 and on
   10,000 small PNG test images with a one-layer network, in a child process: its peak RSS
   (VmHWM) and its workers' largest should not grow with the test set.
3. Test probabilities on disk. 20 native-size (1918x1280) probability maps of the kind a
   model writes (a blurred car mask, plus noise of sd 0 or 8 grey levels) stored as predict
   stores them (deflated uint8, `probmaps`), and what that implies for Carvana's 100,064
   test images.
Run as `python bench/bench_predict.py`.
"""
from __future__ import annotations

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
import torch
from side_by_side import CARVANA, car_mask, median_seconds, write_car_jpegs

from segpipe.cache.prepare import cache_split
from segpipe.datasets import readers
from segpipe.datasets.base import Competition
from segpipe.inference.predict import ImagesToPredict
from segpipe.inference.probmaps import write_maps

IMAGES, SIZE, REPEATS, COUNTS = 120, (256, 256), 3, (1_000, 10_000)
CARVANA_TEST = 100_064
CHILD = """
import json, resource, sys
from pathlib import Path
import torch
from segpipe.datasets import readers
from segpipe.inference.predict import FoldModels, ImagesToPredict, predict_test
from segpipe.network.contract import InferenceContract
folder = Path(sys.argv[1])
paths = sorted(folder.glob("*.png"))
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 3, padding=1))
images = ImagesToPredict(paths, readers.read_rgb, (64, 64), 3)
contract = InferenceContract(3, 0, 0.5, amp=True, channels_last=True)
predict_test(FoldModels([net], contract), images, folder / "test.npz", batch_size=64, workers=2)
own = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps([own / 1024, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))
"""


def stream(paths: list[Path]) -> None:
    loader = torch.utils.data.DataLoader(ImagesToPredict(paths, readers.read_rgb, SIZE, 3), batch_size=16,
                                         num_workers=2)
    for _ in loader:
        pass


def cache(paths: list[Path], out: Path) -> None:
    frame = pd.DataFrame({"id": [p.stem for p in paths], "image": paths})
    competition = Competition("bench", frame, frame, None, readers.read_rgb, readers.read_binary_mask)
    cache_split(frame, competition, SIZE, out, None, workers=2, desc="cache")


def read_cache(path: Path) -> None:
    images = np.load(path, mmap_mode="r")
    for start in range(0, len(images), 16):
        torch.from_numpy(np.ascontiguousarray(images[start:start + 16]))


def decode_rates(folder: Path) -> None:
    paths = write_car_jpegs(folder, IMAGES)
    cached = folder / "test_images.npy"
    cache(paths, cached)
    with open(os.devnull, "w") as devnull:
        stderr, sys.stderr = sys.stderr, devnull  # progress bars
        try:
            seconds = median_seconds({"stream": lambda: stream(paths), "cache": lambda: cache(paths, cached),
                                      "read": lambda: read_cache(cached)}, REPEATS)
        finally:
            sys.stderr = stderr
    rate = {name: IMAGES / value.wall for name, value in seconds.items()}
    both = IMAGES / (seconds["cache"].wall + seconds["read"].wall)
    print(f"Test images 1918x1280 JPEG -> {SIZE[0]}², 2 workers, median of {REPEATS} interleaved rounds "
          "(images/s, wall)\n")
    print(f"predict, streaming decode (ours)          {rate['stream']:8.1f}")
    print(f"prepare writing a test-image cache        {rate['cache']:8.1f}")
    print(f"predict reading that cache (memmap)       {rate['read']:8.1f}")
    print(f"cache path, write + read                  {both:8.1f}")
    print(f"ours / cache path: {rate['stream'] / both:.2f} (>= 1: the pipeline does not regress); "
          f"ours / prepare's rate: {rate['stream'] / rate['cache']:.2f}\n")


def peak_rss(folder: Path) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder)], check=True, capture_output=True, text=True)
    return tuple(json.loads(out.stdout))


def memory(root: Path) -> None:
    rng = np.random.default_rng(0)
    print("predict_test on small PNG test images (80x96 -> 64², 2 workers, one-layer network), peak RSS (MB)\n")
    print(f"{'images':>8}{'process':>10}{'largest worker':>16}{'s':>6}")
    rows = []
    for count in COUNTS:
        folder = root / str(count)
        folder.mkdir()
        for i in range(count):
            cv2.imwrite(str(folder / f"t{i:05d}.png"), rng.integers(0, 256, (80, 96, 3), dtype=np.uint8))
        start = time.perf_counter()
        own, worker = peak_rss(folder)
        rows.append((own, worker))
        print(f"{count:>8,}{own:>10.0f}{worker:>16.0f}{time.perf_counter() - start:>6.0f}")
    print(f"\n10,000 / 1,000: process {rows[1][0] / rows[0][0]:.2f}, workers {rows[1][1] / rows[0][1]:.2f} "
          "(target <= 1.2: flat)")


def storage(folder: Path, maps: int = 20) -> None:
    rng = np.random.default_rng(0)
    print(f"Native-size test probabilities on disk ({maps} maps of {CARVANA[0]}x{CARVANA[1]}, deflate level 1)\n")
    raw = CARVANA[0] * CARVANA[1]
    for noise in (0, 8):
        probs = [np.clip(cv2.GaussianBlur(car_mask(i).astype(np.float32) * 255, (0, 0), 3)
                         + rng.normal(0, noise, CARVANA), 0, 255).astype(np.uint8) for i in range(maps)]
        start = time.perf_counter()
        write_maps(folder / f"maps{noise}.npz", probs)
        seconds = (time.perf_counter() - start) / maps
        each = (folder / f"maps{noise}.npz").stat().st_size / maps
        print(f"noise sd {noise}: {each / 1024:.0f} KB a map ({raw / each:.0f}x smaller than raw uint8, "
              f"{seconds * 1000:.0f} ms to deflate); Carvana's {CARVANA_TEST:,} test maps: "
              f"{each * CARVANA_TEST / 1e9:.1f} GB (raw {raw * CARVANA_TEST / 1e9:.0f} GB)")
    print()


if __name__ == "__main__":
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "jpegs").mkdir()
        decode_rates(Path(tmp) / "jpegs")
        storage(Path(tmp))
        memory(Path(tmp))
    print(f"\n{time.perf_counter() - started:.0f} s in all")
