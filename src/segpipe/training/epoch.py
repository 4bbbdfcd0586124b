"""One pass over a loader: a training epoch (timed: loader wait apart from the step) or a validation.

On CUDA both run under bf16/fp16 autocast, channels_last; the inputs are uint8 batches made into
model inputs on the device (`segpipe.network.inputs`), augmented there first when training.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from segpipe.evaluation.metrics import DiceTally
from segpipe.network.contract import InferenceContract
from segpipe.network.inputs import autocast, class_predictions, normalize, to_device, to_model_input, to_target
from segpipe.training.augment import BatchAugment
from segpipe.training.resume import TrainingState


@torch.inference_mode()
def evaluate(model: nn.Module, loader, criterion: nn.Module, device: torch.device, contract: InferenceContract,
             pooled: bool = False) -> tuple[float, list[float]]:
    """Mean loss and each class's Dice (threshold 0.5) over `loader`: the mean per-image Dice
    (empty-on-empty is 1), or with `pooled` one Dice of all pixels together.

    Tile mode validates on tiles, most of them empty: their per-tile mean rewards predicting
    nothing, so there the Dice is pooled over every validation tile (nnU-Net's pseudo Dice).
    """
    model.eval()
    losses, tally = [], DiceTally()
    for images, masks in loader:
        x = to_model_input(images, device, contract.channels_last, contract.in_channels, contract.normalize)
        target = to_target(masks, device, contract.labels)
        with autocast(device, contract.amp):
            logits = model(x)
        losses.append(criterion(logits.float(), target).item() * len(images))
        tally.add(class_predictions(logits, contract.softmax), target > 0.5)
    return sum(losses) / len(loader.dataset), tally.dice(pooled)


@dataclass(frozen=True)
class EpochStats:
    """One pass over the training loader, as this process saw it."""

    loss: float  # mean training loss per image
    seen: int  # images
    data_time: float  # seconds waiting for the loader
    step_time: float  # seconds from a batch leaving the loader to the optimizer step done
    lr: float  # the rate the last step used


def train_one_epoch(model: nn.Module, loader, criterion: nn.Module, state: TrainingState, device: torch.device,
                    contract: InferenceContract, clip_grad: float | None = None,
                    augment: BatchAugment | None = None) -> EpochStats:
    """One pass over `loader`, its inputs made as `contract` says, gradients clipped to norm `clip_grad`.

    Step time covers everything after the batch left the loader: the copy to the device,
    `augment` there, normalisation, forward, backward and the optimizer step.
    """
    model.train()
    seen, loss_sum, data_time, step_time, lr = 0, 0.0, 0.0, 0.0, 0.0
    tick = time.perf_counter()
    for images, masks in loader:
        loaded = time.perf_counter()
        x = to_device(images, device)
        target = to_target(masks, device, contract.labels)
        if augment is not None:
            x, target = augment(x, target)
        x = normalize(x, contract.channels_last, contract.in_channels, contract.normalize)
        with autocast(device, contract.amp):
            loss = criterion(model(x).float(), target)
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(loss).backward()
        if clip_grad:
            state.scaler.unscale_(state.optimizer)  # clip the true gradients, not fp16-scaled ones
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        state.scaler.step(state.optimizer)
        state.scaler.update()
        lr = state.optimizer.param_groups[0]["lr"]  # the rate this step used, before the schedule moves on
        state.scheduler.step()
        if state.ema is not None:  # the schedule counts optimizer steps: the EMA's warm-up follows them
            state.ema.update(state.model, step=state.scheduler.last_epoch)
        loss_sum += loss.item() * len(images)
        seen += len(images)
        done = time.perf_counter()
        data_time, step_time, tick = data_time + loaded - tick, step_time + done - loaded, done
    return EpochStats(loss_sum / seen, seen, data_time, step_time, lr)
