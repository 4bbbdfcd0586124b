"""Per-image z-score input normalisation: what it computes, and that training and inference agree on it."""
import numpy as np
import pytest
import torch

from segpipe.network.contract import InferenceContract
from segpipe.network.inputs import image_zscore, normalize, to_model_input


def test_each_images_foreground_is_z_scored_and_the_black_around_it_stays_0():
    rng = np.random.default_rng(0)
    x = torch.zeros(2, 3, 16, 16)
    x[0, :, 4:12, 4:12] = torch.from_numpy(rng.uniform(10, 200, (3, 8, 8))).float()
    x[1] = torch.from_numpy(rng.uniform(1, 255, (3, 16, 16))).float() * 0.5  # no black: every pixel counts
    z = image_zscore(x)
    inside = z[0, :, 4:12, 4:12]
    assert torch.allclose(inside.mean(dim=(1, 2)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(inside.std(dim=(1, 2), unbiased=False), torch.ones(3), atol=1e-4)
    assert z[0, :, :4].abs().max() == 0 and torch.allclose(z[1].std(dim=(1, 2), unbiased=False), torch.ones(3), atol=1e-4)
    assert torch.equal(image_zscore(torch.zeros(1, 3, 8, 8)), torch.zeros(1, 3, 8, 8))  # an all-black slice


def test_the_scale_of_an_image_no_longer_matters_under_image_but_does_under_imagenet():
    images = torch.randint(1, 120, (1, 8, 8, 3), dtype=torch.uint8)
    bright = images * 2
    same = [to_model_input(batch, torch.device("cpu"), False, how="image") for batch in (images, bright)]
    assert torch.allclose(*same, atol=1e-5)
    assert not torch.allclose(*(to_model_input(b, torch.device("cpu"), False) for b in (images, bright)))


def test_the_contract_carries_the_normalisation_and_refuses_an_unknown_one():
    contract = InferenceContract(3, 0, 0.5, True, True, normalize="image")
    assert InferenceContract.from_dict(contract.to_dict()).normalize == "image"
    old = {key: value for key, value in contract.to_dict().items() if key != "normalize"}
    assert InferenceContract.from_dict(old).normalize == "imagenet"  # checkpoints from before it
    with pytest.raises(ValueError, match="normalize 'minmax'"):
        InferenceContract(3, 0, 0.5, True, True, normalize="minmax")
    assert normalize(torch.ones(1, 3, 4, 4) * 7, False, how="image").abs().max() == 0  # a flat image: all 0
