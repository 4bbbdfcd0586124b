"""An encoder's starting weights from a file: a local file that `train.encoder_weights` names, or
named weights (`imagenet`) found on this machine under the names smp and timm download them as.

smp's own encoders download `model.safetensors` from the Hugging Face repository
`smp-hub/<encoder>.<weights>` at a pinned revision; a `tu-<name>` encoder asks timm, which
downloads `model.safetensors` or `pytorch_model.bin` from `timm/<name>.<tag>`. `find_pretrained`
looks for those files in the folders it is given, in order (the stages give the Hugging Face
cache, `base.weights_dirs` and `base.kaggle_input`), down to MAX_DEPTH levels. A file matches when

- it lies under a folder named as the repository (`resnet34.imagenet`), as its Kaggle slug
  (`resnet34-imagenet`) or as the Hub cache names it (`models--smp-hub--resnet34.imagenet`), and is
  named `model.safetensors` or `pytorch_model.bin`; or
- it is named as the repository, or its slug, with a weights suffix (`resnet34.imagenet.safetensors`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import nn

from segpipe.core.errors import InputError

WEIGHT_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")
HUB_FILES = ("model.safetensors", "pytorch_model.bin")  # what smp and timm download from a Hub repository
MAX_DEPTH = 6  # /kaggle/input/<model>/<framework>/<variation>/<version>/<folder>/<file>


@dataclass(frozen=True)
class HubRepo:
    """The Hugging Face repository that smp or timm downloads named weights from."""

    repo_id: str  # e.g. smp-hub/resnet34.imagenet, timm/resnet34.a1_in1k
    revision: str | None = None  # the commit smp pins (a Hub cache may hold several); timm takes the latest

    @property
    def name(self) -> str:
        return self.repo_id.split("/")[-1]

    @property
    def folders(self) -> set[str]:
        return {self.name, kaggle_slug(self.name), "models--" + self.repo_id.replace("/", "--")}

    @property
    def files(self) -> set[str]:
        return {stem + suffix for stem in (self.name, kaggle_slug(self.name)) for suffix in WEIGHT_FILE_SUFFIXES}

    def wanted(self) -> str:
        """What is looked for, in words."""
        return (f"a folder {self.name}, {kaggle_slug(self.name)} or models--{self.repo_id.replace('/', '--')} "
                f"holding {' or '.join(HUB_FILES)}, or a file {self.name}.safetensors")


def kaggle_slug(name: str) -> str:
    """`name` as a Kaggle dataset or model slug: lower case, anything but letters and digits a hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def hub_repo(encoder_name: str, weights: str) -> HubRepo | None:
    """The repository smp or timm would download `weights` of `encoder_name` from; None if neither names one."""
    if encoder_name.startswith("tu-"):
        import timm

        try:  # the tag in the name (tu-<model>.<tag>), else timm's default for the model
            cfg = timm.models.get_pretrained_cfg(encoder_name[3:])
        except RuntimeError:  # an unknown tag: timm names it when the model is built
            return None
        return HubRepo(cfg.hf_hub_id) if cfg is not None and cfg.hf_hub_id else None
    import segmentation_models_pytorch as smp

    settings = smp.encoders.encoders.get(encoder_name, {}).get("pretrained_settings", {}).get(weights)
    return HubRepo(settings["repo_id"], settings.get("revision")) if settings else None


def search_folders(hub_cache: Path, weights_dirs: Sequence[str], kaggle_input: str) -> tuple[Path, ...]:
    """Where named weights are looked for, in order: the Hugging Face cache (where smp's and timm's
    downloads land), the user's `base.weights_dirs`, the Kaggle input folder (`base.kaggle_input`)."""
    return (Path(hub_cache), *map(Path, weights_dirs), Path(kaggle_input))


def find_pretrained(encoder_name: str, weights: str, folders: Sequence[Path]) -> Path | None:
    """The first file of `weights` for `encoder_name` in `folders` (in their order; smp's pinned revision
    first within one), or None."""
    repo = hub_repo(encoder_name, weights)
    if repo is None:
        return None
    for folder in folders:
        found = sorted(_matches(Path(folder), repo), key=lambda path: (repo.revision not in path.parts, str(path)))
        if found:
            return found[0]
    return None


def _matches(root: Path, repo: HubRepo) -> Iterator[Path]:
    if not root.is_dir():
        return
    for here, folders, files in os.walk(root, followlinks=True):  # a Hub cache links its files into snapshots
        parts = Path(here).relative_to(root).parts
        # hidden folders hold no weights: the Hub cache's .no_exist holds empty markers named as its files
        folders[:] = [] if len(parts) >= MAX_DEPTH else [f for f in folders if not f.startswith(".")]
        under = bool(repo.folders & {root.name, *parts})
        for name in files:
            if name in repo.files or (under and name in HUB_FILES):
                yield Path(here) / name


def not_at_hand(encoder_name: str, weights: str, folders: Sequence[Path]) -> str:
    """Where `find_pretrained` looked, and for what, in one line."""
    repo = hub_repo(encoder_name, weights)
    wanted = repo.wanted() if repo else "a file of them"
    return (f"no {weights!r} weights for {encoder_name} on this machine: looked in "
            f"{', '.join(map(str, folders)) or 'no folder'} for {wanted}")


def is_weights_path(value: str) -> bool:
    """Whether train.encoder_weights names a file (a path or a weights suffix) rather than a named set."""
    return "/" in value or "\\" in value or value.endswith(WEIGHT_FILE_SUFFIXES) or Path(value).is_file()


def load_encoder_weights(model: nn.Module, path: Path) -> None:
    """Load `path` strictly into `model.encoder`.

    The file holds an encoder state dict (smp/timm keys), or a checkpoint (a dict with a
    "model" or "state_dict" entry, e.g. a segpipe fold checkpoint) whose `encoder.*` keys
    are taken. A missing file or mismatched keys raise InputError naming them.
    """
    load_strict(model.encoder, encoder_state(path), path)


def load_smp_pretrained(model: nn.Module, in_channels: int, path: Path) -> None:
    """Load smp's named weights from `path` (a 3-channel file, as the Hub holds it) into `model`, built with 3
    input channels, as smp loads a download: strictly, its first convolution then widened to `in_channels`
    by smp's own rule. The random draws are smp's too, so a run starts from the same weights either way."""
    load_strict(model.encoder, encoder_state(path), path)
    model.encoder.set_in_channels(in_channels, pretrained=True)


def check_timm_pretrained(encoder_name: str, path: Path) -> None:
    """Refuse a file that lacks any tensor of the `tu-` encoder's timm network, naming them: timm loads
    pretrained weights into a feature extractor leniently (a missing key is only logged)."""
    import timm

    state = _read_state_dict(path)  # a damaged file is named here, before timm reads it
    try:
        with torch.device("meta"):  # the keys without the memory
            network = timm.create_model(encoder_name[3:], num_classes=0)
    except Exception:  # a model that cannot be built on the meta device
        network = timm.create_model(encoder_name[3:], num_classes=0)
    missing = [key for key in network.state_dict() if key not in state]
    if missing:
        raise InputError(f"params.yaml: train.encoder_weights: {path}: does not match {encoder_name}: "
                         f"{len(missing)} missing keys ({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})")


def encoder_state(path: Path) -> dict[str, torch.Tensor]:
    """The encoder's tensors in `path`: wrapper prefixes dropped, a whole model's `encoder.*` keys taken."""
    state = _read_state_dict(path)
    state = {key.removeprefix("module.").removeprefix("_orig_mod."): value for key, value in state.items()}
    if any(key.startswith("encoder.") for key in state):
        state = {key[len("encoder."):]: value for key, value in state.items() if key.startswith("encoder.")}
    return state


def load_strict(encoder: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    try:
        encoder.load_state_dict(dict(state), strict=True)  # smp's overrides drop fc.* etc.
    except RuntimeError as err:
        raise InputError(f"params.yaml: train.encoder_weights: {path}: {_mismatch(encoder, state, err)}") from None


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
