"""The plan of the default params for three devices on LGG-, Carvana- and Severstal-shaped fingerprints.

The devices are descriptions, as the `device` stage writes them (no GPU needed): a 2-core CPU, a
16 GB T4 (P100-class: Kaggle's GPU notebooks, 4 cores) and an 80 GB H100 (16 cores). The
fingerprints are the tests' (tests/plan/fingerprints/): each dataset's real image size and count,
its round-trip and object quantiles set by hand. The rules are the plan stage's
(`segpipe.plan.rules`, `segpipe.plan.device_rules`); ImageNet weights are taken to be at hand.
Prints the table of docs/plan.md#the-plan-for-a-device.

    python bench/plan_devices.py
"""
from __future__ import annotations

import json
from pathlib import Path

from segpipe.config.params import load_params
from segpipe.plan.device import Device
from segpipe.plan.device_rules import plan_cache, plan_model, resize_bound
from segpipe.plan.rules import input_pixels, plan_prepare

ROOT = Path(__file__).resolve().parents[1]
DEVICES = {
    "2-core CPU": Device("cpu", 2),
    "T4, 16 GB": Device("cuda", 4, name="Tesla T4", memory_gib=14.7, count=1),
    "H100, 80 GB": Device("cuda", 16, name="NVIDIA H100 80GB HBM3", memory_gib=79.1, count=1, bf16=True),
}
DATASETS = {"lgg": "LGG 256×256", "carvana": "Carvana 1280×1918", "severstal": "Severstal 256×1600"}


def main() -> None:
    params = load_params(ROOT / "params.yaml")
    print("| device | dataset | budget (`prepare.max_size`) | cache | network | batch | steps | workers | "
          "pixels a fold |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, device in DEVICES.items():
        for name, dataset in DATASETS.items():
            fingerprint = json.loads((ROOT / "tests/plan/fingerprints" / f"{name}.json").read_text())
            budget = plan_cache(fingerprint, params.prepare, device, params.train.amp)
            prepare = plan_prepare(fingerprint, budget, resize_bound(device))
            cfg = plan_model(fingerprint, prepare, params.model("unet"), params.folds.n_splits, device,
                             at_hand=lambda encoder: True)
            sides = prepare["tile"] if prepare["mode"] == "tile" else prepare["size"]
            cache = f"{prepare['mode']} {sides[0]}×{sides[1]}" + (
                f" at scale {prepare['scale']}" if prepare["mode"] == "tile" else "")
            network = cfg.encoder_name + (f", {cfg.encoder_weights}" if cfg.encoder_weights else "")
            pixels = cfg.steps * cfg.batch_size * input_pixels(prepare)
            print(f"| {label} | {dataset} | {budget.max_size[0]}×{budget.max_size[1]} | {cache} | {network} | "
                  f"{cfg.batch_size} | {cfg.steps} | {cfg.num_workers} | {pixels / 1e9:.1f} G |")


if __name__ == "__main__":
    main()
