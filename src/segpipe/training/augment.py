"""Augmentation of whole batches on the training device: one `grid_sample` per batch.

The default (`train.augment.batched: true`): the same random scale, rotation, horizontal
flip and brightness/contrast as the albumentations pipeline in `segpipe.training.loaders`, drawn per
image but applied to the batch at once, after the uint8 batch reached the device. On a
CPU a 64x64 sample costs albumentations ~0.3 ms of Python and OpenCV calls; a batch of 16
here costs ~1 ms in all, and on a GPU next to nothing, so the loader no longer competes
with the step. Random draws come from a CPU generator seeded per (seed, epoch, rank), so
a run is the same on every device and a resumed run matches an uninterrupted one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from segpipe.config.train import Augment


def affine_theta(angle: torch.Tensor, scale: torch.Tensor, flip: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """`F.affine_grid` matrices (N,2,3) that flip (where `flip` is -1), rotate by `angle`
    degrees counter-clockwise and scale by `scale` about the image centre, as
    `cv2.getRotationMatrix2D` with `cv2.warpAffine` would (after a horizontal flip).

    affine_grid maps each output pixel to where it samples the input, in [-1, 1] per axis:
    for output pixel p (centred, in pixels) that is flip . R(angle)^-1 . p / scale, with the
    aspect ratio carried between the two axes' units.
    """
    radians = torch.deg2rad(angle.double())
    cos, sin = torch.cos(radians) / scale, torch.sin(radians) / scale
    aspect = height / width
    theta = torch.zeros(len(angle), 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1] = flip * cos, -flip * sin * aspect
    theta[:, 1, 0], theta[:, 1, 1] = sin / aspect, cos
    return theta


class BatchAugment:
    """Random affine warp (+ flip) and brightness/contrast of (N,C,H,W) batches in 0-255.

    Masks go through the same warp with nearest sampling; pixels warped in from outside
    the image are 0 (black, empty mask), as with `cv2.BORDER_CONSTANT`. Call `set_epoch`
    before each epoch.
    """

    def __init__(self, augment: Augment, seed: int) -> None:
        self.augment, self.seed = augment, seed
        self.generator = torch.Generator()
        self.set_epoch(0)

    def set_epoch(self, epoch: int, rank: int = 0) -> None:
        self.generator.manual_seed(hash((self.seed, epoch, rank)) & 0x7FFF_FFFF_FFFF_FFFF)

    def __call__(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, _, height, width = images.shape
        a = self.augment
        # Every column is drawn whatever the strengths, so changing one leaves the others' draws alone.
        draws = torch.rand(n, 6, generator=self.generator, dtype=torch.float64)
        signed = 2 * draws - 1
        if a.rotate or a.scale or a.hflip:
            flip = torch.where(draws[:, 2] < a.hflip, -1.0, 1.0).double()
            theta = affine_theta(signed[:, 0] * a.rotate, 1 + signed[:, 1] * a.scale, flip, height, width)
            grid = F.affine_grid(theta.to(images.device, torch.float32), list(images.shape), align_corners=False)
            images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            masks = F.grid_sample(masks, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        if a.brightness:  # as A.RandomBrightnessContrast(b, b, p=0.5): x * (1 + c) + b * 255
            jitter = draws[:, 3] < 0.5
            alpha = torch.where(jitter, 1 + signed[:, 4] * a.brightness, 1.0).float().to(images.device)
            beta = torch.where(jitter, signed[:, 5] * a.brightness * 255, 0.0).float().to(images.device)
            images = (images * alpha.view(-1, 1, 1, 1) + beta.view(-1, 1, 1, 1)).clamp_(0, 255)
        return images, masks
