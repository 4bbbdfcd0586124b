"""The plan: every `auto` param resolved from the fingerprint by a fixed rule; a set value always wins.

docs/plan.md gives each rule with the measurement behind it. The rules, in order:

- training size (resize mode): the native size, each side rounded to a multiple of 32, when it
  fits `prepare.max_size`'s pixels: metrics that score boundaries (IoU thresholds, Hausdorff)
  lose what a shrunk mask cannot hold. Larger images: the smallest candidate size whose
  round-trip Dice (`fingerprint`) at the quantile ROUND_TRIP_QUANTILE reaches ROUND_TRIP_BOUND
  (a resized plan's bound is the caller's: lower on a CPU, `device_rules.CPU_ROUND_TRIP_BOUND`),
  within the budget; tile mode when that size is over the budget and the training images share one size:
  the images at the wanted scale, crops of the largest budget-sized tile.
- batch size: BATCH images up to BATCH_PIXELS pixels each; fewer (a power of two, at least 2)
  for larger inputs, so a batch holds about BATCH * BATCH_PIXELS pixels.
- steps: PASSES passes over a fold's training images (over their tiles in tile mode), at least
  MIN_STEPS optimizer steps.
- peak lr: LR (AdamW) or SGD_LR.
- post-processing grids: 0, a quarter and a half of the 1st percentile of the object areas and
  their 1st, 5th, 10th and 25th percentiles, in pixels at training size.
"""
from __future__ import annotations

import math

from segpipe.config.data import Prepare
from segpipe.config.evaluation import Threshold
from segpipe.config.train import AUTO, Train
from segpipe.plan.sizes import scaled_sides

ROUND_TRIP_QUANTILE, ROUND_TRIP_BOUND = "p25", 0.95
LOWER_SIDE = 64  # a lower `resize_bound` shrinks no side below this: a 5-stage encoder's bottleneck is then 2 px
BATCH, BATCH_PIXELS = 16, 128 * 128
PASSES, MIN_STEPS = 12, 300
LR, SGD_LR = 0.01, 0.01
AREA_QUANTILES = ("p01", "p05", "p10", "p25")


def _native(fingerprint: dict) -> tuple[int, int]:
    return fingerprint["height"]["median"], fingerprint["width"]["median"]


def wanted_side(fingerprint: dict, bound: float = ROUND_TRIP_BOUND) -> int:
    """The smallest candidate short side whose round trip keeps `bound` of the objects (the native one if none does)."""
    for side, quantiles in sorted(fingerprint["round_trip"].items(), key=lambda item: int(item[0])):
        if quantiles[ROUND_TRIP_QUANTILE] >= bound:
            return int(side)
    return min(_native(fingerprint))


def plan_prepare(fingerprint: dict, prepare: Prepare, resize_bound: float = ROUND_TRIP_BOUND) -> dict:
    """mode, size, scale and tile of the cache; set keys are kept as they are. Images over the budget that
    are resized (not tiled) are shrunk to the smallest size that keeps `resize_bound` of the round trip
    (a CPU's is lower: `segpipe.plan.device_rules.CPU_ROUND_TRIP_BOUND`)."""
    height, width = _native(fingerprint)
    budget = prepare.max_size[0] * prepare.max_size[1]
    side = wanted_side(fingerprint)
    sides = scaled_sides(height, width, side)
    mode = prepare.mode
    if mode == AUTO:
        too_big = sides[0] * sides[1] > budget and prepare.size == AUTO
        mode = "tile" if too_big and fingerprint["one_size"] else "resize"
    native = scaled_sides(height, width, min(height, width))
    if prepare.size != AUTO:
        size = list(prepare.size)
    elif native[0] * native[1] <= budget:  # images that fit train at their own resolution, as nnU-Net's do
        size = list(native)
    else:  # within the budget: shrink the wanted size until it fits
        side = min(side, max(LOWER_SIDE, wanted_side(fingerprint, resize_bound)))
        sides = scaled_sides(height, width, side)
        while sides[0] * sides[1] > budget and side > 32:
            side -= 32
            sides = scaled_sides(height, width, side)
        size = list(sides)
    wanted_scale = round(min(1.0, wanted_side(fingerprint) / min(height, width)), 4)
    scale = prepare.scale if prepare.scale != AUTO else wanted_scale
    if prepare.tile != AUTO:
        tile = list(prepare.tile)
    else:  # the largest square of multiples of 32 within the budget and the scaled image
        scaled_short = int(min(height, width) * scale)
        edge = max(32, min(int(math.isqrt(budget)), scaled_short) // 32 * 32)
        tile = [edge, edge]
    return {"mode": mode, "size": size, "scale": scale, "tile": tile}


def input_pixels(prepare_plan: dict) -> int:
    """Pixels of one training input: the cached image (resize mode) or the crop (tile mode)."""
    sides = prepare_plan["tile"] if prepare_plan["mode"] == "tile" else prepare_plan["size"]
    return sides[0] * sides[1]


def crops_per_image(fingerprint: dict, prepare_plan: dict) -> int:
    """Inputs that cover one image once: 1 in resize mode, its tiles in tile mode."""
    if prepare_plan["mode"] != "tile":
        return 1
    height, width = _native(fingerprint)
    tile = prepare_plan["tile"]
    scale = prepare_plan["scale"]
    return math.ceil(height * scale / tile[0]) * math.ceil(width * scale / tile[1])


def plan_train(fingerprint: dict, prepare_plan: dict, cfg: Train, n_splits: int, passes: int = PASSES) -> Train:
    """`cfg` with steps (`passes` over a fold's inputs), batch size and lr resolved."""
    values = {}
    if cfg.batch_size == AUTO:
        scale = BATCH_PIXELS / input_pixels(prepare_plan)
        values["batch_size"] = BATCH if scale >= 1 else max(2, 2 ** int(math.log2(BATCH * scale)))
    batch = values.get("batch_size", cfg.batch_size)
    if cfg.steps == AUTO:
        fold_inputs = fingerprint["images"] * (n_splits - 1) / n_splits * crops_per_image(fingerprint, prepare_plan)
        values["steps"] = max(MIN_STEPS, math.ceil(passes * fold_inputs / batch))
    if cfg.lr == AUTO:
        values["lr"] = LR if cfg.optimizer == "adamw" else SGD_LR
    return cfg.model_copy(update=values)


def area_grid(fingerprint: dict, prepare_plan: dict) -> list[int]:
    """0 and the small quantiles of the object areas, in pixels of the cached images."""
    height, width = _native(fingerprint)
    size = prepare_plan["size"]
    shrink = size[0] * size[1] / (height * width) if prepare_plan["mode"] == "resize" else prepare_plan["scale"] ** 2
    areas = fingerprint["objects"]["area"]
    if not areas:
        return [0]
    smallest = [areas["p01"] * shrink / 4, areas["p01"] * shrink / 2]  # below the smallest objects: specks
    return sorted({0, *(int(round(a)) for a in smallest), *(int(round(areas[q] * shrink)) for q in AREA_QUANTILES)})


def plan_threshold(fingerprint: dict, prepare_plan: dict, threshold: Threshold) -> Threshold:
    """`threshold` with its auto area grids set from the objects' sizes."""
    grid = area_grid(fingerprint, prepare_plan)
    values = {key: tuple(grid) for key in ("gate_areas", "min_components") if getattr(threshold, key) == AUTO}
    classes = {name: {key: (list(grid) if value == AUTO and key in ("gate_areas", "min_components") else value)
                      for key, value in keys.items()} for name, keys in threshold.classes.items()}
    return threshold.model_copy(update={**values, "classes": classes})
