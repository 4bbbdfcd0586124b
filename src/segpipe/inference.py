"""Batched prediction with horizontal-flip TTA, shared by the OOF pass and the test pass."""
from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from segpipe import context
from segpipe.data import to_model_input


def autocast(device: torch.device, enabled: bool):
    """Mixed precision on CUDA (bf16 where supported, else fp16); a no-op on CPU."""
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def prepare_for_inference(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    model = model.to(device).eval()
    return model.to(memory_format=torch.channels_last) if channels_last else model


def predict_batches(models: Sequence[nn.Module], images: np.ndarray, batch_size: int, device: torch.device,
                    *, rows: np.ndarray | None = None, neighbours: np.ndarray | None = None,
                    **options) -> Iterator[np.ndarray]:
    """`ensemble_batches` over `images[rows]` (a memmap is fine: one batch is in memory at a time).

    With `neighbours` (`segpipe.context`), each row goes in as its slice stack.
    """
    rows = np.arange(len(images)) if rows is None else np.asarray(rows)
    batches = (torch.from_numpy(context.gather(images, rows[start:start + batch_size], neighbours))
               for start in range(0, len(rows), batch_size))
    return ensemble_batches(models, batches, device, **options)


@torch.inference_mode()
def ensemble_batches(models: Sequence[nn.Module], batches: Iterable[torch.Tensor], device: torch.device, *,
                     tta: bool = True, amp: bool = True, channels_last: bool = True,
                     in_channels: int | None = None) -> Iterator[np.ndarray]:
    """Yield (B,H,W) uint8 probabilities (0-255) for each (B,H,W,C) uint8 batch of `batches`.

    Probabilities are averaged over `models` and, with `tta`, over the horizontal flip.
    """
    views = 2 if tta else 1
    for batch in batches:
        if device.type == "cuda" and not batch.is_pinned():
            batch = batch.pin_memory()
        x = to_model_input(batch, device, channels_last, in_channels)
        total = torch.zeros((x.shape[0], x.shape[2], x.shape[3]), device=device)
        for model in models:
            with autocast(device, amp):
                total += torch.sigmoid(model(x).float())[:, 0]
                if tta:
                    total += torch.sigmoid(model(x.flip(-1)).float())[:, 0].flip(-1)
        probs = total / (len(models) * views)
        yield (probs * 255).round_().to(torch.uint8).cpu().numpy()
