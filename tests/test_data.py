import numpy as np
import torch

from segpipe.config import Augment
from segpipe.data import MEAN, STD, SliceDataset, build_augmentation, make_loader, to_model_input


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
