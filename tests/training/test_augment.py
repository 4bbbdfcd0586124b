import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segpipe.config.train import Augment
from segpipe.training.augment import BatchAugment, affine_theta


def blobs(n=4, height=40, width=60, channels=3):
    """Batches of random blobs: (N,C,H,W) float images in 0-255 that are 255 on the mask, and (N,1,H,W) masks."""
    rng = np.random.default_rng(0)
    masks = np.zeros((n, 1, height, width), np.float32)
    for i in range(n):
        cy, cx = rng.integers(12, height - 12), rng.integers(15, width - 15)
        masks[i, 0, cy - 8:cy + 8, cx - 12:cx + 5] = 1
    images = np.repeat(masks * 255, channels, axis=1)
    return torch.from_numpy(images), torch.from_numpy(masks)


def test_theta_warps_like_opencv_rotation_matrix_on_a_non_square_image():
    height, width = 40, 60
    image = np.random.default_rng(1).uniform(0, 255, (height, width)).astype(np.float32)
    image = cv2.GaussianBlur(image, (0, 0), 3)  # smooth, so two bilinear samplers agree closely
    angle, scale = 25.0, 1.1
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle, scale)
    expected = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR)
    theta = affine_theta(torch.tensor([angle]), torch.tensor([scale], dtype=torch.float64),
                         torch.tensor([1.0], dtype=torch.float64), height, width)
    x = torch.from_numpy(image)[None, None]
    grid = F.affine_grid(theta.float(), [1, 1, height, width], align_corners=False)
    warped = F.grid_sample(x, grid, mode="bilinear", align_corners=False)[0, 0].numpy()
    inner = np.s_[10:-10, 10:-10]  # away from the zero-filled corners
    np.testing.assert_allclose(warped[inner], expected[inner], atol=0.5)


def test_flip_alone_mirrors_images_and_masks_exactly():
    images, masks = blobs()
    out_images, out_masks = BatchAugment(Augment(scale=0, rotate=0, hflip=1.0), seed=0)(images, masks)
    assert torch.allclose(out_images, images.flip(-1), atol=1e-3)
    assert torch.equal(out_masks, masks.flip(-1))


def test_no_strength_leaves_the_batch_alone():
    images, masks = blobs()
    out_images, out_masks = BatchAugment(Augment(scale=0, rotate=0, hflip=0), seed=0)(images, masks)
    assert out_images is images and out_masks is masks


def test_warped_masks_stay_binary_and_on_their_images():
    images, masks = blobs(n=16)
    out_images, out_masks = BatchAugment(Augment(scale=0.2, rotate=30), seed=0)(images, masks)
    assert set(out_masks.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(out_masks, masks)
    bright = out_images[:, 0] > 127
    overlap = (bright & (out_masks[:, 0] > 0)).sum() / (bright | (out_masks[:, 0] > 0)).sum()
    assert overlap > 0.9


def test_draws_depend_on_seed_epoch_and_rank_only():
    images, masks = blobs()
    cfg = Augment(scale=0.1, rotate=20, brightness=0.2)

    def run(seed, epoch, rank=0):
        augment = BatchAugment(cfg, seed)
        augment.set_epoch(epoch, rank)
        return augment(images, masks)[0]

    assert torch.equal(run(3, 1), run(3, 1))
    assert not torch.equal(run(3, 1), run(3, 2))
    assert not torch.equal(run(3, 1), run(4, 1))
    assert not torch.equal(run(3, 1, rank=0), run(3, 1, rank=1))


def test_brightness_contrast_scales_and_shifts_about_half_the_images_within_range():
    n = 64
    images = torch.full((n, 3, 8, 8), 100.0)
    out, _ = BatchAugment(Augment(scale=0, rotate=0, hflip=0, brightness=0.2), seed=0)(images, torch.zeros(n, 1, 8, 8))
    changed = (out != images).flatten(1).any(1)
    assert 16 < changed.sum() < 48
    # 100 * (1 +- 0.2) +- 0.2 * 255, and one value per image
    assert out.min() >= 100 * 0.8 - 51 and out.max() <= 100 * 1.2 + 51
    assert torch.equal(out.amin((1, 2, 3)), out.amax((1, 2, 3)))


@pytest.mark.parametrize("channels", [1, 3])
def test_channels_last_and_grayscale_batches_warp_like_contiguous_ones(channels):
    images, masks = blobs(channels=channels)
    cfg = Augment(scale=0.1, rotate=20)
    plain = BatchAugment(cfg, seed=5)(images, masks)
    nhwc = BatchAugment(cfg, seed=5)(images.contiguous(memory_format=torch.channels_last), masks)
    assert torch.allclose(plain[0], nhwc[0], atol=1e-4) and torch.equal(plain[1], nhwc[1])


def test_same_strengths_as_the_per_sample_albumentations_pipeline():
    """The two engines read the same four params; the batched one must not silently drop one."""
    from segpipe.training.loaders import build_augmentation

    names = {type(t).__name__ for t in build_augmentation(Augment(brightness=0.1)).transforms}
    assert names == {"Affine", "HorizontalFlip", "RandomBrightnessContrast"}
    assert set(Augment.model_fields) == {"scale", "rotate", "hflip", "brightness", "batched"}
