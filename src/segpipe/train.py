"""Train one fold: U-Net, weighted loss, one-cycle schedule, best-by-val-Dice checkpoint.

The loop times data loading and the step separately and reports images/s, so a slow
loader shows at a glance. On CUDA it runs channels_last under bf16/fp16 autocast with
cudnn.benchmark; on CPU the same code runs in fp32.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from numpy.lib.format import open_memmap
from torch import nn

from segpipe.config import Train
from segpipe.data import SliceDataset, build_augmentation, make_loader, to_model_input
from segpipe.inference import autocast, predict_batches, prepare_for_inference
from segpipe.metrics import image_dice
from segpipe.model import ModelSpec, WeightedLoss, build_model, save_checkpoint
from segpipe.runtime import atomic_path, pick_device, seed_everything


@dataclass(frozen=True)
class FoldPaths:
    """Inputs and outputs of one fold's training."""

    images: Path  # prepared (N,H,W,C) uint8
    masks: Path  # prepared (N,H,W) uint8
    model: Path  # best checkpoint
    oof: Path  # (n_val,H,W) uint8 probabilities, rows in folds.csv order
    live_dir: Path  # dvclive folder


def model_spec(cfg: Train) -> ModelSpec:
    return ModelSpec(cfg.arch, cfg.encoder_name, cfg.encoder_depth, tuple(cfg.decoder_channels), cfg.in_channels)


def build_optimizer(model: nn.Module, cfg: Train, total_steps: int):
    if cfg.optimizer == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                                    weight_decay=cfg.weight_decay)
    if cfg.scheduler == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total_steps)
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return optimizer, scheduler


@torch.inference_mode()
def evaluate(model: nn.Module, loader, criterion: nn.Module, device: torch.device, cfg: Train) -> tuple[float, float]:
    """Mean loss and mean per-image Dice (threshold 0.5, empty-on-empty is 1) over `loader`."""
    model.eval()
    losses, dices = [], []
    for images, masks in loader:
        x = to_model_input(images, device, cfg.channels_last, cfg.in_channels)
        target = masks.to(device, non_blocking=True).unsqueeze(1).float()
        with autocast(device, cfg.amp):
            logits = model(x)
        losses.append(criterion(logits.float(), target).item() * len(images))
        pred, truth = logits[:, 0] > 0, target[:, 0] > 0.5
        dices.append(image_dice((pred & truth).sum((1, 2)).cpu().numpy(), pred.sum((1, 2)).cpu().numpy(),
                                truth.sum((1, 2)).cpu().numpy()))
    return sum(losses) / len(loader.dataset), float(np.concatenate(dices).mean())


def train_fold(cfg: Train, folds: pd.DataFrame, fold: int, paths: FoldPaths, seed: int) -> dict:
    """Train fold `fold` (validating on it), keep the best checkpoint, write its OOF probabilities.

    Returns the fold's metrics: best epoch, its val loss and Dice, and the OOF Dice with TTA.
    """
    from dvclive import Live

    seed_everything(seed + fold)
    device = pick_device()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    train_rows = np.flatnonzero(folds.fold.to_numpy() != fold)
    val_rows = np.flatnonzero(folds.fold.to_numpy() == fold)
    train_set = SliceDataset(paths.images, paths.masks, train_rows, build_augmentation(cfg.augment), seed + fold)
    val_set = SliceDataset(paths.images, paths.masks, val_rows)
    train_loader = make_loader(train_set, cfg.batch_size, shuffle=True, seed=seed + fold,
                               num_workers=cfg.num_workers, drop_last=len(train_rows) > cfg.batch_size)
    val_loader = make_loader(val_set, cfg.batch_size * 2, shuffle=False, seed=seed, num_workers=cfg.num_workers)

    spec = model_spec(cfg)
    model = build_model(spec, cfg.encoder_weights).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if cfg.compile else model
    criterion = WeightedLoss(cfg.loss).to(device)
    optimizer, scheduler = build_optimizer(model, cfg, cfg.epochs * len(train_loader))
    use_fp16 = cfg.amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=use_fp16)

    best = {"val_dice": -math.inf}
    with Live(dir=str(paths.live_dir), save_dvc_exp=False, dvcyaml=None, report=None) as live:
        for epoch in range(cfg.epochs):
            train_set.set_epoch(epoch)
            model.train()
            seen, loss_sum, data_time, step_time = 0, 0.0, 0.0, 0.0
            tick = time.perf_counter()
            for images, masks in train_loader:
                loaded = time.perf_counter()
                x = to_model_input(images, device, cfg.channels_last, cfg.in_channels)
                target = masks.to(device, non_blocking=True).unsqueeze(1).float()
                with autocast(device, cfg.amp):
                    loss = criterion(step_model(x).float(), target)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                loss_sum += loss.item() * len(images)
                seen += len(images)
                done = time.perf_counter()
                data_time, step_time, tick = data_time + loaded - tick, step_time + done - loaded, done
            val_loss, val_dice = evaluate(model, val_loader, criterion, device, cfg)
            lr = optimizer.param_groups[0]["lr"]
            for name, value in (("train/loss", loss_sum / seen), ("val/loss", val_loss), ("val/dice", val_dice), ("lr", lr)):
                live.log_metric(name, value)
            print(f"fold {fold} epoch {epoch + 1}/{cfg.epochs}: train loss {loss_sum / seen:.4f} "
                  f"val loss {val_loss:.4f} val dice {val_dice:.4f} lr {lr:.2e} | data {data_time:.1f}s "
                  f"step {step_time:.1f}s {seen / max(data_time + step_time, 1e-9):.0f} img/s", flush=True)
            if val_dice > best["val_dice"]:
                best = {"epoch": epoch + 1, "val_dice": val_dice, "val_loss": val_loss}
                save_checkpoint(paths.model, model, spec, fold=fold, **best)
            live.next_step()

    checkpoint = torch.load(paths.model, map_location="cpu", weights_only=False)
    model.load_state_dict(checkpoint["model"])
    best["oof_dice"] = write_oof(model, paths, val_rows, device, cfg)
    return best


def write_oof(model: nn.Module, paths: FoldPaths, val_rows: np.ndarray, device: torch.device, cfg: Train) -> float:
    """Write the fold's TTA probabilities for its validation rows; return their Dice at 0.5."""
    model = prepare_for_inference(model, device, cfg.channels_last)
    images = np.load(paths.images, mmap_mode="r")
    masks = np.load(paths.masks, mmap_mode="r")
    dices = []
    with atomic_path(paths.oof) as tmp:
        out = open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(val_rows), *images.shape[1:3]))
        start = 0
        for probs in predict_batches([model], images, cfg.batch_size * 2, device, rows=val_rows, amp=cfg.amp,
                                     channels_last=cfg.channels_last, in_channels=cfg.in_channels):
            out[start:start + len(probs)] = probs
            pred, truth = probs >= 128, masks[val_rows[start:start + len(probs)]] > 0
            dices.append(image_dice((pred & truth).sum((1, 2)), pred.sum((1, 2)), truth.sum((1, 2))))
            start += len(probs)
        out.flush()
        del out
    return float(np.concatenate(dices).mean())
