"""The network and its loss, built from names so params choose them."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import segmentation_models_pytorch as smp
import torch
from timm.utils import unwrap_model
from torch import nn

from segpipe.core.errors import InputError
from segpipe.network.archs import STAGE_DECODERS
from segpipe.network.weights import check_finite
from segpipe.paths.artifacts import remake


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the network; stored in every checkpoint. Made from the
    `train` params by `model_spec` (params.yaml holds the defaults)."""

    arch: str
    encoder_name: str
    encoder_depth: int
    decoder_channels: tuple[int, ...]
    in_channels: int
    classes: int = 1  # output channels: one sigmoid per class (multi-label), one for a binary competition,
    # background + one per class for exclusive classes (a softmax; the contract says which)

    @classmethod
    def from_dict(cls, stored: dict) -> ModelSpec:
        """The spec as a checkpoint or a bundle stores it (`asdict`, lists for tuples)."""
        return cls(**{**stored, "decoder_channels": tuple(stored["decoder_channels"])})


class NetworkParams(Protocol):
    """The network fields of the `train` params (segpipe.config.train.Train), named here so that
    this module, and the stages that only run networks, do not depend on the training params."""

    arch: str
    encoder_name: str
    encoder_depth: int
    decoder_channels: list[int]

    @property
    def model_channels(self) -> int: ...


def model_spec(cfg: NetworkParams, classes: int = 1) -> ModelSpec:
    """The network part of `cfg` with `classes` outputs (what rebuilds the weights); the rest is how it is trained."""
    return ModelSpec(cfg.arch, cfg.encoder_name, cfg.encoder_depth, tuple(cfg.decoder_channels), cfg.model_channels,
                     classes)


WEIGHT_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")


def build_model(spec: ModelSpec, encoder_weights: str | None = None) -> nn.Module:
    """An smp model with `spec.classes` output channels (logits); bad names or weights raise InputError.

    `encoder_weights` is None (random init), a named set such as "imagenet" that smp/timm
    download, or the path of a local file loaded by `load_encoder_weights`.
    """
    local = encoder_weights is not None and is_weights_path(encoder_weights)
    named = None if local else encoder_weights
    if named and spec.encoder_name.startswith("tu-"):
        named = True  # timm takes the pretrained tag from the name (tu-<model>.<tag>)
    # decoder_channels is per encoder stage for U-Net-like archs only; the others (FPN, DeepLabV3+,
    # ...) keep smp's decoder defaults
    decoder = {"decoder_channels": list(spec.decoder_channels)} if spec.arch.lower() in STAGE_DECODERS else {}
    try:
        model = smp.create_model(
            spec.arch, encoder_name=spec.encoder_name, encoder_weights=named,
            encoder_depth=spec.encoder_depth, in_channels=spec.in_channels, classes=spec.classes, **decoder,
        )
    except KeyError as err:  # smp: wrong architecture, encoder or weights name (it lists every choice)
        raise InputError(f"params.yaml: train.arch/encoder_name/encoder_weights: {str(err.args[0])[:300]}") from None
    except RuntimeError as err:
        if "Unknown model" not in str(err):  # timm, for a tu-<name> it does not know
            raise
        raise InputError(f"params.yaml: train.encoder_name: {spec.encoder_name!r}: {err} "
                         "(tu-<name> takes any name from timm.list_models())") from None
    except OSError as err:
        # What a failed download raises: urllib.error.URLError (torch.hub), requests.ConnectionError,
        # huggingface_hub's LocalEntryNotFoundError / OfflineModeIsEnabled / HfHubHTTPError: all OSErrors.
        raise InputError(
            f"params.yaml: train.encoder_weights: {encoder_weights!r} for {spec.encoder_name} needs a download "
            f"that failed ({type(err).__name__}: {str(err)[:200]}). Without a network, set train.encoder_weights "
            "to the path of a local weights file (an encoder state dict or a checkpoint with encoder.* keys)"
        ) from None
    if local:
        load_encoder_weights(model, Path(encoder_weights))
    return model


def is_weights_path(value: str) -> bool:
    """Whether train.encoder_weights names a file (a path or a weights suffix) rather than a named set."""
    return "/" in value or "\\" in value or value.endswith(WEIGHT_FILE_SUFFIXES) or Path(value).is_file()


def load_encoder_weights(model: nn.Module, path: Path) -> None:
    """Load `path` strictly into `model.encoder`.

    The file holds an encoder state dict (smp/timm keys), or a checkpoint (a dict with a
    "model" or "state_dict" entry, e.g. a segpipe fold checkpoint) whose `encoder.*` keys
    are taken. A missing file or mismatched keys raise InputError naming them.
    """
    state = _read_state_dict(path)
    state = {key.removeprefix("module.").removeprefix("_orig_mod."): value for key, value in state.items()}
    if any(key.startswith("encoder.") for key in state):
        state = {key[len("encoder."):]: value for key, value in state.items() if key.startswith("encoder.")}
    try:
        model.encoder.load_state_dict(dict(state), strict=True)  # smp's overrides drop fc.* etc.
    except RuntimeError as err:
        raise InputError(f"params.yaml: train.encoder_weights: {path}: {_mismatch(model.encoder, state, err)}") \
            from None


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputError(f"params.yaml: train.encoder_weights: {path}: no such weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded = load_file(path, device="cpu")
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code from a user file
    except Exception as err:  # torch and safetensors raise many types for a damaged file
        raise InputError(f"params.yaml: train.encoder_weights: {path}: unreadable ({type(err).__name__}: {err})") \
            from None
    if isinstance(loaded, dict):
        loaded = next((loaded[key] for key in ("model", "state_dict") if isinstance(loaded.get(key), dict)), loaded)
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise InputError(f"params.yaml: train.encoder_weights: {path}: not a state dict of tensors")
    return loaded


def _mismatch(encoder: nn.Module, state: dict[str, torch.Tensor], err: RuntimeError, shown: int = 5) -> str:
    """Name the missing, unexpected and wrongly shaped keys: the first few and their counts."""
    expected = encoder.state_dict()
    parts = []
    for label, keys in (("missing", [k for k in expected if k not in state]),
                        ("unexpected", [k for k in state if k not in expected]),
                        ("wrong shape", [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
                                         if k in state and state[k].shape != v.shape])):
        if keys:
            parts.append(f"{len(keys)} {label} keys ({', '.join(keys[:shown])}{', ...' if len(keys) > shown else ''})")
    detail = "; ".join(parts) or str(err).splitlines()[0]
    return f"does not match the model's encoder ({type(encoder).__name__}): {detail}"


class WeightedLoss(nn.Module):
    """A weighted sum of smp losses on the logits, e.g. {"bce": 0.7, "dice": 0.3}.

    `mode` is smp's: "binary" (one channel), "multilabel" (a sigmoid channel per class; BCE
    per pixel and channel, Dice per channel averaged over the classes) or "multiclass"
    (exclusive classes: logits of background + C classes, a softmax over them; "bce" is then
    the cross-entropy, and the Dice leaves the background out, as nnU-Net's does). Targets
    are always the (B, C, H, W) {0, 1} class masks; for "multiclass" they become the label map
    (0 background, k + 1 class k) here, after any augmentation.
    """

    FACTORIES = {
        "bce": lambda mode, fg: (smp.losses.SoftCrossEntropyLoss(smooth_factor=0.0) if mode == "multiclass"
                                 else smp.losses.SoftBCEWithLogitsLoss()),
        "dice": lambda mode, fg: smp.losses.DiceLoss(mode=mode, classes=fg, from_logits=True),
        "focal": lambda mode, fg: smp.losses.FocalLoss(mode=mode),
        "lovasz": lambda mode, fg: smp.losses.LovaszLoss(mode=mode, per_image=False, from_logits=True),
    }

    def __init__(self, weights: dict[str, float], mode: str = "binary", classes: int = 1) -> None:
        super().__init__()
        self.weights = {name: w for name, w in weights.items() if w}
        self.multiclass = mode == "multiclass"
        foreground = list(range(1, classes + 1)) if self.multiclass else None
        self.losses = nn.ModuleDict({name: self.FACTORIES[name](mode, foreground) for name in self.weights})

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.multiclass:  # one-hot class masks -> label map; classes are exclusive, so at most one is set
            steps = torch.arange(1, target.shape[1] + 1, device=target.device, dtype=target.dtype).view(1, -1, 1, 1)
            target = ((target > 0.5) * steps).amax(dim=1).long()
        return sum(w * self.losses[name](logits, target) for name, w in self.weights.items())


def save_checkpoint(path: Path, model: nn.Module | dict[str, torch.Tensor], spec: ModelSpec, **extra) -> None:
    """Save weights (a model or its state dict) with the spec that rebuilds them, atomically."""
    from segpipe.core.runtime import save_torch

    if isinstance(model, nn.Module):
        model = unwrap_model(model).state_dict()  # through torch.compile, DDP or an EMA wrapper
    state = {k: v.detach().cpu() for k, v in model.items()}
    save_torch({"spec": asdict(spec), "model": state, **extra}, path)


def load_checkpoint(path: Path) -> tuple[nn.Module, dict]:
    """Rebuild a model from a checkpoint; a missing or corrupt file names the stage that remakes it."""
    rebuild_hint = remake(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        spec = ModelSpec.from_dict(checkpoint["spec"])
        model = build_model(spec)
        model.load_state_dict(checkpoint["model"])
    except FileNotFoundError:
        raise InputError(f"{path}: checkpoint missing; rebuild it with `{rebuild_hint}`") from None
    except Exception as err:  # torch raises many types for a damaged file
        raise InputError(f"{path}: checkpoint unreadable ({type(err).__name__}: {err}); "
                         f"rebuild it with `{rebuild_hint}`") from None
    check_finite(checkpoint["model"], path, f"the run diverged or the file is damaged: rebuild it with `{rebuild_hint}` "
                 "(a diverged run needs a lower train.lr)")
    return model, checkpoint
