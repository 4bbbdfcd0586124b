"""Time segpipe.rle against the usual numpy RLE codec on Carvana-sized masks.

Run as `python bench/bench_rle.py`; it imports segpipe from ../src. Each case is checked
for identical output first, then timed as the median of repeated runs. "memory pass" is
one `np.count_nonzero` over the mask's bytes: the floor for anything that reads the mask;
a decoder must also write a whole new mask, so `np.zeros` of one bounds its ratio ("ceiling").
The first-call times come from fresh interpreters; the very first one also pays for
numba's own start-up.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from segpipe import rle  # noqa: E402

SHAPE = (1280, 1918)


def numpy_encode(mask: np.ndarray, order: str) -> str:
    """The encoder found in most Kaggle kernels."""
    pixels = (mask.T if order == "F" else mask).flatten()
    pixels = np.concatenate([[0], pixels, [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


def numpy_decode(text: str, shape: tuple[int, int], order: str) -> np.ndarray:
    """The decoder found in most Kaggle kernels."""
    s = text.split()
    starts, lengths = (np.asarray(x, dtype=int) for x in (s[0::2], s[1::2]))
    starts -= 1
    ends = starts + lengths
    img = np.zeros(shape[0] * shape[1], dtype=bool)
    for lo, hi in zip(starts, ends):
        img[lo:hi] = 1
    return img.reshape(shape) if order == "C" else img.reshape(shape[::-1]).T


def car_mask() -> np.ndarray:
    """A smooth blob like a Carvana car: a wide body ellipse with a cabin on top."""
    y, x = np.ogrid[: SHAPE[0], : SHAPE[1]]
    body = ((x - 959) / 860) ** 2 + ((y - 760) / 330) ** 2 <= 1
    cabin = ((x - 1000) / 480) ** 2 + ((y - 520) / 260) ** 2 <= 1
    return body | cabin


def noisy_mask() -> np.ndarray:
    return np.random.default_rng(0).random(SHAPE) < 0.5


def median_ms(fn: Callable[[], object]) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return 1e3 * float(np.median(timer.repeat(repeat=7, number=number))) / number


def first_call_ms(cache_dir: str) -> str:
    """First encode and decode in a fresh interpreter: compile, or load from `cache_dir`."""
    code = (
        "import time, numpy as np\n"
        "from segpipe import rle\n"
        "m = np.zeros((4, 4), bool); m[1, 2] = True\n"
        "t = time.perf_counter(); s = rle.encode(m); e = time.perf_counter()\n"
        "rle.encode(m, 'F'); f = time.perf_counter()\n"
        "rle.decode(s, (4, 4)); d = time.perf_counter()\n"
        "rle.decode(s, (4, 4), 'F'); g = time.perf_counter()\n"
        "print(f'encode C {1e3*(e-t):.0f} ms, F {1e3*(f-e):.0f} ms; "
        "decode C {1e3*(d-f):.0f} ms, F {1e3*(g-d):.0f} ms')\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=str(Path(rle.__file__).parents[1]))
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return run.stdout.strip()


def main() -> None:
    masks = {"smooth": car_mask(), "noisy": noisy_mask()}
    # Content does not change the cost of count_nonzero, so one floor serves every case.
    floor = median_ms(lambda: np.count_nonzero(masks["smooth"].view(np.uint8)))
    # A decoder returns a new mask, so it writes every byte of one: no decoder beats this.
    write_floor = median_ms(lambda: np.zeros(SHAPE, np.bool_))
    rows = []
    for name, order in [("smooth", "C"), ("smooth", "F"), ("noisy", "C"), ("noisy", "F")]:
        mask = masks[name]
        text = numpy_encode(mask, order)
        assert rle.encode(mask, order) == text, f"encode differs: {name} {order}"
        assert np.array_equal(rle.decode(text, SHAPE, order), numpy_decode(text, SHAPE, order))
        for op, usual, ours in [
            ("encode", lambda: numpy_encode(mask, order), lambda: rle.encode(mask, order)),
            ("decode", lambda: numpy_decode(text, SHAPE, order), lambda: rle.decode(text, SHAPE, order)),
        ]:
            usual_ms, ours_ms = median_ms(usual), median_ms(ours)
            ceiling = usual_ms / write_floor if op == "decode" else None
            rows.append((f"{op} {name} {order}", usual_ms, ours_ms, usual_ms / ours_ms, ours_ms / floor, ceiling))
    print(f"{SHAPE[0]}x{SHAPE[1]} masks; memory pass (count_nonzero) = {floor:.3f} ms; writing a new mask "
          f"(np.zeros) = {write_floor:.3f} ms; outputs identical\n")
    print(f"{'case':<18}{'usual ms':>10}{'ours ms':>10}{'usual/ours':>12}{'ours/memory':>13}{'ceiling':>9}")
    for case, usual_ms, ours_ms, ratio, vs_floor, ceiling in rows:
        print(f"{case:<18}{usual_ms:>10.3f}{ours_ms:>10.3f}{ratio:>12.1f}{vs_floor:>13.1f}"
              f"{'-' if ceiling is None else f'{ceiling:.1f}':>9}")
    print("ceiling: usual / writing a new mask, the most usual/ours any decoder that returns a mask can reach")
    with tempfile.TemporaryDirectory() as cache_dir:
        print(f"\nfirst call, empty cache (compile): {first_call_ms(cache_dir)}")
        print(f"first call, warm cache (load):     {first_call_ms(cache_dir)}")


if __name__ == "__main__":
    main()
