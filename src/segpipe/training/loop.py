"""Train one fold: U-Net, weighted loss, one-cycle schedule, best-by-val-Dice checkpoint.

With `train.ema`, an exponential moving average of the weights (timm's ModelEmaV3) is what
is validated, checkpointed and used for the OOF predictions (and so for the test set).

The loop times data loading and the step separately and reports images/s, so a slow
loader shows at a glance. On CUDA it runs channels_last under bf16/fp16 autocast with
cudnn.benchmark; on CPU the same code runs in fp32. With a resume path, every epoch ends
with an atomic checkpoint (`segpipe.training.resume`) that an interrupted run continues from.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import torch
from torch import nn

from segpipe.cache import stacks
from segpipe.config.train import Train
from segpipe.core.errors import InputError
from segpipe.core.labels import Labels
from segpipe.core.runtime import seed_everything
from segpipe.evaluation.baselines import MARGIN
from segpipe.network.contract import VIEWS, InferenceContract
from segpipe.network.model import ModelSpec, WeightedLoss, build_model, model_spec, save_checkpoint
from segpipe.training.augment import BatchAugment
from segpipe.training.distributed import Distributed
from segpipe.training.epoch import evaluate, train_one_epoch
from segpipe.training.fold import FoldPaths, build_loaders, write_oof
from segpipe.training.live import open_live
from segpipe.training.loaders import class_mask_areas
from segpipe.training.resume import (
    TrainingState,
    mark_finished,
    resume,
    run_fingerprint,
    save_resume,
    trim_live_history,
)
from segpipe.training.speed import expected_rate, warn_if_slow


def inference_contract(cfg: Train, labels: Labels = Labels()) -> InferenceContract:
    """How the fold's network is run for its OOF maps, and so for the test maps (saved in its checkpoint)."""
    return InferenceContract(cfg.model_channels, cfg.context, cfg.window_step, cfg.amp, cfg.channels_last, VIEWS,
                             labels, cfg.normalize)


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


def train_fold(cfg: Train, folds: pd.DataFrame, fold: int, paths: FoldPaths, seed: int,
               dist: Distributed = Distributed()) -> dict:
    """Train fold `fold` (validating on it), keep the best checkpoint, write its OOF probabilities.

    Resumes from `paths.last` when it holds an unfinished run of the same inputs. Stops early
    after `cfg.patience` epochs without a val Dice gain (0 = never). With `dist` from torchrun,
    each process trains on its shard with DDP and only rank 0 writes. Returns the fold's
    metrics (on rank 0): best epoch, its val loss and Dice, the OOF Dice with TTA, epochs and steps
    run, and whether the val Dice ever beat predicting every image empty (`learned`; warned if not).
    """
    with dist.group():
        return _train_fold(cfg, folds, fold, paths, seed, dist)


@dataclass
class _FoldRun:
    """Everything one fold's epochs use, built once by `_set_up`."""

    device: torch.device
    spec: ModelSpec
    state: TrainingState
    step_model: nn.Module  # what the optimizer steps through: compiled and/or DDP-wrapped
    train_loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader
    augment: BatchAugment | None
    criterion: nn.Module
    val_rows: np.ndarray
    neighbours: np.ndarray | None  # 2.5D stacks (segpipe.cache.stacks), None for 2D
    tiled: bool  # tile mode: validated on tiles, with a pooled Dice
    contract: InferenceContract  # how the network is run: its input, precision and labels
    key: str  # run_fingerprint: a resume state is used only for these inputs
    expected_rate: float  # images/s of the bare step at set-up (segpipe.training.speed); 0 = not timed


def _set_up(cfg: Train, folds: pd.DataFrame, fold: int, paths: FoldPaths, seed: int, dist: Distributed) -> _FoldRun:
    if cfg.auto_keys:
        raise InputError(f"train: {', '.join(cfg.auto_keys)} still 'auto': the plan stage resolves them "
                         "(train from data/plan/models/<model>.json)")
    seed_everything(seed + fold)
    device = dist.device()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    labels = paths.layout.labels if paths.layout else Labels()
    spec = model_spec(cfg, classes=labels.outputs)
    model = build_model(spec, cfg.encoder_weights, paths.weights).to(device)  # first: bad weights stop it early
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    shapes = [np.load(path, mmap_mode="r").shape for path in (paths.images, paths.masks)]
    if shapes[0][-1] not in (1, cfg.in_channels):
        raise InputError(f"{paths.images}: the cached images have {shapes[0][-1]} channels but train.in_channels "
                         f"is {cfg.in_channels}")
    neighbours = stacks.neighbour_rows(folds, cfg.context, where=str(paths.images))
    train_rows = np.flatnonzero(folds.fold.to_numpy() != fold)
    val_rows = np.flatnonzero(folds.fold.to_numpy() == fold)
    train_loader, val_loader = build_loaders(cfg, paths, train_rows, val_rows, seed + fold, dist, neighbours)
    optimizer, scheduler = build_optimizer(model, cfg, cfg.epochs * cfg.steps_per_epoch)
    use_fp16 = cfg.amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
    criterion = WeightedLoss(cfg.loss, labels.kind, labels.channels).to(device)
    sides = paths.layout.tile if paths.tiled else shapes[0][1:3]
    expected = expected_rate(model, criterion, cfg, device, (*sides, shapes[0][-1] * (2 * cfg.context + 1)),
                             labels, fold) if dist.main else 0.0
    state = TrainingState(model, optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=use_fp16),
                          train_loader.generator, ema=_ema(model, cfg))
    return _FoldRun(
        device, spec, state,
        step_model=dist.wrap(torch.compile(model) if cfg.compile else model, find_unused=cfg.encoder_depth < 5),
        train_loader=train_loader, val_loader=val_loader,
        augment=BatchAugment(cfg.augment, seed + fold) if cfg.augment.batched else None,
        criterion=criterion, val_rows=val_rows,
        neighbours=neighbours, tiled=paths.tiled, contract=inference_contract(cfg, labels),
        key=run_fingerprint(cfg, fold, seed, folds, shapes + ([paths.layout.tile] if paths.tiled else [])),
        expected_rate=expected)


def _train_fold(cfg: Train, folds: pd.DataFrame, fold: int, paths: FoldPaths, seed: int, dist: Distributed) -> dict:
    run = _set_up(cfg, folds, fold, paths, seed, dist)
    evaluated = run.state.evaluated
    contract = run.contract
    save_best = partial(save_checkpoint, paths.model, spec=run.spec, contract=contract.to_dict(), fold=fold)
    resumed = resume(paths.last, run.key, run.state) if paths.last else None
    done, best, best_model = resumed or (0, {"epoch": 0, "val_dice": -math.inf}, None)
    if resumed and dist.main:  # DVC removed the best checkpoint before rerunning the stage
        save_best(best_model, **best)
    with open_live(paths.live_dir, resumed=bool(resumed), main=dist.main) as live:
        if resumed and dist.main:
            trim_live_history(paths.live_dir, done)
            live.step = done
        for epoch in range(done, cfg.epochs):
            if cfg.patience and epoch - best["epoch"] >= cfg.patience:
                print(f"fold {fold}: early stop after epoch {epoch}: no val Dice gain for {cfg.patience} epochs "
                      f"(best epoch {best['epoch']})", flush=True)
                break
            scores = _epoch(run, cfg, epoch, dist)
            for name, value in scores.items():
                live.log_metric(name, value)
            if dist.main:
                print(f"fold {fold} epoch {epoch + 1}/{cfg.epochs}: " + scores.describe(), flush=True)
                warn_if_slow(fold, epoch, scores.rate, run.expected_rate, scores.data_time, scores.step_time)
            if scores["val/dice"] > best["val_dice"]:
                best = {"epoch": epoch + 1, "val_dice": scores["val/dice"], "val_loss": scores["val/loss"]}
                best_model = {k: v.detach().to("cpu", copy=True) for k, v in evaluated.state_dict().items()}
                if dist.main:
                    save_best(best_model, **best)
            live.next_step()
            done = epoch + 1
            if paths.last and dist.main:
                save_resume(paths.last, run.key, done, run.state, best, best_model)

    metrics = {}
    if dist.main:
        evaluated.load_state_dict(best_model)
        ids = folds.id.astype(str).to_numpy()[run.val_rows]
        oof_dice = write_oof(evaluated, contract, paths, run.val_rows, ids, run.device, cfg.batch_size * 2,
                             run.neighbours)
        labels = contract.labels
        empty = 0.0 if run.tiled else float(np.mean(class_mask_areas(paths.masks, run.val_rows, labels) == 0))
        metrics = {**best, "oof_dice": float(np.mean(oof_dice)), "epochs_run": done,
                   "steps": done * cfg.steps_per_epoch, "val_empty_dice": empty,
                   "learned": bool(best["val_dice"] > empty + MARGIN)}
        if labels.several:
            metrics["classes"] = {name: {"oof_dice": dice} for name, dice in zip(labels.classes, oof_dice)}
        if not metrics["learned"]:
            print(f"warning: fold {fold}: val dice never rose above {best['val_dice']:.4f}, against {empty:.4f} for "
                  f"predicting every image empty: this fold learned nothing; try a higher train.lr or more "
                  f"train.steps (docs/plan.md)", file=sys.stderr, flush=True)
        if paths.last:
            mark_finished(paths.last, run.key, done)
    dist.barrier()  # the others wait until rank 0's files are complete
    return metrics


class _Scores(dict):
    """One epoch's logged values, plus the timings its progress line shows."""

    def describe(self) -> str:
        return (f"train loss {self['train/loss']:.4f} val loss {self['val/loss']:.4f} val dice {self['val/dice']:.4f} "
                f"lr {self['lr']:.2e} | data {self.data_time:.1f}s step {self.step_time:.1f}s "
                f"{self.rate:.0f} img/s")

    @property
    def rate(self) -> float:
        """Training images/s, data and step time together."""
        return self.seen / max(self.data_time + self.step_time, 1e-9)


def _epoch(run: _FoldRun, cfg: Train, epoch: int, dist: Distributed) -> _Scores:
    """Train one epoch on every rank's shard, then validate on rank 0 (all ranks get its scores)."""
    run.train_loader.dataset.set_epoch(epoch)
    if run.augment is not None:
        run.augment.set_epoch(epoch, dist.rank)
    stats = train_one_epoch(run.step_model, run.train_loader, run.criterion, run.state, run.device, run.contract,
                            cfg.clip_grad, run.augment)
    loss_sum, seen = dist.total(stats.loss * stats.seen, stats.seen)  # over all ranks' shards
    # rank 0's score on every rank: all take the same best-checkpoint and early-stop calls
    val_loss, *class_dice = dist.from_main(*_flat(evaluate(run.state.evaluated, run.val_loader, run.criterion,
                                                           run.device, run.contract, pooled=run.tiled)))
    per_class = {f"val/dice_{name}": dice for name, dice in zip(run.contract.labels.classes, class_dice)}
    scores = _Scores({"train/loss": loss_sum / seen, "val/loss": val_loss, "val/dice": float(np.mean(class_dice)),
                      **per_class, "lr": stats.lr})
    scores.seen, scores.data_time, scores.step_time = seen, stats.data_time, stats.step_time
    return scores


def _flat(scores: tuple[float, list[float]]) -> tuple[float, ...]:
    """(loss, dice per class) as one flat tuple of floats, as `Distributed.from_main` sends them."""
    return scores[0], *scores[1]


def _ema(model: nn.Module, cfg: Train):
    """timm's EMA of `model`'s weights (buffers too), warming up over the first steps; None when off."""
    if not cfg.ema:
        return None
    from timm.utils import ModelEmaV3

    return ModelEmaV3(model, decay=cfg.ema, use_warmup=True)
