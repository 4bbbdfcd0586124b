"""Sliding-window inference at native resolution, blended with a Gaussian importance map.

As nnU-Net does it: windows of the training tile size, spaced at most `step` x tile apart
(default 1/2), the last one flush with the image edge, so any image size is covered; each
window's probabilities are weighted by a Gaussian centred on it (sigma = 1/8 of the tile),
because a network sees less context near a window's border and is less sure there.

The image is processed in horizontal bands of window rows. A row of pixels is final once
the last window that covers it has been added, so only the open band (a tile's height plus
the rows of one batch) is accumulated, in float32 on the device, and every finished row is
handed back as uint8 at once: a 20,000 x 20,000 image never has a float32 map of its own
size anywhere, on the device or in host RAM (`bench/bench_windows.py` measures the bound).
With classes, the model's (B, C, h, w) maps are accumulated the same way, a channel each.
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

from segpipe.cache.tiles import window_starts

__all__ = ["bands", "gaussian_weights", "padded", "predict_image", "stitch", "window_starts"]

SIGMA = 1 / 8  # of the tile side: nnU-Net's default
# (B,h,w,C) uint8 on the host -> (B,h,w) probabilities on the device, or (B,K,h,w) for K classes
Predict = Callable[[torch.Tensor], torch.Tensor]


def gaussian_weights(tile: tuple[int, int], device: torch.device | str = "cpu") -> torch.Tensor:
    """The (h, w) importance map: 1 at the centre, sigma = tile/8 per axis, never 0 at the edges."""
    axes = []
    for side in tile:
        centre = (side - 1) / 2
        offsets = torch.arange(side, dtype=torch.float64) - centre
        axes.append(torch.exp(-0.5 * (offsets / (side * SIGMA)) ** 2))
    weights = torch.outer(*axes)
    weights = weights / weights.max()
    # nnU-Net replaces exact zeros with the smallest weight; in float32 the edge (exp(-8)) is not 0,
    # but keep the floor so a pixel covered only by window edges still gets a finite average.
    return weights.clamp_min(weights[weights > 0].min()).to(device=device, dtype=torch.float32)


def padded(image: np.ndarray, tile: tuple[int, int]) -> np.ndarray:
    """`image` (H, W, C) zero-padded at the bottom and right to at least the tile (nnU-Net pads with 0 too)."""
    pad_h, pad_w = max(0, tile[0] - image.shape[0]), max(0, tile[1] - image.shape[1])
    if not pad_h and not pad_w:
        return image
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)))


def bands(height: int, width: int, tile: tuple[int, int], step: float, batch_size: int) -> list[list[int]]:
    """Window rows (their y starts) grouped into bands of at least `batch_size` windows (the last may be fewer)."""
    ys, per_row = window_starts(height, tile[0], step), len(window_starts(width, tile[1], step))
    rows_per_band = max(1, -(-batch_size // per_row))
    return [ys[i:i + rows_per_band] for i in range(0, len(ys), rows_per_band)]


@torch.inference_mode()
def predict_image(predict: Predict, image: np.ndarray, tile: tuple[int, int], step: float, batch_size: int,
                  device: torch.device) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (first row, (rows, W) uint8 probabilities 0-255) of `image` (H, W, C) uint8, top to bottom;
    (K, rows, W) when `predict` gives K class maps.

    `predict` maps a batch of windows to probabilities (the ensemble and its TTA views);
    the bands' rows together are exactly the image's H rows.
    """
    height, width = image.shape[:2]
    source = padded(image, tile)
    full_h, full_w = source.shape[:2]
    th, tw = tile
    xs = window_starts(full_w, tw, step)
    weight = gaussian_weights(tile, device)
    groups = bands(full_h, full_w, tile, step, batch_size)
    carry = carry_weight = None  # the still-open rows below the last band's final rows
    classes = None  # the channels of `predict`'s maps, None for (B, h, w): known from the first batch
    for index, ys in enumerate(groups):
        top, bottom = ys[0], ys[-1] + th
        total = weights = None
        corners = [(y, x) for y in ys for x in xs]
        for start in range(0, len(corners), batch_size):
            chunk = corners[start:start + batch_size]
            windows = np.stack([source[y:y + th, x:x + tw] for y, x in chunk])
            probs = predict(torch.from_numpy(windows)).float()
            if probs.ndim == 3:
                probs = probs[:, None]
            else:
                classes = probs.shape[1]
            probs = probs * weight
            if total is None:  # (K, band rows, W), the open rows of the last band added in
                total = torch.zeros((probs.shape[1], bottom - top, full_w), device=device)
                weights = torch.zeros((bottom - top, full_w), device=device)
                if carry is not None:
                    total[:, :carry.shape[1]] += carry
                    weights[:len(carry_weight)] += carry_weight
            for (y, x), prob in zip(chunk, probs):
                total[:, y - top:y - top + th, x:x + tw] += prob
                weights[y - top:y - top + th, x:x + tw] += weight
        final = groups[index + 1][0] if index + 1 < len(groups) else bottom  # rows no later window reaches
        done = (total[:, :final - top] / weights[:final - top] * 255).round_().to(torch.uint8)
        carry, carry_weight = total[:, final - top:], weights[final - top:]
        rows = min(final, height) - top
        if rows > 0:
            done = done[:, :rows, :width].cpu().numpy()
            yield top, done if classes else done[0]


def stitch(predict: Predict, image: np.ndarray, tile: tuple[int, int], step: float, batch_size: int,
           device: torch.device) -> np.ndarray:
    """The whole (H, W) uint8 map of `predict_image` ((K, H, W) with classes), for images that fit in memory
    (the OOF pass)."""
    return np.concatenate([rows for _, rows in predict_image(predict, image, tile, step, batch_size, device)],
                          axis=-2)
