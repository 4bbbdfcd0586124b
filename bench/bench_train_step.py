"""Time the pipeline's training loop against a bare loop of the same model on in-memory tensors.

Model, batch size, loss, optimizer and image size are the plan's for the default params
(data/plan/models/unet.json and data/plan/prepare.json: run `dvc repro plan` first). The
usual way is the floor: forward, loss, backward, AdamW step on one random batch already in
memory, nothing else. Ours is `segpipe.training.loop.train_fold` on a
prepared memmap cache (loader, augmentation, uint8-to-float on the device, scheduler,
loss bookkeeping, per-epoch dvclive logging and checkpointing), timed from outside, once
with each augmentation engine (`train.augment.batched`: whole batches on the device, the
default, or albumentations per sample in the loader):
`train_one_epoch` and `evaluate` are wrapped, not changed. Before each epoch the wrapper
runs the bare loop for as many images, so the two alternate every few seconds and each
epoch gives one paired ratio; an epoch's time runs from its start to the next one's,
minus its validation. The loop's own log line ("... N img/s", data + step time) is
paired the same way. The first epoch (warm-up) is left out.
Target: ours >= 0.9x the bare loop. Run as `python bench/bench_train_step.py`; on a GPU, give
the epochs more images and another size with `--images 1024 --size 512 512` (bench/gpu_pass.py does).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from numpy.lib.format import open_memmap
from side_by_side import print_table

from segpipe.config.train import Train
from segpipe.core.runtime import pick_device
from segpipe.network.inputs import autocast
from segpipe.network.model import WeightedLoss, build_model
from segpipe.training import loop
from segpipe.training.loop import FoldPaths, model_spec, train_fold

VAL_IMAGES, EPOCHS = 16, 8
PLAN = Path(__file__).resolve().parents[1] / "data/plan"


def bare_loop(cfg: Train, size: tuple[int, int], steps: int):
    """The usual floor: `steps` optimizer steps of the same model on one batch already on the device."""
    device = pick_device()
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = build_model(model_spec(cfg)).to(device, memory_format=memory_format).train()
    criterion = WeightedLoss(cfg.loss).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x = torch.randn(cfg.batch_size, cfg.in_channels, *size, device=device).contiguous(memory_format=memory_format)
    target = (torch.rand(cfg.batch_size, 1, *size, device=device) > 0.5).float()

    def run() -> None:
        for _ in range(steps):
            with autocast(device, cfg.amp):
                loss = criterion(model(x).float(), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    return run


def write_cache(folder: Path, size: tuple[int, int], channels: int, train_images: int
                ) -> tuple[FoldPaths, pd.DataFrame]:
    """A prepared cache of random images with one blob each, the last VAL_IMAGES rows fold 0."""
    rng = np.random.default_rng(0)
    count = train_images + VAL_IMAGES
    images = open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8, shape=(count, *size, channels))
    masks = open_memmap(folder / "masks.npy", mode="w+", dtype=np.uint8, shape=(count, *size))
    images[:] = rng.integers(0, 256, images.shape, dtype=np.uint8)
    y, x = np.ogrid[:size[0], :size[1]]
    for i in range(count):
        cy, cx, r = rng.uniform(0.3, 0.7) * size[0], rng.uniform(0.3, 0.7) * size[1], size[0] / 6
        masks[i] = (y - cy) ** 2 + (x - cx) ** 2 <= r**2
    images.flush()
    masks.flush()
    folds = pd.DataFrame({"id": [str(i) for i in range(count)], "group": [str(i) for i in range(count)],
                          "fold": [1] * train_images + [0] * VAL_IMAGES})
    paths = FoldPaths(folder / "images.npy", folder / "masks.npy", folder / "model.pt", folder / "oof",
                      folder / "live")
    return paths, folds


def paired_epochs(cfg: Train, folds: pd.DataFrame, paths: FoldPaths, bare, per_epoch: int) -> dict[str, list]:
    """Run train_fold for EPOCHS epochs, the bare loop before each: per-epoch images/s of the bare
    loop, of the epoch timed from outside and of its log line, epochs 2 to EPOCHS-1, paired."""
    real_epoch, real_evaluate = loop.train_one_epoch, loop.evaluate
    times: dict[str, list[float]] = {"bare": [], "starts": [], "evaluate": []}

    def epoch(*args, **kwargs):
        start = time.perf_counter()
        bare()
        times["bare"].append(time.perf_counter() - start)
        times["starts"].append(time.perf_counter())
        return real_epoch(*args, **kwargs)

    def evaluate(*args, **kwargs):
        start = time.perf_counter()
        result = real_evaluate(*args, **kwargs)
        times["evaluate"].append(time.perf_counter() - start)
        return result

    loop.train_one_epoch, loop.evaluate = epoch, evaluate
    try:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            train_fold(cfg.model_copy(update={"epochs": EPOCHS, "patience": 0}), folds, 0, paths, seed=0)
    finally:
        loop.train_one_epoch, loop.evaluate = real_epoch, real_evaluate
    # epoch k runs from its start to epoch k+1's start (the bare loop ran in between), less its validation
    ours = [per_epoch / (times["starts"][k + 1] - times["bare"][k + 1] - times["starts"][k] - times["evaluate"][k])
            for k in range(EPOCHS - 1)]
    logged = [float(rate) for rate in re.findall(r"(\d+) img/s", out.getvalue())]
    bare_rates = [per_epoch / seconds for seconds in times["bare"]]
    return {"bare": bare_rates[1:EPOCHS - 1], "ours": ours[1:], "logged": logged[1:EPOCHS - 1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=320, help="training images per epoch")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="the image size (default: the plan's)")
    args = parser.parse_args()
    if not (PLAN / "models/unet.json").is_file():
        raise SystemExit(f"{PLAN / 'models/unet.json'} not found: run `dvc repro plan` first")
    size = tuple(args.size or json.loads((PLAN / "prepare.json").read_text())["size"])
    planned = Train.model_validate_json((PLAN / "models/unet.json").read_text())
    batch_size = planned.batch_size
    per_epoch = args.images // batch_size * batch_size  # the loader drops the last partial batch
    planned = planned.model_copy(update={"steps": EPOCHS * (per_epoch // batch_size)})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths, folds = write_cache(Path(tmp), size, planned.in_channels, args.images)
        cwd = os.getcwd()
        os.chdir(tmp)  # keep dvclive away from this repo's git and DVC
        try:
            for batched, engine in ((True, "batched"), (False, "per-sample")):
                cfg = planned.model_copy(update={"augment": planned.augment.model_copy(
                    update={"batched": batched})})
                rates = paired_epochs(cfg, folds, paths, bare_loop(cfg, size, per_epoch // cfg.batch_size), per_epoch)
                for name, key in (("epoch (outside)", "ours"), ("log line (data+step)", "logged")):
                    ratio = statistics.median(ours / usual for ours, usual in zip(rates[key], rates["bare"]))
                    rows.append((f"{engine}: {name}", statistics.median(rates["bare"]),
                                 statistics.median(rates[key]), ratio, ">= 0.9", ratio >= 0.9))
        finally:
            os.chdir(cwd)
    cfg = planned
    print_table(f"train step: {cfg.arch} {cfg.encoder_name} at {size[0]}x{size[1]}, batch {cfg.batch_size}, "
                f"{torch.get_num_threads()} torch threads, {pick_device().type}; {per_epoch} images per epoch, "
                f"median over epochs 2-{EPOCHS - 1}; augmentation batched on the device (default: "
                f"{cfg.augment.batched}) or per sample with albumentations",
                "training images/s (usual = bare loop on in-memory tensors; ratio = median of per-epoch ratios)", rows)


if __name__ == "__main__":
    main()
