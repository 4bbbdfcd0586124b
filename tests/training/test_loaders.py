import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from segpipe.config.train import Augment
from segpipe.network.inputs import MEAN, STD, to_model_input
from segpipe.training.loaders import SliceDataset, build_augmentation, lesion_weights, make_loader, mask_areas


def dataset(prepared_dir, seed=0):
    rows = np.arange(12)
    return SliceDataset(prepared_dir / "train_images.npy", prepared_dir / "train_masks.npy", rows,
                        build_augmentation(Augment()), seed)


def batches(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


def test_samples_stay_uint8_and_keep_image_and_mask_aligned(prepared_dir):
    image, mask = dataset(prepared_dir)[0]
    assert image.dtype == np.uint8 and image.shape == (32, 32, 3)
    assert mask.dtype == np.uint8 and mask.shape == (32, 32)


def test_augmentation_depends_on_seed_and_epoch_not_on_workers(prepared_dir):
    ds = dataset(prepared_dir)
    one = batches(make_loader(ds, 4, shuffle=True, seed=3, num_workers=0))
    two = batches(make_loader(dataset(prepared_dir), 4, shuffle=True, seed=3, num_workers=2))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(one, two))
    ds.set_epoch(1)
    assert not torch.equal(ds[0][0] if isinstance(ds[0][0], torch.Tensor) else torch.from_numpy(ds[0][0]),
                           torch.from_numpy(dataset(prepared_dir)[0][0]))


def test_model_input_is_normalised_nchw_on_the_device():
    images = torch.full((2, 8, 8, 3), 255, dtype=torch.uint8)
    x = to_model_input(images, torch.device("cpu"), channels_last=True)
    assert x.shape == (2, 3, 8, 8) and x.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), (255 - MEAN) / STD, rtol=1e-5)


def test_lesion_weights_follow_the_tutorial_formula_and_sum_to_one():
    areas = np.array([0, 10, 30, 0])  # A = 40, n = 4: w = (a + 0.1 * 40 / 4) / (1.1 * 40)
    np.testing.assert_allclose(lesion_weights(areas), [1 / 44, 11 / 44, 31 / 44, 1 / 44])
    assert lesion_weights(np.random.default_rng(0).integers(0, 500, 97)).sum() == pytest.approx(1)


def test_lesion_weights_of_an_all_empty_fold_are_uniform():
    weights = lesion_weights(np.zeros(5, dtype=np.int64))
    assert np.isfinite(weights).all() and np.allclose(weights, 0.2)


def test_mask_areas_count_foreground_pixels(prepared_dir):
    rows = np.array([3, 0, 17, 5])
    masks = np.load(prepared_dir / "train_masks.npy")
    np.testing.assert_array_equal(mask_areas(prepared_dir / "train_masks.npy", rows, chunk=3),
                                  (masks[rows] > 0).sum((1, 2)))


def test_weighted_loader_draws_lesion_slices_more_often_and_deterministically():
    items = TensorDataset(torch.arange(10))
    weights = lesion_weights(np.array([0] * 8 + [100, 300]))  # two lesion slices out of ten

    def draws(seed, epochs=20):
        loader = make_loader(items, 10, shuffle=True, seed=seed, num_workers=0, weights=weights)
        return torch.cat([batch for _ in range(epochs) for (batch,) in loader])

    drawn = draws(1)
    assert len(drawn) == 200  # each epoch draws len(dataset) items, with replacement
    counts = torch.bincount(drawn, minlength=10)
    assert counts[8:].sum() > 0.8 * len(drawn)  # p = 408/440 for the two lesion slices
    assert 0 < counts[:8].sum() and counts[9] > counts[8]  # empties are still drawn; more area, more draws
    assert torch.equal(drawn, draws(1)) and not torch.equal(drawn, draws(2))
