"""Named pretrained weights (`imagenet`) found on this machine, loaded as smp and timm load a download, offline.

The weights files are made here: a randomly initialised network's state dict with a known value
in its first convolution, laid out as the Hugging Face cache, a Kaggle dataset or a Kaggle Model
would hold it.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest
import segmentation_models_pytorch as smp
import timm
import torch
from safetensors.torch import save_file

from segpipe.core.errors import InputError
from segpipe.network.model import ModelSpec, build_model
from segpipe.network.pretrained import find_pretrained, hub_repo, search_folders

TIMM = "tu-mobilenetv3_small_050"  # timm's default tag: timm/mobilenetv3_small_050.lamb_in1k
SMP = "resnet18"  # smp-hub/resnet18.imagenet, at smp's pinned revision
KNOWN = 0.125


def spec(encoder: str, in_channels: int = 3) -> ModelSpec:
    return ModelSpec(arch="Unet", in_channels=in_channels, encoder_name=encoder, encoder_depth=3,
                     decoder_channels=(8, 8, 8))


def save(state: dict[str, torch.Tensor], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in state.items()}, path)
    return path


def timm_weights(path: Path, drop: str | None = None) -> Path:
    """A timm classifier's state dict, as timm's Hub repository holds it, with conv_stem.weight = KNOWN."""
    state = timm.create_model(TIMM[3:]).state_dict()
    state["conv_stem.weight"].fill_(KNOWN)
    state.pop(drop, None)
    return save(state, path)


def smp_weights(path: Path, value: float = KNOWN) -> Path:
    """An smp encoder's state dict, as the smp-hub repository holds it, with conv1.weight = `value`."""
    state = smp.encoders.get_encoder(SMP).state_dict()
    state["conv1.weight"].fill_(value)
    return save(state, path)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE=1 as the Hub client reads it, an empty Hub cache, and no socket may connect."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return tmp_path


@pytest.mark.parametrize("in_channels", [3, 9])
def test_timm_weights_in_a_kaggle_dataset_load_offline_as_timm_loads_them(offline, in_channels):
    folders = search_folders(offline / "hub", [], str(offline / "input"))
    found = timm_weights(offline / "input" / "my-weights" / "mobilenetv3_small_050.lamb_in1k" / "model.safetensors")
    assert find_pretrained(TIMM, "imagenet", folders) == found
    stem = build_model(spec(TIMM, in_channels), "imagenet", folders).encoder.model.conv_stem.weight
    assert stem.shape[1] == in_channels  # timm's own input adaptation: the 3 channels spread over 9
    assert torch.allclose(stem, torch.full_like(stem, KNOWN * 3 / in_channels))


@pytest.mark.parametrize("in_channels", [3, 9])
def test_smp_weights_in_the_hub_cache_load_as_smp_loads_a_download(offline, monkeypatch, in_channels):
    repo = hub_repo(SMP, "imagenet")
    snapshots = offline / "hub" / "models--smp-hub--resnet18.imagenet" / "snapshots"
    pinned = smp_weights(snapshots / repo.revision / "model.safetensors")
    smp_weights(snapshots / "0123abc" / "model.safetensors", value=-1.0)  # another revision: not smp's
    assert find_pretrained(SMP, "imagenet", [offline / "hub"]) == pinned
    torch.manual_seed(0)
    ours = build_model(spec(SMP, in_channels), "imagenet", [offline / "hub"]).state_dict()
    # smp itself, given the same file as its download, with the same seed
    monkeypatch.setattr(smp.encoders, "hf_hub_download", lambda repo_id, filename, revision: str(pinned))
    torch.manual_seed(0)
    theirs = smp.create_model("Unet", encoder_name=SMP, encoder_weights="imagenet", in_channels=in_channels,
                              encoder_depth=3, decoder_channels=[8, 8, 8]).state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)  # the decoder's random init too
    assert ours["encoder.conv1.weight"].abs().sum() > 0


def test_named_weights_not_at_hand_offline_say_where_they_were_looked_for(offline):
    folders = search_folders(offline / "hub", [str(offline / "mine")], str(offline / "input"))
    with pytest.raises(InputError) as err:
        build_model(spec(SMP), "imagenet", folders)
    message = str(err.value)
    assert "\n" not in message and "no 'imagenet' weights for resnet18 on this machine" in message
    assert all(str(folder) in message for folder in folders)
    assert "resnet18.imagenet" in message and "the download failed" in message


@pytest.mark.parametrize("encoder", [TIMM, SMP])
def test_a_file_without_every_tensor_of_the_encoder_is_refused_naming_it(offline, encoder):
    folder = offline / "input" / "w" / hub_repo(encoder, "imagenet").name
    if encoder == TIMM:
        path, missing = timm_weights(folder / "model.safetensors", drop="conv_stem.weight"), "conv_stem.weight"
    else:
        state = smp.encoders.get_encoder(SMP).state_dict()
        del state["layer1.0.conv1.weight"]
        path, missing = save(state, folder / "model.safetensors"), "layer1.0.conv1.weight"
    with pytest.raises(InputError, match=rf"{path}: .*1 missing keys \({missing}\)"):
        build_model(spec(encoder), "imagenet", [offline / "input"])


def test_weights_are_found_by_the_names_the_hub_uses_in_the_folders_order(tmp_path):
    def touch(relative: str) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"w")
        return path

    touch("hub/models--smp-hub--resnet34.imagenet/.no_exist/7a57b34/model.safetensors")  # the Hub's "absent" marker
    touch("input/other-model/model.safetensors")  # another repository's file
    touch("input/a/b/c/d/e/f/resnet34.imagenet/model.safetensors")  # deeper than MAX_DEPTH
    assert find_pretrained("resnet34", "imagenet", [tmp_path / "hub", tmp_path / "input"]) is None
    model = touch("input/resnet34-imagenet/pytorch/default/1/model.safetensors")  # a Kaggle Model, by its slug
    assert find_pretrained("resnet34", "imagenet", [tmp_path / "hub", tmp_path / "input"]) == model
    mine = touch("mine/resnet34.imagenet.safetensors")
    assert find_pretrained("resnet34", "imagenet", [tmp_path / "mine", tmp_path / "input"]) == mine
    assert find_pretrained("resnet34", "ssl", [tmp_path / "input"]) is None  # smp has no such set
    assert find_pretrained("tu-resnet34", "imagenet", [tmp_path / "input"]) is None  # timm's is resnet34.a1_in1k


def test_hf_hub_offline_in_the_environment_reads_the_weights_without_a_network(tmp_path):
    """A fresh process with HF_HUB_OFFLINE=1 set before anything is imported, as in an offline notebook."""
    timm_weights(tmp_path / "input" / "mobilenetv3_small_050.lamb_in1k" / "model.safetensors")
    folders = [str(tmp_path / "input")]
    code = ("from segpipe.network.model import ModelSpec, build_model\n"
            f"model = build_model(ModelSpec('Unet', {TIMM!r}, 3, (8, 8, 8), 3), 'imagenet', {folders})\n"
            "print(float(model.encoder.model.conv_stem.weight.mean()))\n"
            f"build_model(ModelSpec('Unet', {SMP!r}, 3, (8, 8, 8), 3), 'imagenet', {folders})\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == str(KNOWN)
    assert done.returncode != 0 and "InputError: params.yaml: train.encoder_weights: no 'imagenet' weights" \
        in done.stderr.splitlines()[-1]
