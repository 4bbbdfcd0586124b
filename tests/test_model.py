import pytest
import torch

from segpipe.errors import InputError
from segpipe.model import ModelSpec, WeightedLoss, build_model, load_checkpoint, save_checkpoint

SMALL = ModelSpec(encoder_name="resnet18", encoder_depth=3, decoder_channels=(32, 16, 8))


def test_model_maps_images_to_one_logit_channel():
    model = build_model(SMALL).eval()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 1, 32, 32)


def test_unknown_encoder_is_named():
    with pytest.raises(InputError, match="resnet19"):
        build_model(ModelSpec(encoder_name="resnet19"))


@pytest.mark.parametrize("weights", [{"bce": 1.0}, {"bce": 0.7, "dice": 0.3}, {"focal": 1.0, "lovasz": 0.5}])
def test_weighted_loss_is_the_weighted_sum(weights):
    logits, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.5).float()
    loss = WeightedLoss(weights)
    expected = sum(w * loss.losses[name](logits, target) for name, w in weights.items())
    assert torch.isclose(loss(logits, target), expected)


def test_checkpoint_round_trip_and_clear_errors(tmp_path):
    model = build_model(SMALL)
    path = tmp_path / "fold3.pt"
    save_checkpoint(path, model, SMALL, epoch=2)
    loaded, checkpoint = load_checkpoint(path, "dvc repro train@3")
    assert checkpoint["epoch"] == 2
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(InputError, match=r"missing; rebuild it with `dvc repro train@3`"):
        load_checkpoint(tmp_path / "nope.pt", "dvc repro train@3")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match=r"fold3.pt: checkpoint unreadable .*dvc repro train@3"):
        load_checkpoint(path, "dvc repro train@3")
