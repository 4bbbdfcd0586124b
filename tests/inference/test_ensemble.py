"""The ensemble: weighted mean over members and TTA views, the same with one network on the device."""
import pytest
import torch
from torch import nn

from segpipe.inference.ensemble import Ensemble

CPU = torch.device("cpu")


class Offset(nn.Module):
    """Logit = x's first channel + a learnable offset: members differ by their weights alone."""

    def __init__(self, offset: float):
        super().__init__()
        self.offset = nn.Parameter(torch.tensor(offset))

    def forward(self, x):
        return x[:, :1] * 0.01 + self.offset


def batch(seed=0):
    return torch.randint(0, 256, (2, 8, 12, 3), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_members_are_averaged_with_their_weights():
    members = [Offset(-1.0), Offset(2.0)]
    one, two = (Ensemble([m], CPU, tta=False)(batch()) for m in members)
    weighted = Ensemble(members, CPU, weights=[3, 1], tta=False)(batch())
    torch.testing.assert_close(weighted, 0.75 * one + 0.25 * two)


def test_one_network_on_the_device_gives_what_all_members_resident_give():
    members = [Offset(-1.0), Offset(0.5), Offset(2.0)]
    resident = Ensemble(members, CPU, resident=True)
    swapping = Ensemble(members, CPU, resident=False)
    for seed in range(3):  # the loaded member changes from call to call
        torch.testing.assert_close(swapping(batch(seed)), resident(batch(seed)))
    assert not swapping.resident and swapping.member(1) is swapping.member(2)  # one network, reloaded


def test_the_flip_view_is_flipped_back():
    class LeftEdge(nn.Module):  # high logits on the left half only: a flip not undone would move them
        def forward(self, x):
            out = torch.full_like(x[:, :1], -9.0)
            out[..., : x.shape[-1] // 2] = 9.0
            return out

    plain = Ensemble([LeftEdge()], CPU, tta=False)(batch())
    assert (plain[..., :6] > 0.99).all() and (plain[..., 6:] < 0.01).all()
    probs = Ensemble([LeftEdge()], CPU, tta=True)(batch())
    # the flipped view, flipped back, says "right half": the mean is 1/2 everywhere (not undone, it would stay 1 | 0)
    torch.testing.assert_close(probs, torch.full((2, 8, 12), 0.5), atol=1e-3, rtol=0)


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match="one non-negative number per model"):
        Ensemble([Offset(0.0)], CPU, weights=[1, 2])
