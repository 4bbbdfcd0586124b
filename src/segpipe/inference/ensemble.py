"""An ensemble of networks (the folds of a model) and its test-time augmentation views.

`Ensemble(batch)` is the weighted mean, over members and views, of the sigmoid
probabilities of a (B, H, W, C) uint8 batch, on the device. The views are the identity and
the horizontal flip (each prediction flipped back). When the members would crowd the
device (large networks x folds at native size), only one is on it at a time: the others
wait as host copies of their weights and are loaded in turn, as nnU-Net does with folds.
"""
from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
from torch import nn

from segpipe.core.errors import InputError
from segpipe.network.contract import InferenceContract
from segpipe.network.inputs import autocast, class_probabilities, prepare_for_inference, to_model_input

View = tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]  # (forward, inverse)
IDENTITY: View = (lambda x: x, lambda y: y)
HFLIP: View = (lambda x: x.flip(-1), lambda y: y.flip(-1))
RESIDENT_SHARE = 0.25  # keep every member on a CUDA device while their weights take at most this share of it


VIEWS: dict[str, View] = {"identity": IDENTITY, "hflip": HFLIP}  # by the names a contract gives


def tta_views(tta: bool) -> list[View]:
    return [IDENTITY, HFLIP] if tta else [IDENTITY]


def _fits_on(device: torch.device, models: Sequence[nn.Module]) -> bool:
    if device.type != "cuda":
        return True  # on the CPU the "device" is host RAM, where the weights are anyway
    size = sum(p.numel() * p.element_size() for m in models for p in m.parameters())
    return size <= RESIDENT_SHARE * torch.cuda.get_device_properties(device).total_memory


class Ensemble:
    """Members with weights (equal by default), their TTA views, and where their weights live."""

    def __init__(self, models: Sequence[nn.Module], device: torch.device, *, weights: Sequence[float] | None = None,
                 tta: bool = True, amp: bool = True, channels_last: bool = True, in_channels: int | None = None,
                 resident: bool | None = None, names: Sequence[str] = ()):
        if not models:
            raise ValueError("an ensemble needs at least one model")
        self.names = list(names) or [f"member {index}" for index in range(len(models))]  # the files, for errors
        weights = [1.0] * len(models) if weights is None else [float(w) for w in weights]
        if len(weights) != len(models) or min(weights) < 0 or not sum(weights):
            raise ValueError(f"weights {weights} must be one non-negative number per model, not all 0")
        self.weights = [w / sum(weights) for w in weights]
        self.device, self.views = device, tta_views(tta)
        self.amp, self.channels_last, self.in_channels = amp, channels_last, in_channels
        self.softmax = False  # exclusive classes (the contract's `softmax`): softmax, background dropped
        self.normalize = "imagenet"  # the contract's input normalisation
        self.resident = _fits_on(device, models) if resident is None else resident
        if self.resident:
            self._members = [prepare_for_inference(m, device, channels_last) for m in models]
        else:  # one network on the device; each member is its weights on the host
            self._states = [{k: v.detach().to("cpu") for k, v in m.state_dict().items()} for m in models]
            self._network = prepare_for_inference(copy.deepcopy(models[0]), device, channels_last)
            self._loaded = 0

    @classmethod
    def following(cls, contract: InferenceContract, models: Sequence[nn.Module], device: torch.device, *,
                  weights: Sequence[float] | None = None, resident: bool | None = None,
                  names: Sequence[str] = ()) -> Ensemble:
        """The ensemble that runs `models` as their checkpoints' `contract` says (input, precision, views);
        `names` (their files) name a member that gives non-finite probabilities."""
        ensemble = cls(models, device, weights=weights, amp=contract.amp, channels_last=contract.channels_last,
                       in_channels=contract.in_channels, resident=resident, names=names)
        ensemble.views = [VIEWS[name] for name in contract.views]
        ensemble.softmax = contract.softmax
        ensemble.normalize = contract.normalize
        return ensemble

    def __len__(self) -> int:
        return len(self.weights)

    def member(self, index: int) -> nn.Module:
        """Member `index` on the device (loading its weights into the one network when not resident)."""
        if self.resident:
            return self._members[index]
        if self._loaded != index:
            self._network.load_state_dict(self._states[index])
            self._loaded = index
        return self._network

    @torch.inference_mode()
    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, H, W) float32 probabilities of the (B, H, W, C) uint8 `batch`, on the device; (B, K, H, W)
        for members with K > 1 output channels (one per class). A NaN or an infinity is an InputError naming the
        member: a uint8 map would store it as 0, an empty mask that looks like a prediction."""
        if self.device.type == "cuda" and not batch.is_pinned():
            batch = batch.pin_memory()
        x = to_model_input(batch, self.device, self.channels_last, self.in_channels, self.normalize)
        order = list(range(len(self)))
        if not self.resident and self._loaded in order:  # start with the loaded one: one load fewer
            order.remove(self._loaded)
            order.insert(0, self._loaded)
        total = None
        for index in order:
            for view in self.views:
                probs = self.weights[index] * self._probabilities(index, view, x)
                total = probs if total is None else total + probs
        if not torch.isfinite(total).all():  # one check a batch; the member is looked for only then
            culprit = next((self.names[i] for i in order for view in self.views
                            if not torch.isfinite(self._probabilities(i, view, x)).all()), ", ".join(self.names))
            raise InputError(f"{culprit}: gives non-finite probabilities (NaN or infinite) on this batch of images: "
                             "its weights are damaged, or it overflows at this precision; retrain it (with train.amp "
                             "off if it overflows)")
        total = total / len(self.views)
        return total[:, 0] if total.shape[1] == 1 else total

    def _probabilities(self, index: int, view: View, x: torch.Tensor) -> torch.Tensor:
        forward, inverse = view
        with autocast(self.device, self.amp):
            logits = self.member(index)(forward(x)).float()
        return inverse(class_probabilities(logits, self.softmax))
