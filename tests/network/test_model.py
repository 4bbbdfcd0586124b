import subprocess
import sys

import huggingface_hub.constants
import pytest
import torch

from segpipe.core.errors import InputError
from segpipe.network.model import ModelSpec, WeightedLoss, build_model, load_checkpoint, save_checkpoint

SMALL = ModelSpec(arch="Unet", in_channels=3, encoder_name="resnet18", encoder_depth=3, decoder_channels=(32, 16, 8))


def test_model_maps_images_to_one_logit_channel():
    model = build_model(SMALL).eval()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 1, 32, 32)


def test_unknown_encoder_is_named():
    with pytest.raises(InputError, match="resnet19"):
        build_model(ModelSpec("Unet", "resnet19", 5, (256, 128, 64, 32, 16), 3))


@pytest.mark.parametrize("weights", [{"bce": 1.0}, {"bce": 0.7, "dice": 0.3}, {"focal": 1.0, "lovasz": 0.5}])
def test_weighted_loss_is_the_weighted_sum(weights):
    logits, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.5).float()
    loss = WeightedLoss(weights)
    expected = sum(w * loss.losses[name](logits, target) for name, w in weights.items())
    assert torch.isclose(loss(logits, target), expected)


def test_checkpoint_round_trip_and_clear_errors(tmp_path):
    model = build_model(SMALL)
    path = tmp_path / "models" / "unet" / "fold3.pt"
    save_checkpoint(path, model, SMALL, epoch=2)
    loaded, checkpoint = load_checkpoint(path)
    assert checkpoint["epoch"] == 2
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(InputError, match=r"missing; rebuild it with `dvc repro train@unet-4`"):
        load_checkpoint(tmp_path / "models" / "unet" / "fold4.pt")  # the stage named from the layout
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match=r"fold3.pt: checkpoint unreadable .*dvc repro train@unet-3"):
        load_checkpoint(path)


SAVE_ON_A_FULL_DISK = """
import resource, signal, sys
from segpipe.core.errors import InputError
from segpipe.network.model import ModelSpec, build_model, save_checkpoint
spec = ModelSpec(arch="Unet", in_channels=3, encoder_name="resnet18", encoder_depth=3, decoder_channels=(32, 16, 8))
model = build_model(spec)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    save_checkpoint(sys.argv[1], model, spec, epoch=1)
except InputError as err:
    print(err)
"""


def test_a_full_disk_while_saving_a_checkpoint_names_it_and_keeps_the_old_one(tmp_path):
    """torch.save's own writer turns a failed write into `RuntimeError: [enforce fail at inline_container.cc]`."""
    path = tmp_path / "models" / "unet" / "fold0.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"the checkpoint before this run")
    done = subprocess.run([sys.executable, "-c", SAVE_ON_A_FULL_DISK, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{path}: no room to write it (File too large"), done.stdout + done.stderr
    assert path.read_bytes() == b"the checkpoint before this run" and list(path.parent.iterdir()) == [path]


@pytest.mark.parametrize("name", ["bce", "dice", "focal", "lovasz"])
def test_each_loss_takes_logits_and_gives_finite_gradients(name):
    loss = WeightedLoss({name: 1.0})
    target = (torch.rand(2, 1, 8, 8) > 0.5).float()
    right, wrong = (target * 2 - 1) * 5, (1 - target * 2) * 5  # confident logits
    assert loss(right, target) < loss(wrong, target)
    for truth in (target, torch.zeros_like(target)):  # an empty mask too
        logits = torch.randn(2, 1, 8, 8, requires_grad=True)
        value = loss(logits, truth)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


def save_weights(model, form, path):
    """Write `model`'s weights as a user might bring them: an encoder or a whole-model checkpoint."""
    if form == "encoder":
        torch.save(model.encoder.state_dict(), path)
    elif form == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.encoder.state_dict().items()}, path)
    elif form == "segpipe":
        save_checkpoint(path, model, SMALL, epoch=1)
    else:  # a training framework's checkpoint of a DataParallel model
        torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 3}, path)


@pytest.mark.parametrize("form", ["encoder", "safetensors", "segpipe", "state_dict"])
def test_local_encoder_weights_load_into_the_encoder(tmp_path, form):
    source = build_model(SMALL)
    path = tmp_path / ("weights.safetensors" if form == "safetensors" else "weights.pt")
    save_weights(source, form, path)
    model = build_model(SMALL, str(path))
    for key, tensor in source.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], tensor), key


def test_mismatched_encoder_weights_name_the_keys(tmp_path):
    state = build_model(SMALL).encoder.state_dict()
    del state["conv1.weight"]
    state["head.weight"] = torch.zeros(3)
    state["bn1.weight"] = torch.zeros(5)
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(InputError, match=r"train\.encoder_weights: .*other\.pt: does not match") as err:
        build_model(SMALL, str(tmp_path / "other.pt"))
    message = str(err.value)
    assert "1 missing keys (conv1.weight)" in message and "1 unexpected keys (head.weight)" in message
    assert "bn1.weight (5,) != (64,)" in message


def test_a_deeper_encoders_weights_list_the_first_few_keys_and_counts(tmp_path):
    torch.save(build_model(ModelSpec(arch="Unet", in_channels=3, encoder_name="resnet34", encoder_depth=3, decoder_channels=(8, 8, 8)))
               .encoder.state_dict(), tmp_path / "resnet34.pt")
    with pytest.raises(InputError, match=r"\d+ unexpected keys \(layer1\.2\.conv1\.weight, .*, \.\.\.\)"):
        build_model(SMALL, str(tmp_path / "resnet34.pt"))


def test_a_missing_weights_file_is_named(tmp_path):
    with pytest.raises(InputError, match=r"train\.encoder_weights: .*weights/nope\.pt: no such weights file"):
        build_model(SMALL, str(tmp_path / "weights" / "nope.pt"))


@pytest.mark.parametrize("encoder", ["resnet18", "tu-mobilenetv3_small_050"])
def test_named_weights_without_network_point_to_a_local_file(monkeypatch, encoder):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # what a dead network gives, sans retries
    spec = ModelSpec(arch="Unet", in_channels=3, encoder_name=encoder, encoder_depth=3, decoder_channels=(8, 8, 8))
    with pytest.raises(InputError, match=r"train\.encoder_weights: no 'imagenet' weights for .* on this machine: "
                                         r"looked in no folder .*the download failed .*local weights file"):
        build_model(spec, "imagenet")


@pytest.mark.parametrize("name", ["bce", "dice", "focal", "lovasz"])
def test_multiclass_losses_take_class_masks_and_ignore_nothing_but_the_background(name):
    """Exclusive classes: logits of background + 2 classes against (B, 2, H, W) one-hot class masks."""
    torch.manual_seed(0)
    target = torch.zeros(2, 2, 16, 16)
    target[:, 0, 2:8, 2:8], target[:, 1, 10:14, 9:15] = 1, 1
    logits = torch.randn(2, 3, 16, 16, requires_grad=True)
    loss = WeightedLoss({name: 1.0}, "multiclass", classes=2)(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    perfect = torch.full((2, 3, 16, 16), -20.0)
    labels = (target[:, 0] + 2 * target[:, 1]).long()
    perfect.scatter_(1, labels[:, None], 20.0)
    assert WeightedLoss({name: 1.0}, "multiclass", classes=2)(perfect, target) < loss
