import pytest

from segpipe.config.data import Prepare
from segpipe.config.evaluation import Threshold
from segpipe.config.train import Train
from segpipe.plan import rules

CPU = (128, 128)  # the CPU's budget (an auto max_size is resolved by segpipe.plan.device_rules)


def fingerprint(height=256, width=256, images=3000, wanted=128, one_size=True):
    """A fingerprint whose masks keep ROUND_TRIP_BOUND from short side `wanted` up."""
    sides = [s for s in (32, 64, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640) if s < min(height, width)]
    sides.append(min(height, width))
    quantile = rules.ROUND_TRIP_QUANTILE
    round_trip = {str(s): {quantile: 0.99 if s >= wanted else 0.80} for s in sides}
    return {"images": images, "height": {"median": height}, "width": {"median": width}, "one_size": one_size,
            "empty_share": 0.6, "round_trip": round_trip,
            "objects": {"area": {"p01": 40.0, "p05": 80.0, "p10": 120.0, "p25": 400.0}}}


def test_the_size_is_the_smallest_that_keeps_the_objects():
    assert rules.plan_prepare(fingerprint(wanted=96), Prepare(max_size=CPU))["size"] == [96, 96]
    assert rules.plan_prepare(fingerprint(wanted=128), Prepare(max_size=CPU)) == {
        "mode": "resize", "size": [128, 128], "scale": 0.5, "tile": [128, 128]}


def test_images_within_the_budget_keep_their_own_resolution():
    # 101x101 with large objects: 32x32 would keep the masks' round trip, but the native size fits
    assert rules.plan_prepare(fingerprint(101, 101, wanted=32), Prepare(max_size=CPU))["size"] == [96, 96]
    assert rules.plan_prepare(fingerprint(128, 100, wanted=32), Prepare(max_size=CPU))["size"] == [128, 96]
    # the budget decides: the same images under a smaller one shrink to what keeps the objects
    assert rules.plan_prepare(fingerprint(101, 101, wanted=32), Prepare(max_size=(64, 64)))["size"] == [32, 32]


def test_a_lower_resize_bound_shrinks_resized_images_but_no_side_below_64():
    lgg = fingerprint(wanted=128)
    lgg["round_trip"]["64"][rules.ROUND_TRIP_QUANTILE] = 0.91  # as the real LGG's: 0.908 at 64, 0.953 at 128
    assert rules.plan_prepare(lgg, Prepare(max_size=CPU))["size"] == [128, 128]
    assert rules.plan_prepare(lgg, Prepare(max_size=CPU), resize_bound=0.90)["size"] == [64, 64]
    assert rules.plan_prepare(fingerprint(wanted=32), Prepare(max_size=CPU), resize_bound=0.90)["size"] == [32, 32]
    coarse = fingerprint(wanted=96)
    coarse["round_trip"]["32"][rules.ROUND_TRIP_QUANTILE] = 0.91
    assert rules.plan_prepare(coarse, Prepare(max_size=CPU), resize_bound=0.90)["size"] == [64, 64]  # not 32
    tiled = rules.plan_prepare(fingerprint(1280, 1918, wanted=640), Prepare(max_size=CPU), resize_bound=0.5)
    assert tiled["mode"] == "tile" and tiled["scale"] == 0.5  # tiles keep the rules' bound


def test_a_set_value_wins_over_the_rule():
    plan = rules.plan_prepare(fingerprint(wanted=128), Prepare(mode="resize", size=(64, 96), max_size=CPU))
    assert plan["mode"] == "resize" and plan["size"] == [64, 96]


def test_over_the_budget_images_of_one_size_are_tiled_at_the_wanted_scale():
    plan = rules.plan_prepare(fingerprint(1280, 1918, wanted=640), Prepare(max_size=CPU))
    assert plan["mode"] == "tile" and plan["scale"] == 0.5 and plan["tile"] == [128, 128]
    raised = rules.plan_prepare(fingerprint(1280, 1918, wanted=640), Prepare(max_size=(256, 256)))
    assert raised["tile"] == [256, 256]


def test_over_the_budget_images_of_many_sizes_are_resized_within_it():
    plan = rules.plan_prepare(fingerprint(420, 580, wanted=320, one_size=False), Prepare(max_size=CPU))
    assert plan["mode"] == "resize" and plan["size"][0] * plan["size"][1] <= 128 * 128
    assert plan["size"][1] > plan["size"][0]  # the aspect is kept


def test_a_small_dataset_gets_at_least_the_minimum_steps_and_a_large_one_its_passes():
    prepare = {"mode": "resize", "size": [64, 64], "scale": 1.0, "tile": [64, 64]}
    small = rules.plan_train(fingerprint(images=100), prepare, Train(), n_splits=5)
    assert small.steps == rules.MIN_STEPS and small.batch_size == rules.BATCH
    large = rules.plan_train(fingerprint(images=3000), prepare, Train(), n_splits=5)
    assert large.steps == -(-rules.PASSES * 2400 // rules.BATCH)
    assert large.steps_per_epoch * large.epochs >= large.steps


def test_auto_resolves_deterministically_and_set_values_win():
    prepare = {"mode": "resize", "size": [256, 256], "scale": 1.0, "tile": [256, 256]}
    first = rules.plan_train(fingerprint(), prepare, Train(), n_splits=5)
    assert first == rules.plan_train(fingerprint(), prepare, Train(), n_splits=5)
    assert first.batch_size == 4 and first.lr == rules.LR and not {"steps", "batch_size", "lr"} & set(first.auto_keys)
    fixed = rules.plan_train(fingerprint(), prepare, Train(steps=50, batch_size=8, lr=0.1), n_splits=5)
    assert (fixed.steps, fixed.batch_size, fixed.lr) == (50, 8, 0.1)


def test_area_grids_follow_the_objects_at_training_size():
    prepare = {"mode": "resize", "size": [128, 128], "scale": 0.5, "tile": [128, 128]}
    grids = rules.plan_threshold(fingerprint(), prepare, Threshold())
    assert grids.gate_areas == grids.min_components == (0, 2, 5, 10, 20, 30, 100)  # areas / 4
    kept = rules.plan_threshold(fingerprint(), prepare, Threshold(min_components=(0, 7)))
    assert kept.min_components == (0, 7)


def test_training_refuses_an_unresolved_plan():
    assert Train().auto_keys == ["encoder_name", "encoder_weights", "decoder_channels", "normalize", "steps",
                                 "batch_size", "lr", "num_workers"]
    with pytest.raises(ValueError):
        Prepare(size=(100, 100))


def test_tile_mode_passes_cover_every_tile():
    plan = rules.plan_prepare(fingerprint(1280, 1918, wanted=640), Prepare(max_size=CPU))
    assert rules.crops_per_image(fingerprint(1280, 1918), plan) == 5 * 8  # 640x959 in 128x128 tiles
    tiled = rules.plan_train(fingerprint(1280, 1918, images=1000), plan, Train(), n_splits=5)
    assert tiled.steps == -(-rules.PASSES * 800 * 40 // rules.BATCH)
