"""The plan's rules that depend on the device (`segpipe.plan.device`): what a CPU and a CUDA GPU train.

On a CPU every `auto` resolves to the small recipe sized for 2 cores: the budget CPU_MAX_SIZE, the
tiny CPU_ENCODER and its narrow decoder, no pretrained weights, no loader workers, and the batch and
steps of `segpipe.plan.rules`, with the time a shrunk input saves spent on steps (`cpu_passes`). On CUDA the plan sizes the input and the batch to a memory target, as
nnU-Net sizes its patch and batch to a GPU's memory:

- budget (`prepare.max_size`): the native size, each side rounded to a multiple of 32, shrunk (the
  aspect kept) until MIN_BATCH inputs fit the memory target;
- size: the largest within the budget, up to the native size, the aspect kept (a GPU is bound by
  memory, not by time as 2 cores are); tile mode, by `rules.plan_prepare`, only when the objects
  need more pixels than the budget holds;
- network: GPU_ENCODER with smp's decoder widths, and ImageNet weights when a file of them is at hand
  (`segpipe.network.pretrained`: the plan never downloads);
- batch: the largest power of two of inputs that fits the memory target, at most MAX_BATCH;
- steps: GPU_PASSES passes over a fold's training inputs, at least `rules.MIN_STEPS`;
- loader workers: a process per core but the training process's own, at most MAX_WORKERS.

The memory target is MEMORY_SHARE of one device's memory less FIXED_GIB; an input pixel is taken to
cost TRAIN_BYTES_PER_PIXEL under mixed precision, twice that in fp32.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from segpipe.config.data import Prepare
from segpipe.config.train import AUTO, Train
from segpipe.plan.device import Device
from segpipe.plan.rules import PASSES, ROUND_TRIP_BOUND, input_pixels, plan_train, wanted_side
from segpipe.plan.sizes import scaled_sides

CPU_MAX_SIZE = (128, 128)  # the CPU budget: the default run stays near 5 minutes on 2 cores (docs/performance.md)
CPU_ENCODER = "tu-mobilenetv3_small_050"  # 0.27 M parameters: the same 5 minutes (docs/encoders.md)
CPU_DECODER = (64, 32, 16, 16, 8)  # narrow widths for that tiny encoder; the first encoder_depth are used
CPU_WORKERS = 0  # batched augmentation makes loading a memmap read: workers would only take the 2 cores
# Images over the budget are resized on a CPU to the smallest size that keeps this much of the round trip (rules:
# 0.95): on real LGG fold 0, 64x64 (0.908) with the time it saves spent on passes beat 128x128 (0.953) at 12 passes
# in three comparisons (docs/plan.md#results). Tiles keep the rules' bound.
CPU_ROUND_TRIP_BOUND = 0.90

GPU_ENCODER = "resnet34"  # the usual first choice of these competitions' public U-Nets (docs/encoders.md)
GPU_DECODER = (256, 128, 64, 32, 16)  # smp's default widths, sized for a resnet-class encoder
PRETRAINED = "imagenet"  # the named weights an auto `encoder_weights` takes on a GPU, when a file is at hand
# Bytes of GPU memory per input pixel to train a resnet34 U-Net (smp's decoder) under bf16/fp16 autocast:
# autograd saves 755 for the backward pass (counted on a CPU: python bench/activation_memory.py); x1.6 for
# the gradients of the backward pass, cudnn's workspace and the allocator's slack. An estimate, not yet
# measured on a GPU: if a planned batch does not fit, halve train.batch_size.
TRAIN_BYTES_PER_PIXEL = 1200
FP32_FACTOR = 2  # without autocast every saved activation takes 4 bytes, not 2 (the same count: 1478 a pixel)
MEMORY_SHARE = 0.8  # of a device's memory for training: the CUDA context and cudnn's benchmark need the rest
FIXED_GIB = 1.0  # weights, gradients and AdamW state of a 22 M-parameter U-Net, with room to spare
MIN_BATCH = 4  # BatchNorm, in resnet34 and smp's decoders, needs a few images for its batch statistics
MAX_BATCH = 32  # the largest batch of the hand-set GPU recipes: at a fixed lr, more only means fewer steps
GPU_PASSES = 48  # the LGG recipe's 48 passes beat 12 and 24 (docs/plan.md#results); a GPU affords them
MAX_WORKERS = 8  # loading is a memmap read (batched augmentation): more processes would only wait
# Training images/s of the CPU network at batch 16 on 2 cores, by input pixels (`python bench/bench_cpu_step.py`,
# segpipe's epoch: docs/performance.md#denormal-floats): what a pass costs at each size, for `cpu_passes`.
CPU_IMAGES_PER_S = ((32 * 32, 266), (64 * 64, 155), (128 * 128, 83), (256 * 256, 16))


def step_pixels(device: Device, amp: bool) -> int:
    """Input pixels one optimizer step of one device can hold: its memory target over the bytes a pixel costs."""
    usable = (device.memory_gib * MEMORY_SHARE - FIXED_GIB) * 2**30
    return max(0, int(usable / (TRAIN_BYTES_PER_PIXEL * (1 if amp else FP32_FACTOR))))


def gpu_max_size(height: int, width: int, limit: int) -> tuple[int, int]:
    """The largest size of at most `limit` pixels, up to the native (height, width), with its aspect: its sides
    multiples of 32, rounded as `sizes.scaled_sides` rounds every planned size."""
    for short in range(min(height, width), 32, -1):
        sides = scaled_sides(height, width, short)
        if sides[0] * sides[1] <= limit:
            return sides
    return scaled_sides(height, width, 32)


def plan_cache(fingerprint: dict, prepare: Prepare, device: Device, amp: bool) -> Prepare:
    """`prepare` with an auto `max_size` resolved for `device` (`amp`: training under autocast) and, on CUDA, an
    auto size: the native size within that budget, unless the objects need more pixels than it holds and the
    images share one size (then `rules.plan_prepare` tiles them)."""
    height, width = fingerprint["height"]["median"], fingerprint["width"]["median"]
    if prepare.max_size == AUTO:
        budget = gpu_max_size(height, width, step_pixels(device, amp) // MIN_BATCH) if device.cuda else CPU_MAX_SIZE
        prepare = prepare.model_copy(update={"max_size": budget})
    if not device.cuda or prepare.size != AUTO or prepare.mode == "tile":
        return prepare
    budget = prepare.max_size[0] * prepare.max_size[1]
    wanted = scaled_sides(height, width, wanted_side(fingerprint))
    if prepare.mode == AUTO and fingerprint["one_size"] and wanted[0] * wanted[1] > budget:
        return prepare
    return prepare.model_copy(update={"size": gpu_max_size(height, width, budget)})


def gpu_batch(pixels: int, device: Device, cfg: Train) -> int:
    """The largest power of two of `pixels`-pixel inputs that fits the memory of `cfg.devices` devices, at
    most MAX_BATCH, at least 1."""
    fits = step_pixels(device, cfg.amp) * cfg.devices // pixels
    return max(1, min(MAX_BATCH, 2 ** int(math.log2(max(1, fits)))))


def gpu_workers(device: Device, processes: int) -> int:
    """Loader workers of each of `processes` training processes: its share of the cores, less its own."""
    return max(0, min(MAX_WORKERS, device.cpu_cores // processes - 1))


def plan_network(cfg: Train, device: Device, at_hand: Callable[[str], bool]) -> dict:
    """The auto network and loader keys of `cfg` for `device`: encoder, decoder widths, weights, input
    normalisation, workers.

    `at_hand(encoder_name)` says whether a file of its PRETRAINED weights is on this machine.
    """
    cuda = device.cuda
    encoder = cfg.encoder_name if cfg.encoder_name != AUTO else GPU_ENCODER if cuda else CPU_ENCODER
    values = {}
    if cfg.encoder_name == AUTO:
        values["encoder_name"] = encoder
    if cfg.decoder_channels == AUTO:
        values["decoder_channels"] = (GPU_DECODER if cuda else CPU_DECODER)[:cfg.encoder_depth]
    if cfg.encoder_weights == AUTO:
        values["encoder_weights"] = PRETRAINED if cuda and at_hand(encoder) else None
    if cfg.normalize == AUTO:  # pretrained weights expect their statistics; random ones, nnU-Net's z-score
        values["normalize"] = "imagenet" if values.get("encoder_weights", cfg.encoder_weights) else "image"
    if cfg.num_workers == AUTO:
        values["num_workers"] = gpu_workers(device, cfg.devices) if cuda else CPU_WORKERS
    return values


def plan_model(fingerprint: dict, prepare_plan: dict, cfg: Train, n_splits: int, device: Device,
               at_hand: Callable[[str], bool] = lambda encoder: False) -> Train:
    """`cfg` with every auto key resolved for `device`; on a CPU, exactly `rules.plan_train`'s plan."""
    cfg = cfg.model_copy(update=plan_network(cfg, device, at_hand))
    if not device.cuda:
        return plan_train(fingerprint, prepare_plan, cfg, n_splits, passes=cpu_passes(fingerprint, prepare_plan))
    if cfg.batch_size == AUTO:
        cfg = cfg.model_copy(update={"batch_size": gpu_batch(input_pixels(prepare_plan), device, cfg)})
    return plan_train(fingerprint, prepare_plan, cfg, n_splits, passes=GPU_PASSES)


def cpu_speed(pixels: int) -> float:
    """Training images/s at `pixels` an input, interpolated in log-log between CPU_IMAGES_PER_S's sizes."""
    sizes, speeds = zip(*CPU_IMAGES_PER_S)
    return math.exp(float(np.interp(math.log(pixels), np.log(sizes), np.log(speeds))))


def cpu_passes(fingerprint: dict, prepare_plan: dict) -> int:
    """The passes of a CPU plan: PASSES, as many as take the same time at the CPU budget's pixels when the
    plan trains images shrunk below it (the time a smaller input saves goes to steps), at most GPU_PASSES.
    Images small by nature, tiles and inputs at the budget keep PASSES."""
    height, width = fingerprint["height"]["median"], fingerprint["width"]["median"]
    native = math.prod(scaled_sides(height, width, min(height, width)))  # the native size as the plan rounds it
    pixels, budget = input_pixels(prepare_plan), CPU_MAX_SIZE[0] * CPU_MAX_SIZE[1]
    if prepare_plan["mode"] != "resize" or pixels >= min(native, budget):
        return PASSES
    return min(GPU_PASSES, math.floor(PASSES * cpu_speed(pixels) / cpu_speed(budget)))


def resize_bound(device: Device) -> float:
    """The round-trip bound of a resized plan on `device` (`rules.plan_prepare`'s `resize_bound`)."""
    return ROUND_TRIP_BOUND if device.cuda else CPU_ROUND_TRIP_BOUND
