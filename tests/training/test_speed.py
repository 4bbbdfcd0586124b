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


def test_a_shared_cpu_is_named_at_set_up_and_the_one_thread_figure_expected(monkeypatch, capsys):
    threads = torch.get_num_threads()
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # as on a 2-core machine, whatever this one has
    set_to = []
    monkeypatch.setattr(torch, "set_num_threads", set_to.append)
    rates = iter([10.0, 100.0])  # all threads, then one: another job holds a core
    monkeypatch.setattr(speed, "bare_step_rate", lambda *args: next(rates))
    assert speed.expected_rate(None, None, FAST, torch.device("cpu"), (32, 32, 3), fold=3) == 100.0
    assert set_to == [1, 2]  # one thread for the timing, then torch's threads back
    err = capsys.readouterr().err
    assert "fold 3: the CPU is shared: the bare training step runs 10 img/s on 2 threads and 100 on one" in err
    rates = iter([90.0, 100.0])  # one thread no faster than the rest allows: a quiet machine, no warning
    monkeypatch.setattr(speed, "bare_step_rate", lambda *args: next(rates))
    assert speed.expected_rate(None, None, FAST, torch.device("cpu"), (32, 32, 3)) == 100.0
    assert capsys.readouterr().err == "" and threads >= 1
