"""The network and its loss, built from names so params choose them."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import segmentation_models_pytorch as smp
import torch
from torch import nn

from segpipe.errors import InputError


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the network; stored in every checkpoint."""

    arch: str = "Unet"
    encoder_name: str = "resnet18"
    encoder_depth: int = 5
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    in_channels: int = 3


def build_model(spec: ModelSpec, encoder_weights: str | None = None) -> nn.Module:
    """An smp model with one output channel (logits); unknown names raise InputError."""
    try:
        return smp.create_model(
            spec.arch, encoder_name=spec.encoder_name, encoder_weights=encoder_weights,
            encoder_depth=spec.encoder_depth, decoder_channels=list(spec.decoder_channels),
            in_channels=spec.in_channels, classes=1,
        )
    except KeyError as err:
        raise InputError(f"params.yaml: train.arch/encoder_name: {err.args[0]}") from None


class WeightedLoss(nn.Module):
    """A weighted sum of smp losses on binary logits, e.g. {"bce": 0.7, "dice": 0.3}."""

    FACTORIES = {
        "bce": lambda: smp.losses.SoftBCEWithLogitsLoss(),
        "dice": lambda: smp.losses.DiceLoss(mode="binary", from_logits=True),
        "focal": lambda: smp.losses.FocalLoss(mode="binary"),
        "lovasz": lambda: smp.losses.LovaszLoss(mode="binary", per_image=False, from_logits=True),
    }

    def __init__(self, weights: dict[str, float]) -> None:
        super().__init__()
        self.weights = {name: w for name, w in weights.items() if w}
        self.losses = nn.ModuleDict({name: self.FACTORIES[name]() for name in self.weights})

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(w * self.losses[name](logits, target) for name, w in self.weights.items())


def save_checkpoint(path: Path, model: nn.Module, spec: ModelSpec, **extra) -> None:
    """Save weights with the spec that rebuilds them (atomically, via a temp file)."""
    from segpipe.runtime import atomic_path

    model = getattr(model, "_orig_mod", model)  # unwrap torch.compile
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"spec": asdict(spec), "model": state, **extra}, tmp)


def load_checkpoint(path: Path, rebuild_hint: str) -> tuple[nn.Module, dict]:
    """Rebuild a model from a checkpoint; a missing or corrupt file names `rebuild_hint`."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        spec = ModelSpec(**{**checkpoint["spec"], "decoder_channels": tuple(checkpoint["spec"]["decoder_channels"])})
        model = build_model(spec)
        model.load_state_dict(checkpoint["model"])
    except FileNotFoundError:
        raise InputError(f"{path}: checkpoint missing; rebuild it with `{rebuild_hint}`") from None
    except Exception as err:  # torch raises many types for a damaged file
        raise InputError(f"{path}: checkpoint unreadable ({type(err).__name__}: {err}); "
                         f"rebuild it with `{rebuild_hint}`") from None
    return model, checkpoint
