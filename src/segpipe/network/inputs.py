"""What a network sees and how it runs: uint8 batches to normalised input, mixed precision, memory format.

Shared by training and inference, so the OOF and test maps are made from the same input.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from segpipe.core.errors import InputError
from segpipe.core.labels import Labels

# ImageNet statistics: what smp encoders expect, pretrained or not (`normalize="imagenet"`).
MEAN = np.array([0.485, 0.456, 0.406]) * 255
STD = np.array([0.229, 0.224, 0.225]) * 255


def to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """(N,H,W,C) uint8 -> (N,C,H,W) float in 0-255 on `device`; the cast happens there."""
    return images.to(device, non_blocking=True).permute(0, 3, 1, 2).float()


def normalize(x: torch.Tensor, channels_last: bool, in_channels: int | None = None,
              how: str = "imagenet") -> torch.Tensor:
    """(N,C,H,W) float in 0-255 -> model input: ImageNet-normalised, or with `how="image"` each image's
    channels z-scored over its non-black pixels (where any channel is above 0), which are then 0, as
    nnU-Net normalises MRI (`image_zscore`).

    `in_channels` counts the network's input channels. Grayscale slices (one channel each,
    alone or in a 2.5D stack) are repeated to it here, on the device, so a 3-channel encoder
    reads ultrasound without the cache storing three copies.
    """
    if in_channels and x.shape[1] != in_channels:
        if in_channels % x.shape[1]:
            raise InputError(f"the images have {x.shape[1]} channels, which do not make the model's {in_channels} "
                             "input channels: set train.in_channels to the cache's channels (or 3 for grayscale)")
        x = x.repeat_interleave(in_channels // x.shape[1], dim=1)
    if how == "image":
        x = image_zscore(x)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()
    channels = x.shape[1]
    mean = torch.as_tensor(np.resize(MEAN, channels), dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    std = torch.as_tensor(np.resize(STD, channels), dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


def image_zscore(x: torch.Tensor) -> torch.Tensor:
    """Each image's channels z-scored over its foreground, the pixels where any channel is above 0 (the
    head of an MRI slice, not the black around it), the rest 0; an all-black image stays 0."""
    inside = (x > 0).any(dim=1, keepdim=True).to(x.dtype)
    count = inside.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
    mean = (x * inside).sum(dim=(2, 3), keepdim=True) / count
    variance = (((x - mean) * inside) ** 2).sum(dim=(2, 3), keepdim=True) / count
    return (x - mean) / variance.clamp_min(1e-6).sqrt() * inside


def to_model_input(images: torch.Tensor, device: torch.device, channels_last: bool,
                   in_channels: int | None = None, how: str = "imagenet") -> torch.Tensor:
    """(N,H,W,C) uint8 -> normalised (N,C,H,W) float on `device` (`to_device`, then `normalize`)."""
    return normalize(to_device(images, device), channels_last, in_channels, how)


def to_target(masks: torch.Tensor, device: torch.device, labels: Labels = Labels()) -> torch.Tensor:
    """(B, C, H, W) float {0, 1} targets of (B, H, W) uint8 bit masks: `Labels.split` on the device
    (bit k for class k of several; the mask itself for a binary competition)."""
    masks = masks.to(device, non_blocking=True).unsqueeze(1)
    if not labels.several:
        return masks.float()
    bits = torch.arange(labels.channels, device=device, dtype=masks.dtype).view(1, labels.channels, 1, 1)
    return torch.bitwise_and(torch.bitwise_right_shift(masks, bits), 1).float()


def class_probabilities(logits: torch.Tensor, softmax: bool = False) -> torch.Tensor:
    """(B, C, H, W) class probabilities of a network's logits: a sigmoid each, or with `softmax`
    (exclusive classes) the softmax over background and classes, background (channel 0) dropped."""
    return torch.softmax(logits, dim=1)[:, 1:] if softmax else torch.sigmoid(logits)


def class_predictions(logits: torch.Tensor, softmax: bool = False) -> torch.Tensor:
    """(B, C, H, W) bool masks at 0.5: logit > 0 each, or with `softmax` the argmax, background excluded."""
    if not softmax:
        return logits > 0
    winner = logits.argmax(dim=1, keepdim=True)
    return winner == torch.arange(1, logits.shape[1], device=logits.device).view(1, -1, 1, 1)


def autocast(device: torch.device, enabled: bool):
    """Mixed precision on CUDA (bf16 where supported, else fp16); a no-op on CPU."""
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def prepare_for_inference(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    model = model.to(device).eval()
    return model.to(memory_format=torch.channels_last) if channels_last else model
