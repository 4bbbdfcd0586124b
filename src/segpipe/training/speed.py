"""What one training step should cost: the fold's network timed on random inputs at set-up, and a
warning when an epoch trains far slower than that.

An epoch's images/s (data + step time, as its log line shows) well under the bare step's means
something outside the network slows the run: a loader that cannot keep up, another job on the
cores, denormal floats that the bare step's inputs do not produce. The warning says so after the
first slow epoch, not hours later. The timing runs on a copy of the network with the RNG state
restored afterwards, so the fold trains exactly as it would without it.
"""
from __future__ import annotations

import copy
import sys
import time

import torch
from torch import nn

from segpipe.config.train import Train
from segpipe.core.labels import Labels
from segpipe.network.inputs import autocast, normalize, to_device, to_target

TIMED_STEPS = 3  # after one untimed step (the first pays for allocations and cudnn's search)
SLOW = 3.0  # an epoch this many times slower than the bare step is warned about
BUSY = 1.5  # one thread this much faster than all of them: the cores are shared


def bare_step_rate(model: nn.Module, criterion: nn.Module, cfg: Train, device: torch.device,
                   input_shape: tuple[int, int, int], labels: Labels = Labels()) -> float:
    """Images/s of forward, loss, backward and an AdamW step of a copy of `model`, batch `cfg.batch_size`,
    on random uint8 inputs of `input_shape` (H, W, cached channels) already in memory."""
    twin = copy.deepcopy(model).train()
    optimizer = torch.optim.AdamW(twin.parameters(), lr=0.0)
    cuda = [device.index or 0] if device.type == "cuda" else []
    inputs = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=cuda):  # what the network draws (dropout, drop path) is given back too
        images = torch.randint(0, 256, generator=inputs, size=(cfg.batch_size, *input_shape), dtype=torch.uint8)
        masks = (torch.rand(cfg.batch_size, *input_shape[:2], generator=inputs) > 0.5).to(torch.uint8)
        target = to_target(masks, device, labels)
        seconds = 0.0
        for step in range(TIMED_STEPS + 1):
            start = time.perf_counter()
            x = normalize(to_device(images, device), cfg.channels_last, cfg.model_channels, cfg.normalize)
            with autocast(device, cfg.amp):
                loss = criterion(twin(x).float(), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds += (time.perf_counter() - start) if step else 0.0
    return cfg.batch_size * TIMED_STEPS / seconds


def expected_rate(model: nn.Module, criterion: nn.Module, cfg: Train, device: torch.device,
                  input_shape: tuple[int, int, int], labels: Labels = Labels(), fold: int = 0) -> float:
    """The bare step's images/s on this device; on a CPU also with one thread, warning when that is faster.

    One thread beating all of them means the cores are shared with another job: torch's threads then
    wait for the one whose core is taken, up to 10x slower at small sizes (docs/performance.md#busy-cores).
    The fold still trains with torch's threads (their number changes the sums, so the results), and
    its epochs are held to the faster figure.
    """
    rate = bare_step_rate(model, criterion, cfg, device, input_shape, labels)
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        return rate
    torch.set_num_threads(1)
    try:
        alone = bare_step_rate(model, criterion, cfg, device, input_shape, labels)
    finally:
        torch.set_num_threads(threads)
    if alone > BUSY * rate:
        print(f"warning: fold {fold}: the CPU is shared: the bare training step runs {rate:.0f} img/s on {threads} "
              f"threads and {alone:.0f} on one (another job holds the cores): stop it, or run this one with "
              f"OMP_NUM_THREADS=1 (docs/performance.md#busy-cores)", file=sys.stderr, flush=True)
    return max(rate, alone)


def warn_if_slow(fold: int, epoch: int, rate: float, expected: float, data_time: float, step_time: float) -> bool:
    """Print a warning when `rate` (an epoch's images/s) is under `expected` / SLOW; whether it did."""
    if rate * SLOW >= expected:
        return False
    print(f"warning: fold {fold} epoch {epoch + 1}: {rate:.0f} img/s, against {expected:.0f} img/s for the bare "
          f"training step on this device at set-up (data {data_time:.1f}s, step {step_time:.1f}s): another job on "
          f"the cores (docs/performance.md#busy-cores), a loader that cannot keep up (train.num_workers), or "
          f"denormal floats (docs/performance.md#denormal-floats)", file=sys.stderr, flush=True)
    return True
