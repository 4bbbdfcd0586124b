"""Sliding-window inference: its cost against non-overlapping windows, and its memory on a 20,000² image.

1. Cost. One 1280x1918 image (Carvana's native size), the default U-Net, tile 256, hflip TTA.
   The usual way: the image cut into non-overlapping tiles (the last ones flush with the
   edge), each predicted and pasted in place, no blending. Ours: `segpipe.inference.windows` at step
   1/2, 3/4 and 1 with the Gaussian blend. A third figure times the network alone on the
   same windows as ours at step 1/2, so the blending's own share shows apart from the extra
   windows that overlap means.
2. Memory. A 20,000 x 20,000 RGB image (1.2 GB of uint8) predicted in a child process with a
   one-layer network (the network's own activations are per batch and not the point), tile
   512 at step 1/2, TTA on, its map streamed into a deflated .npz (`probmaps.RowBands`), and a
   5,000² one the same way. The child's peak RSS (VmHWM) is shown against its RSS with the
   image in memory, and against the float32 map the usual way would hold (1.6 GB at 20,000²,
   twice with its weight sum): what prediction adds should not grow with the image's area.
Run as `python bench/bench_windows.py` (or with sides: `python bench/bench_windows.py 5000 20000`).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import torch
from side_by_side import CARVANA, median_seconds

from segpipe.inference import windows
from segpipe.inference.maps import Ensemble
from segpipe.network.model import ModelSpec, build_model

TILE, BATCH, REPEATS = (256, 256), 16, 3
SPEC = ModelSpec("Unet", "tu-mobilenetv3_small_050", 5, (64, 32, 16, 16, 8), 3)
CHILD = """
import json, sys, tempfile, time
from pathlib import Path
import numpy as np, torch
from segpipe.inference import windows
from segpipe.inference.maps import Ensemble
from segpipe.inference.probmaps import RowBands, write_maps

def rss(field):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field)) / 1024

side, tile = int(sys.argv[1]), (512, 512)
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 3, padding=1))
ensemble = Ensemble([net], torch.device("cpu"), in_channels=3)
base = rss("VmRSS:")
image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
with_image = rss("VmRSS:")
start = time.perf_counter()
with tempfile.TemporaryDirectory() as folder:
    bands = (rows for _, rows in windows.predict_image(ensemble, image, tile, 0.5, 8, torch.device("cpu")))
    write_maps(Path(folder) / "test.npz", [RowBands((side, side), bands)])
    size = (Path(folder) / "test.npz").stat().st_size
print(json.dumps({"base": base, "with_image": with_image, "peak": rss("VmHWM:"),
                  "seconds": time.perf_counter() - start, "npz_mb": size / 2**20}))
"""


def non_overlapping(ensemble: Ensemble, image: np.ndarray) -> np.ndarray:
    """The usual way: disjoint tiles (the last flush with the edge), each pasted, no blending."""
    height, width = image.shape[:2]
    out = np.zeros((height, width), np.uint8)
    corners = [(y, x) for y in windows.window_starts(height, TILE[0], 1.0)
               for x in windows.window_starts(width, TILE[1], 1.0)]
    for start in range(0, len(corners), BATCH):
        chunk = corners[start:start + BATCH]
        batch = torch.from_numpy(np.stack([image[y:y + TILE[0], x:x + TILE[1]] for y, x in chunk]))
        probs = (ensemble(batch) * 255).round().to(torch.uint8).numpy()
        for (y, x), prob in zip(chunk, probs):
            out[y:y + TILE[0], x:x + TILE[1]] = prob
    return out


def network_only(ensemble: Ensemble, image: np.ndarray, step: float) -> None:
    """The network (and its TTA views) on exactly the windows of `step`, with no stitching."""
    corners = [(y, x) for y in windows.window_starts(image.shape[0], TILE[0], step)
               for x in windows.window_starts(image.shape[1], TILE[1], step)]
    for start in range(0, len(corners), BATCH):
        ensemble(torch.from_numpy(np.stack([image[y:y + TILE[0], x:x + TILE[1]] for y, x in corners[start:start + BATCH]])))


def count(image: np.ndarray, step: float) -> int:
    return len(windows.window_starts(image.shape[0], TILE[0], step)) * len(windows.window_starts(image.shape[1], TILE[1], step))


def cost() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    ensemble = Ensemble([build_model(SPEC)], torch.device("cpu"), in_channels=3)
    image = np.random.default_rng(0).integers(0, 256, (*CARVANA, 3), dtype=np.uint8)
    cpu = torch.device("cpu")
    runs = {"non-overlapping": lambda: non_overlapping(ensemble, image),
            "network only, step 1/2": lambda: network_only(ensemble, image, 0.5)}
    for step in (0.5, 0.75, 1.0):
        runs[f"ours, step {step}"] = lambda s=step: windows.stitch(ensemble, image, TILE, s, BATCH, cpu)
    seconds = median_seconds(runs, REPEATS)
    usual = seconds["non-overlapping"].wall
    print(f"Sliding windows on one {CARVANA[0]}x{CARVANA[1]} image, tile {TILE[0]}, hflip TTA, U-Net "
          f"{SPEC.encoder_name} (median of {REPEATS}, wall s)\n")
    print(f"{'case':<26}{'windows':>8}{'s':>8}{'x non-overlapping':>19}{'x network only':>16}")
    steps = {"non-overlapping": 1.0, "network only, step 1/2": 0.5}
    for name, value in seconds.items():
        step = steps.get(name, float(name.rsplit(" ", 1)[-1]) if name.startswith("ours") else 1.0)
        own = f"{value.wall / seconds['network only, step 1/2'].wall:.2f}" if name == "ours, step 0.5" else ""
        print(f"{name:<26}{count(image, step):>8}{value.wall:>8.2f}{value.wall / usual:>19.2f}{own:>16}")
    print(f"\nwindow ratio at step 1/2: {count(image, 0.5) / count(image, 1.0):.2f}; "
          "the blending's own cost is the last column (target <= 1.3)\n")


def memory(sides: tuple[int, ...]) -> None:
    print("Peak RSS predicting one RGB image of each size: tile 512, step 1/2, TTA, batches of 8 windows, "
          "the map streamed into a deflated .npz (MB)\n")
    print(f"{'side':>8}{'image':>8}{'imports':>9}{'+image':>8}{'peak':>8}{'peak-image':>12}{'float32 map':>13}{'s':>6}")
    for side in sides:
        result = json.loads(subprocess.run([sys.executable, "-c", CHILD, str(side)], check=True,
                                           capture_output=True, text=True).stdout)
        image_mb, float_map_mb = side * side * 3 / 2**20, side * side * 4 / 2**20
        print(f"{side:>8,}{image_mb:>8.0f}{result['base']:>9.0f}{result['with_image']:>8.0f}{result['peak']:>8.0f}"
              f"{result['peak'] - result['with_image']:>12.0f}{float_map_mb:>13.0f}{result['seconds']:>6.0f}")
    print("\npeak-image: what prediction adds to the decoded image (per-batch activations, the open band, "
          "zlib); the usual way would add the float32 map, twice with its weight sum")


if __name__ == "__main__":
    started = time.perf_counter()
    cost()
    memory(tuple(int(v) for v in sys.argv[1:]) or (5_000, 20_000))
    print(f"\n{time.perf_counter() - started:.0f} s in all")
