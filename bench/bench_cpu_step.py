"""Absolute CPU training speed by size: segpipe's training epoch against the bare model step with
denormal floats flushed to zero, and the bare step without the flush (what denormals cost here).

Three ways, each size in its own fresh process (flush-to-zero must be set before torch starts its
threads, so one process cannot time both settings fairly):

- usual: the bare step, `torch.set_flush_denormal(True)` first, then forward, loss, backward and
  AdamW on one batch of random tensors already in memory (random {0, 1} targets);
- unflushed: the same bare step without the flush (torch's default);
- ours: `segpipe.training.epoch.train_one_epoch` as the train stage runs it (the runtime set up by
  `pick_device`, the loader on a memmap cache of random images with one blob each, batched
  augmentation on the device), images/s of data + step time, one warm-up epoch left out.

- busy: the usual bare step while another process spins on one core, with torch's default threads
  (one per core) and with one thread: what an oversubscribed CPU costs (OpenMP threads wait for
  the one whose core is taken).

The network is the plan's (data/plan/models/unet.json: run `dvc repro plan` first), batch 16.
Target: ours >= 0.9x usual at every size; usual / unflushed shows the flush's gain on this CPU,
busy 1 thread / busy the cost of sharing the cores with another job.

    python bench/bench_cpu_step.py                 # 32, 64, 128 and 256
    python bench/bench_cpu_step.py --sizes 32 64
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "data/plan/models/unet.json"
STEPS = {32: 40, 64: 30, 128: 15, 256: 6}  # timed steps a size (after as many untimed)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def bare(size: int, steps: int, flush: bool) -> float:
    import torch

    if flush:
        torch.set_flush_denormal(True)  # before any tensor work: torch's threads copy it when they start
    from segpipe.config.train import Train
    from segpipe.network.model import WeightedLoss, build_model, model_spec

    cfg = Train.model_validate_json(PLAN.read_text())
    torch.manual_seed(0)
    model = build_model(model_spec(cfg)).to(memory_format=torch.channels_last).train()
    criterion = WeightedLoss(cfg.loss)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x = torch.randn(16, cfg.model_channels, size, size).contiguous(memory_format=torch.channels_last)
    target = (torch.rand(16, 1, size, size) > 0.5).float()

    def step() -> None:
        loss = criterion(model(x).float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(steps):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return 16 * steps / (time.perf_counter() - start)


def ours(size: int, steps: int) -> float:
    from segpipe.core.runtime import pick_device

    device = pick_device()  # as the train stage does: first, before any tensor work
    import numpy as np
    import torch

    from bench_train_step import write_cache
    from segpipe.config.train import Train
    from segpipe.network.model import WeightedLoss, build_model, model_spec
    from segpipe.training.augment import BatchAugment
    from segpipe.training.fold import build_loaders
    from segpipe.training.epoch import train_one_epoch
    from segpipe.training.loop import build_optimizer, inference_contract
    from segpipe.training.resume import TrainingState

    cfg = Train.model_validate_json(PLAN.read_text()).model_copy(update={"batch_size": 16, "epochs": 2,
                                                                         "steps": 2 * steps})
    with tempfile.TemporaryDirectory() as tmp:
        paths, folds = write_cache(Path(tmp), (size, size), cfg.in_channels)
        rows = np.flatnonzero(folds.fold.to_numpy() != 0)
        train_loader, _ = build_loaders(cfg, paths, rows, np.flatnonzero(folds.fold.to_numpy() == 0), seed=0)
        torch.manual_seed(0)
        model = build_model(model_spec(cfg)).to(device, memory_format=torch.channels_last)
        optimizer, scheduler = build_optimizer(model, cfg, cfg.steps)
        state = TrainingState(model, optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=False),
                              train_loader.generator)
        augment = BatchAugment(cfg.augment, 0) if cfg.augment.batched else None
        criterion = WeightedLoss(cfg.loss).to(device)
        rates = []
        for epoch in range(2):
            train_loader.dataset.set_epoch(epoch)
            stats = train_one_epoch(model, train_loader, criterion, state, device, inference_contract(cfg), cfg.clip_grad,
                                    augment)
            rates.append(stats.seen / (stats.data_time + stats.step_time))
    return rates[-1]


def one(way: str, size: int) -> float:
    steps = STEPS.get(size, 6)
    return ours(size, steps) if way == "ours" else bare(size, steps, flush=way == "usual")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(STEPS))
    parser.add_argument("--one", nargs=2, metavar=("WAY", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]))))
        return
    if not PLAN.exists():
        raise SystemExit(f"{PLAN} not found: run `dvc repro plan` first")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")])}
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; network: {json.loads(PLAN.read_text())['encoder_name']}, "
          "batch 16; training images/s, each way in a fresh process")
    print("| size | unflushed (torch default) | usual: bare step, flushed | ours: train_one_epoch | "
          "ours / usual (target >= 0.9) | flush gain (usual / unflushed) | busy: default threads | "
          "busy: 1 thread |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        rate = {way: measure(way, size, env) for way in ("unflushed", "usual", "ours")}
        with another_job():
            rate["busy"] = measure("usual", size, env)
            rate["busy 1"] = measure("usual", size, {**env, "OMP_NUM_THREADS": "1"})
        print(f"| {size}x{size} | {rate['unflushed']:.0f} | {rate['usual']:.0f} | {rate['ours']:.0f} | "
              f"{rate['ours'] / rate['usual']:.2f} | {rate['usual'] / rate['unflushed']:.2f} | {rate['busy']:.0f} | "
              f"{rate['busy 1']:.0f} |", flush=True)


def measure(way: str, size: int, env: dict) -> float:
    """Images/s of `way` at `size`, in a fresh process."""
    done = subprocess.run([sys.executable, __file__, "--one", way, str(size)], env=env, check=True,
                          capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def another_job():
    """A process spinning on one core for the block: the cores are shared, as with any other job."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


if __name__ == "__main__":
    main()
