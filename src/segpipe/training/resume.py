"""Resume state of an interrupted fold: one `last.pt` per fold, rewritten atomically each epoch.

It holds everything the next epoch depends on: model, optimizer, scheduler, GradScaler, the
EMA of the weights (when on), the RNG states (python, numpy, torch, the training loader's generator), the epoch counter, and
the best metrics and weights so far. It also holds a fingerprint of the run's inputs (train
params, fold, seed, fold assignment, array shapes): a checkpoint from other inputs is ignored
and overwritten, never resumed. When the fold finishes, `last.pt` shrinks to a small
"finished" marker, because DVC reruns a finished fold only when an input (code included)
changed, and then training must start over.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from timm.utils import unwrap_model
from torch import nn

from segpipe.config.train import Train
from segpipe.core.runtime import atomic_path, save_torch

# Params that by design do not change results (the loader reseeds per image), so they may be
# changed between an interrupted run and its resumption.
RESULT_NEUTRAL = {"num_workers"}


@dataclass
class TrainingState:
    """The objects an epoch changes: what a checkpoint saves and a resume restores."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    generator: torch.Generator  # the training loader's: shuffle order or weighted draws
    ema: nn.Module | None = None  # timm's ModelEmaV3 of the model, when train.ema is on

    @property
    def evaluated(self) -> nn.Module:
        """The weights that are validated, checkpointed and used for OOF and test: the EMA's when on."""
        return self.ema.module if self.ema is not None else self.model


def run_fingerprint(cfg: Train, fold: int, seed: int, folds: pd.DataFrame, shapes: list[tuple[int, ...]]) -> str:
    """A short hash of everything a fold's training result depends on, apart from the code."""
    payload = {
        "train": cfg.model_dump(mode="json", exclude=RESULT_NEUTRAL), "fold": fold, "seed": seed,
        "ids": folds["id"].astype(str).tolist(), "folds": folds["fold"].astype(int).tolist(),
        "shapes": [list(shape) for shape in shapes],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def save_resume(path: Path, fingerprint: str, epoch: int, state: TrainingState, best: dict,
                best_model: dict[str, torch.Tensor]) -> None:
    """Write the state after `epoch` epochs (atomically: a kill mid-write keeps the previous one)."""
    model = unwrap_model(state.model)
    payload = {
        "fingerprint": fingerprint, "epoch": epoch, "finished": False,
        "model": model.state_dict(), "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(), "scaler": state.scaler.state_dict(),
        "rng": _rng_states(state.generator), "best": best, "best_model": best_model,
        "ema": state.ema.state_dict() if state.ema is not None else None,
    }
    save_torch(payload, path)


def mark_finished(path: Path, fingerprint: str, epoch: int) -> None:
    """Replace the resume state by a small marker: a later rerun of this fold starts over."""
    save_torch({"fingerprint": fingerprint, "epoch": epoch, "finished": True}, path)


def resume(path: Path, fingerprint: str, state: TrainingState) -> tuple[int, dict, dict] | None:
    """Restore `state` from `path` if it is an unfinished run of the same inputs.

    Returns (epochs done, best metrics, best weights), or None to start fresh: no file, an
    unreadable file, a finished run, or a fingerprint from other params or data.
    """
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)  # our own file
    except Exception as err:  # torch raises many types for a damaged file
        print(f"{path}: unreadable ({type(err).__name__}), starting fresh", flush=True)
        return None
    if saved.get("fingerprint") != fingerprint:
        print(f"{path}: from other params or data, starting fresh", flush=True)
        return None
    if saved.get("finished", True):
        # DVC deleted the fold's outputs before this rerun: too late to keep them now; say how to, next time
        print(f"{path}: from a finished run, starting fresh. DVC reruns a finished fold when forced, when its code "
              "changed, or when it could not save the fold's outputs (a full cache disk, say); after such a "
              "failure, free space and run `dvc commit -f train@<model>-<k>` instead, which records the finished "
              "fold's outputs without training it again", flush=True)
        return None
    unwrap_model(state.model).load_state_dict(saved["model"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    if saved["scaler"]:  # empty when saved by a disabled scaler (CPU, bf16)
        state.scaler.load_state_dict(saved["scaler"])
    if state.ema is not None:
        state.ema.load_state_dict(saved["ema"])
    _set_rng_states(saved["rng"], state.generator)
    print(f"{path}: resuming after epoch {saved['epoch']}", flush=True)
    return saved["epoch"], saved["best"], saved["best_model"]


def trim_live_history(live_dir: Path, steps: int) -> None:
    """Drop dvclive rows logged at step >= `steps` (an epoch interrupted before its checkpoint),
    so the resumed run's rows are not duplicates."""
    for tsv in sorted((live_dir / "plots" / "metrics").rglob("*.tsv")):
        lines = tsv.read_text().splitlines(keepends=True)
        if not lines:
            continue
        column = lines[0].rstrip("\r\n").split("\t").index("step")
        kept = lines[:1] + [line for line in lines[1:] if int(line.split("\t")[column]) < steps]
        if len(kept) != len(lines):
            with atomic_path(tsv) as tmp:
                tmp.write_text("".join(kept))


def _rng_states(generator: torch.Generator) -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "loader": generator.get_state()}


def _set_rng_states(states: dict, generator: torch.Generator) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states["cuda"] and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    generator.set_state(states["loader"])
