"""The plan for a device, from device descriptions: no GPU needed."""
import json
import math
from pathlib import Path

import pytest

from segpipe.config.data import Prepare
from segpipe.config.train import Train
from segpipe.plan import device_rules as rules
from segpipe.plan.device import Device
from segpipe.plan.rules import plan_prepare, plan_train

FINGERPRINTS = Path(__file__).parent / "fingerprints"
CPU = Device("cpu", 2)
T4 = Device("cuda", 4, name="Tesla T4", memory_gib=14.7, count=1)
H100 = Device("cuda", 16, name="NVIDIA H100 80GB HBM3", memory_gib=79.1, count=1, bf16=True)


def fingerprint(name: str) -> dict:
    return json.loads((FINGERPRINTS / f"{name}.json").read_text())


def resized(height: int, width: int) -> dict:
    return {"mode": "resize", "size": [height, width], "scale": 1.0, "tile": [height, width]}


def test_on_a_cpu_every_auto_is_the_small_recipe():
    assert rules.plan_cache(fingerprint("carvana"), Prepare(), CPU, amp=True).max_size == rules.CPU_MAX_SIZE
    planned = rules.plan_model(fingerprint("lgg"), resized(128, 128), Train(), 5, CPU, at_hand=lambda name: True)
    small = Train(encoder_name="tu-mobilenetv3_small_050", decoder_channels=(64, 32, 16, 16, 8), encoder_weights=None,
                  num_workers=0, normalize="image")  # random weights: each image's z-score
    assert planned == plan_train(fingerprint("lgg"), resized(128, 128), small, 5)  # the plan before devices


def test_a_cpu_spends_the_time_a_shrunk_input_saves_on_passes():
    lgg = fingerprint("lgg")  # 256x256: shrunk below the 128x128 budget, each pass is cheaper
    assert rules.cpu_passes(lgg, resized(128, 128)) == rules.PASSES
    assert rules.cpu_passes(lgg, resized(64, 64)) == 22  # 12 passes x 155 / 83 images/s (CPU_IMAGES_PER_S)
    assert rules.cpu_passes(lgg, resized(32, 32)) == 38  # 12 x 266 / 83
    small = {**lgg, "height": {"median": 64}, "width": {"median": 64}}
    assert rules.cpu_passes(small, resized(64, 64)) == rules.PASSES  # small by nature: the synthetic default's time
    assert rules.cpu_passes(lgg, {**resized(64, 64), "mode": "tile"}) == rules.PASSES
    planned = rules.plan_model(lgg, resized(64, 64), Train(), 5, CPU)
    assert planned.steps == math.ceil(22 * lgg["images"] * 4 / 5 / 16)
    assert rules.cpu_speed(64 * 64) == pytest.approx(155) and 83 < rules.cpu_speed(96 * 96) < 155


def test_the_gpu_budget_is_the_native_size_within_the_memory_target():
    assert rules.plan_cache(fingerprint("lgg"), Prepare(), T4, amp=True).max_size == (256, 256)
    assert rules.plan_cache(fingerprint("carvana"), Prepare(), H100, amp=True).max_size == (1280, 1920)
    limit = rules.step_pixels(T4, amp=True) // rules.MIN_BATCH
    assert limit < 1280 * 1920  # MIN_BATCH native Carvana images overflow a T4
    height, width = rules.plan_cache(fingerprint("carvana"), Prepare(), T4, amp=True).max_size
    assert (height, width) == (1248, 1888) and height * width <= limit and height % 32 == width % 32 == 0
    fp32 = rules.plan_cache(fingerprint("carvana"), Prepare(), T4, amp=False).max_size
    assert fp32[0] * fp32[1] <= limit // rules.FP32_FACTOR
    assert rules.plan_cache(fingerprint("carvana"), Prepare(max_size=(256, 256)), H100, amp=True).max_size == (256, 256)


def test_the_gpu_size_is_the_largest_within_the_budget_unless_the_objects_need_tiles():
    carvana = fingerprint("carvana")
    assert plan_prepare(carvana, rules.plan_cache(carvana, Prepare(), T4, amp=True))["size"] == [1248, 1888]
    notebook = rules.plan_cache(carvana, Prepare(max_size=(640, 960)), H100, amp=True)  # a set budget wins
    assert plan_prepare(carvana, notebook) == {"mode": "resize", "size": [640, 960], "scale": 0.05, "tile": [64, 64]}
    thin = {**carvana, "round_trip": {side: {"p25": 1.0 if side == "1280" else 0.5} for side in carvana["round_trip"]}}
    tiled = plan_prepare(thin, rules.plan_cache(thin, Prepare(), T4, amp=True))  # the objects need every pixel
    assert (tiled["mode"], tiled["scale"], tiled["tile"]) == ("tile", 1.0, [1280, 1280])
    assert rules.plan_cache(carvana, Prepare(size=(320, 480)), T4, amp=True).size == (320, 480)


def test_the_gpu_network_is_resnet34_pretrained_only_when_weights_are_at_hand():
    asked = []
    network = rules.plan_network(Train(), T4, at_hand=lambda name: asked.append(name) or False)
    assert network == {"encoder_name": "resnet34", "decoder_channels": (256, 128, 64, 32, 16),
                       "encoder_weights": None, "normalize": "image", "num_workers": 3} and asked == ["resnet34"]
    pretrained = rules.plan_network(Train(), T4, at_hand=lambda name: True)
    assert (pretrained["encoder_weights"], pretrained["normalize"]) == ("imagenet", "imagenet")  # their statistics
    assert "normalize" not in rules.plan_network(Train(normalize="imagenet"), T4, at_hand=lambda name: False)  # set
    chosen = Train(encoder_name="tu-convnext_tiny", encoder_depth=3)
    network = rules.plan_network(chosen, H100, at_hand=lambda name: name == "tu-convnext_tiny")
    assert network == {"decoder_channels": (256, 128, 64), "encoder_weights": "imagenet", "normalize": "imagenet",
                       "num_workers": 8}


def test_the_gpu_batch_fills_the_memory_target_in_powers_of_two():
    assert rules.gpu_batch(256 * 256, T4, Train()) == rules.MAX_BATCH
    assert rules.gpu_batch(1248 * 1888, T4, Train()) == rules.MIN_BATCH  # the budget leaves room for MIN_BATCH
    assert rules.gpu_batch(1248 * 1888, T4, Train(amp=False)) == rules.MIN_BATCH // 2
    assert rules.gpu_batch(1248 * 1888, T4, Train(devices=2)) == 2 * rules.MIN_BATCH  # over both devices
    assert rules.gpu_batch(4096 * 4096, T4, Train()) == 1  # a set size too large for memory: one image, no fewer
    assert rules.gpu_workers(T4, processes=2) == 1 and rules.gpu_workers(Device("cuda", 64, "x", 80.0, 8), 1) == 8


def test_gpu_steps_are_gpu_passes_over_a_fold_and_set_values_win():
    planned = rules.plan_model(fingerprint("lgg"), resized(256, 256), Train(), 5, T4)
    fold_images = 3175 * 4 / 5
    assert (planned.batch_size, planned.steps) == (32, math.ceil(rules.GPU_PASSES * fold_images / 32))
    assert planned.lr == 0.01 and not planned.auto_keys
    chosen = Train(encoder_name="resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=(16, 8, 8),
                   batch_size=8, steps=100, lr=0.003, num_workers=0, normalize="image")
    assert rules.plan_model(fingerprint("lgg"), resized(256, 256), chosen, 5, H100, at_hand=lambda name: True) == chosen


@pytest.mark.parametrize("device", [CPU, T4, H100])
@pytest.mark.parametrize("dataset", ["lgg", "carvana", "severstal"])
def test_every_auto_is_resolved_for_every_device(dataset, device):
    prepare = rules.plan_cache(fingerprint(dataset), Prepare(), device, amp=True)
    sides = prepare.max_size
    planned = rules.plan_model(fingerprint(dataset), resized(*sides), Train(), 5, device)
    assert not planned.auto_keys and Train.model_validate(planned.model_dump())  # what the train stage reads back
