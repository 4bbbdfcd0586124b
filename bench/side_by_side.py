"""Shared by the bench scripts: interleaved timing, Carvana-like data, the side-by-side table.

Not a benchmark itself (`make bench` runs only bench_*.py).
"""
from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Callable, NamedTuple

import cv2
import numpy as np

CARVANA = (1280, 1918)  # (H, W) of every Carvana image


class Seconds(NamedTuple):
    wall: float  # median over rounds
    cpu: float  # median; this process and its reaped children (a pool's workers, once the pool is closed)
    walls: tuple[float, ...]  # each round's wall time, in round order


def paired_speedup(seconds: dict[str, Seconds], slow: str, fast: str) -> float:
    """Median over rounds of slow's time / fast's time in the same round.

    Pairs share a round's conditions (another job holding a core, a frequency change), so
    their ratio drifts less than the ratio of the two medians.
    """
    return float(np.median([s / f for s, f in zip(seconds[slow].walls, seconds[fast].walls)]))


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def median_seconds(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, Seconds]:
    """Each callable's median wall and CPU time over `repeats` rounds; every round runs all of them once.

    Interleaving means load from other processes on the machine hits every contender alike.
    """
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), _cpu_seconds()
            run()
            samples[name].append((time.perf_counter() - wall, _cpu_seconds() - cpu))
    return {name: Seconds(*map(float, np.median(values, axis=0)), tuple(wall for wall, _ in values))
            for name, values in samples.items()}


def _spin(loops: int) -> int:
    total = 0
    for i in range(loops):
        total += i * i
    return total


def spin_in_processes(workers: int, tasks: int = 8, loops: int = 1_500_000) -> Callable[[], None]:
    """Fixed pure-CPU work split over `workers` processes, pool start-up included.

    Its 1-to-2-worker speed-up is how much of a second core the machine has free right now
    (about 2 when idle, 1 when another job holds a core): the ceiling for any 2-worker ratio.
    """
    def run() -> None:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pool.map(_spin, [loops] * tasks, chunksize=1)
    return run


def car_mask(index: int, shape: tuple[int, int] = CARVANA) -> np.ndarray:
    """A car-like blob (body ellipse plus cabin) that shifts a little with `index`; (H, W) bool."""
    height, width = shape
    dx = (index % 9 - 4) * width / 100
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, (round(0.5 * width + dx), round(0.6 * height)), (round(0.45 * width), round(0.26 * height)),
                0, 0, 360, 1, -1)
    cv2.ellipse(mask, (round(0.52 * width + dx), round(0.4 * height)), (round(0.25 * width), round(0.2 * height)),
                0, 0, 360, 1, -1)
    return mask.view(bool)


def write_car_jpegs(folder: Path, count: int, with_masks: bool = False) -> list[Path]:
    """`count` 1918x1280 JPEGs (quality 95) of a shaded background, a car and sensor noise.

    At ~300 KB they are larger than Carvana's, so entropy decoding, which no reduced-size
    decode can skip, weighs more than on the real files. With `with_masks`, each image gets
    `<stem>_mask.png` beside it. Returns the image paths.
    """
    height, width = CARVANA
    y, x = np.ogrid[:height, :width + 4 * count]
    shade = (110 + 50 * np.sin(x / 300) + 30 * np.cos(y / 200)).astype(np.float32)[..., None]
    noise = np.random.default_rng(0).normal(0, 1.5, (height, width + 4 * count, 3)).astype(np.float32)
    canvas = np.clip(shade + noise, 0, 255).astype(np.uint8)  # image i is a window of it, shifted by 4i
    paths = []
    for i in range(count):
        image = np.ascontiguousarray(canvas[:, 4 * i:4 * i + width])
        mask = car_mask(i)
        cv2.add(image, (-60 + 7 * (i % 16), -20, 60, 0), dst=image, mask=mask.view(np.uint8))
        path = folder / f"car{i:04d}_{i % 16 + 1:02d}.jpg"
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if with_masks:
            cv2.imwrite(str(folder / f"{path.stem}_mask.png"), mask.view(np.uint8) * 255)
        paths.append(path)
    return paths


def print_table(title: str, unit: str, rows: list[tuple[str, float | None, float, float | None, str, bool]],
                columns: tuple[str, str] = ("usual", "ours")) -> None:
    """Rows of (case, usual, ours, ratio, target, passed); `unit` says what the two columns measure.

    A usual of None (nothing to compare with) prints as "-", and so does its ratio.
    """
    print(f"{title}\n{unit}\n")
    print(f"{'case':<34}{columns[0]:>12}{columns[1]:>12}{'ratio':>8}  {'target':<14}result")
    for case, usual, ours, ratio, target, passed in rows:
        usual_text = "-" if usual is None else f"{usual:.4g}"
        ratio_text = "-" if ratio is None else f"{ratio:.2f}"
        print(f"{case:<34}{usual_text:>12}{ours:>12.4g}{ratio_text:>8}  {target:<14}{'pass' if passed else 'FAIL'}")
    # Other jobs on the machine move every figure; this says how busy it was.
    print(f"(load average {os.getloadavg()[0]:.1f} over the last minute, {os.cpu_count()} cores)")
