"""The plan stage on a CPU, byte for byte: the files prepare, train and threshold read, for the default params;
and on a GPU's description, with and without pretrained weights at hand.

The fingerprints under fingerprints/ are a 100x100 synthetic set's (measured) and LGG-, Carvana- and
Severstal-shaped ones: those datasets' real sizes and counts, with round-trip and object quantiles
set by hand. A change to these digests is a change to every CPU user's plan.
"""
from __future__ import annotations

import hashlib
import json
import runpy
import sys
from pathlib import Path

import huggingface_hub
import pytest
import yaml

from segpipe.core.runtime import write_json
from segpipe.plan.device import Device

ROOT = Path(__file__).resolve().parents[2]
FINGERPRINTS = Path(__file__).parent / "fingerprints"
PLAN_FILES = ("prepare.json", "models/unet.json", "threshold.json")

# sha256 of the PLAN_FILES' bytes, one after the other, and what they say
CPU_PLANS = {
    "synthetic": ("c49692591a9da611bd1537f2c29cf6493c0ef8ea4c2b1f22f3a2ce2c7bf6a339",
                  "resize 96x96, 308 steps of batch 16"),
    "lgg": ("c362357ed2728539c6da2771b8b135e4980c82536e9660fb30f2336c8f859396",
            "resize 64x64, 3493 steps of batch 16"),  # 22 passes: the time 12 take at 128x128
    "carvana": ("0f414ec64d5f25e632c967c0fa22752a9d594fe8d194da80a698ef6e60f0cb08",
                "resize 64x96, 4580 steps of batch 16"),  # 18 passes: the time 12 take at 128x128
    "severstal": ("689d30335528fc30d18ddf1835a0388682f67fb8adea466abf0ed078c15a132a",
                  "tile 128x128, 150816 steps of batch 16"),
}


def run_plan(tmp_path: Path, fingerprint: Path, device: Device, monkeypatch, **base) -> Path:
    """stages/plan.py with this repository's params.yaml (and `base` keys), in a scratch folder; its data/plan."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**params, "base": {**params["base"], **base}}))
    write_json(tmp_path / "device.json", device.to_dict())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["plan.py", "--fingerprint", str(fingerprint), "--device", "device.json",
                                      "--out", "plan", "--summary", "plan.json"])
    runpy.run_path(str(ROOT / "stages" / "plan.py"), run_name="__main__")
    return tmp_path / "plan"


def summary(plan: Path) -> str:
    prepare = json.loads((plan / "prepare.json").read_text())
    model = json.loads((plan / "models" / "unet.json").read_text())
    sides = prepare["tile"] if prepare["mode"] == "tile" else prepare["size"]
    return f"{prepare['mode']} {sides[0]}x{sides[1]}, {model['steps']} steps of batch {model['batch_size']}"


@pytest.mark.parametrize("cores", [2, 16])
@pytest.mark.parametrize("dataset", sorted(CPU_PLANS))
def test_the_cpu_plan_of_the_default_params_is_pinned(dataset, cores, tmp_path, monkeypatch):
    plan = run_plan(tmp_path, FINGERPRINTS / f"{dataset}.json", Device("cpu", cores), monkeypatch)
    digest = hashlib.sha256(b"".join((plan / name).read_bytes() for name in PLAN_FILES)).hexdigest()
    assert (digest, summary(plan)) == CPU_PLANS[dataset]


def test_a_gpu_plans_resnet34_and_imagenet_weights_only_when_a_file_of_them_is_at_hand(tmp_path, monkeypatch):
    t4 = Device("cuda", 4, name="Tesla T4", memory_gib=14.7, count=1)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    (tmp_path / "mine").mkdir()
    folders = {"weights_dirs": [str(tmp_path / "mine")], "kaggle_input": str(tmp_path / "input")}
    bare = json.loads((run_plan(tmp_path, FINGERPRINTS / "lgg.json", t4, monkeypatch, **folders)
                       / "models" / "unet.json").read_text())
    assert (bare["encoder_name"], bare["encoder_weights"], bare["num_workers"]) == ("resnet34", None, 3)
    (tmp_path / "mine" / "resnet34.imagenet.safetensors").write_bytes(b"weights")  # found by its name, not read
    planned = run_plan(tmp_path, FINGERPRINTS / "lgg.json", t4, monkeypatch, **folders)
    assert json.loads((planned / "models" / "unet.json").read_text())["encoder_weights"] == "imagenet"
    assert json.loads((tmp_path / "plan.json").read_text())["device"] == t4.to_dict()
