"""The bundle's parts on their own: which models go in, the time limit and its projection, the wheel set."""
import pytest
import torch

from segpipe.bundle.export import blended_models, write_models
from segpipe.bundle.manifest import Speed
from segpipe.bundle.run import Projection, duration, parse_limit
from segpipe.bundle.wheels import closure, needed
from segpipe.config.bundle import KAGGLE_IMAGE
from segpipe.core.errors import InputError
from segpipe.network.model import ModelSpec, build_model, save_checkpoint


def test_models_at_weight_zero_in_every_bag_are_left_out():
    assert blended_models({"counts": {"unet": 3, "fpn": 0}}) == ["unet"]
    per_class = {"counts": {"unet": 3, "fpn": 0}, "class_counts": {"a": {"unet": 1, "fpn": 0},
                                                                  "b": {"unet": 0, "fpn": 2}}}
    assert blended_models(per_class) == ["fpn", "unet"]  # fpn weighs in class b's bag


@pytest.mark.parametrize("text, seconds", [("9h", 32400), ("1h30m", 5400), ("90m", 5400), ("3600s", 3600),
                                           ("0.5h", 1800), ("120", 120)])
def test_limits_read_as_seconds(text, seconds):
    assert parse_limit(text) == seconds


@pytest.mark.parametrize("text", ["nine hours", "9x", "h", "9h 30m", ""])
def test_other_limits_are_refused(text):
    with pytest.raises(ValueError, match="write it as e.g. 9h"):
        parse_limit(text)


def test_the_projection_refuses_far_over_the_limit_on_the_same_kind_of_device_only():
    speed = Speed(images=8, seconds=14.0, images_per_second=2.0, overhead_seconds=10.0, device="CPU (2 threads)",
                  device_type="cpu")
    over = Projection(1000, 300.0, {"unet": 5})  # 10 + 500 s projected against 300 s: 1.7x
    with pytest.raises(InputError, match=r"1000 test images; .* 8m30s projected \(limit 5m00s\): far over the limit"):
        over.check_before(speed, "cpu")
    assert "far over" not in over.check_before(speed, "cuda")  # a CPU's speed says little about a GPU
    assert "limit 9m00s" in Projection(1000, 540.0, {"unet": 5}).check_before(speed, "cpu")  # 1.06x: it starts
    line = Projection(100, 60.0, {"unet": 2, "fpn": 3}).after("unet", 10, 4.0)
    # 0.2 s a fold-image from unet's 2 folds, 5 folds in all: 100 s for 100 images, over the minute
    assert line.startswith("after 10 images of unet: 1m40s projected for all 100, finishing in about 1m36s")
    assert line.endswith("(limit 1m00s, over it)") and duration(4000) == "1h06m"


def test_the_wheels_are_what_infer_needs_less_the_image_and_what_it_brings():
    shipped = needed(KAGGLE_IMAGE)
    assert {"segmentation-models-pytorch", "timm", "safetensors", "huggingface-hub", "tqdm"} <= set(shipped)
    image = closure(KAGGLE_IMAGE)
    assert not set(shipped) & image  # nothing the image has, nor anything it requires
    assert {"numpy", "pillow", "sympy", "filelock"} <= image  # torch's and torchvision's requirements come with them


def test_a_fold_with_non_finite_weights_never_reaches_a_bundle(tmp_path):
    spec = ModelSpec(arch="Unet", in_channels=3, encoder_name="resnet18", encoder_depth=3, decoder_channels=(16, 8, 8))
    model = build_model(spec)
    with torch.no_grad():
        model.segmentation_head[0].bias.fill_(float("nan"))
    path = tmp_path / "models" / "unet" / "fold0.pt"
    save_checkpoint(path, model, spec, epoch=1, contract={})
    with pytest.raises(InputError, match=rf"{path}: 1 of \d+ weights are not finite .*segmentation_head.0.bias"):
        write_models(tmp_path / "bundle", {"unet": {0: path}})
    assert not (tmp_path / "bundle").exists()
