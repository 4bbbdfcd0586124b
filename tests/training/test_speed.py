import torch

from segpipe.network.model import WeightedLoss, build_model, model_spec
from segpipe.training import speed
from tests.training.test_loop import FAST


def test_the_bare_step_is_timed_without_touching_the_model_or_the_rng():
    model = build_model(model_spec(FAST))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(3)
    state = torch.get_rng_state()
    rate = speed.bare_step_rate(model, WeightedLoss(FAST.loss), FAST, torch.device("cpu"), (32, 32, 3))
    assert rate > 0
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_slow_epoch_is_warned_about_and_a_fast_one_is_not(capsys):
    assert not speed.warn_if_slow(0, 0, rate=100, expected=250, data_time=1.0, step_time=2.0)
    assert speed.warn_if_slow(2, 4, rate=20, expected=250, data_time=8.0, step_time=2.0)
    err = capsys.readouterr().err
    assert "fold 2 epoch 5: 20 img/s, against 250 img/s" in err and "data 8.0s" in err
