import json
import shutil

import huggingface_hub.constants
import numpy as np
import pandas as pd
import pytest
import torch

import segpipe.inference.ensemble as ensemble_module
import segpipe.training.loop as train_module
from segpipe.cache.folds import stratified_group_folds
from segpipe.cache.stacks import neighbour_rows
from segpipe.config.train import Augment, Train
from segpipe.core.errors import InputError
from segpipe.inference.maps import Ensemble, ensemble_batches
from segpipe.inference.predict import ImagesToPredict, load_fold_models, predict_test
from segpipe.inference.probmaps import count_maps, read_map
from segpipe.network.model import load_checkpoint
from segpipe.training.loop import FoldPaths, train_fold
from tests.conftest import TINY_SIZE

FAST = Train(encoder_name="resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=(16, 8, 8), epochs=2,
             steps=6, batch_size=8, lr=0.003, num_workers=0, normalize="imagenet")
CURVES = ("train/loss", "val/loss", "val/dice", "lr")


@pytest.fixture(scope="module")
def folds(prepared_dir):
    index = pd.read_csv(prepared_dir / "train.csv", dtype={"id": str, "group": str})
    return stratified_group_folds(index, 2, seed=0)


def run_fold(prepared_dir, folds, out, cfg=FAST, fold=1):
    paths = FoldPaths(prepared_dir / "train_images.npy", prepared_dir / "train_masks.npy",
                      out / "model.pt", out / "oof", out / "live", last=out / "last.pt")
    return train_fold(cfg, folds, fold, paths, seed=5), paths


@pytest.fixture(scope="module")
def straight(prepared_dir, folds, tmp_path_factory):
    """One uninterrupted FAST run of fold 1, shared by the tests that only read its outputs."""
    return run_fold(prepared_dir, folds, tmp_path_factory.mktemp("straight"))


def curve_rows(paths, curve="val/dice"):
    return (paths.live_dir / "plots" / "metrics" / f"{curve}.tsv").read_text().splitlines()


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def interrupt_on_call(monkeypatch, name, call):
    """Make segpipe.training.loop's `name` raise KeyboardInterrupt on its `call`-th call, like a kill."""
    real, calls = getattr(train_module, name), []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, name, interrupted)


def test_fold_writes_checkpoint_oof_and_curves(straight, folds):
    metrics, paths = straight
    assert set(metrics) == {"epoch", "val_dice", "val_loss", "oof_dice", "epochs_run", "steps", "val_empty_dice",
                            "learned"}
    assert 1 <= metrics["epoch"] <= FAST.epochs and 0 <= metrics["oof_dice"] <= 1
    assert metrics["epochs_run"] == FAST.epochs
    oof = np.load(paths.oof / "probs.npy")
    assert oof.dtype == np.uint8 and oof.shape == ((folds.fold == 1).sum(), 32, 32)
    for curve in CURVES:
        assert len(curve_rows(paths, curve)) == FAST.epochs + 1, curve
    assert json.loads((paths.live_dir / "metrics.json").read_text())["step"] == FAST.epochs - 1
    last = torch.load(paths.last, weights_only=False)
    assert last["finished"] and set(last) == {"fingerprint", "epoch", "finished"}  # a small marker
    assert not list(paths.model.parent.glob(".*tmp*"))


def test_same_seed_same_metrics_and_a_finished_fold_trains_again(prepared_dir, folds, straight, tmp_path, capsys):
    first, first_paths = straight
    shutil.copytree(first_paths.model.parent, tmp_path, dirs_exist_ok=True)
    capsys.readouterr()
    second, paths = run_fold(prepared_dir, folds, tmp_path)  # e.g. `dvc repro -f`: must not reuse the finished run
    out = capsys.readouterr().out
    assert "from a finished run, starting fresh" in out and f"epoch 1/{FAST.epochs}" in out
    assert first == second
    np.testing.assert_array_equal(np.load(paths.oof / "probs.npy"), np.load(first_paths.oof / "probs.npy"))
    assert curve_rows(paths) == curve_rows(first_paths)


def test_the_fold_warns_when_training_is_far_slower_than_its_bare_step(prepared_dir, folds, straight, tmp_path,
                                                                         monkeypatch, capsys):
    monkeypatch.setattr(train_module, "expected_rate", lambda *args: 1e9)  # a device far faster than this one
    metrics, paths = run_fold(prepared_dir, folds, tmp_path)
    assert capsys.readouterr().err.count("img/s for the bare training step") == FAST.epochs
    first, first_paths = straight  # the timing of the real bare step changed nothing in the fold
    assert metrics == first
    np.testing.assert_array_equal(np.load(paths.oof / "probs.npy"), np.load(first_paths.oof / "probs.npy"))


def test_an_interrupted_fold_resumes_to_the_uninterrupted_result(prepared_dir, folds, straight, tmp_path,
                                                                  monkeypatch, capsys):
    uninterrupted, paths_a = straight
    # Killed after epoch 2 was trained and logged but before its resume state was written: the
    # RNGs have moved on and dvclive holds a row that the resumed run must not duplicate.
    interrupt_on_call(monkeypatch, "save_resume", 2)
    with pytest.raises(KeyboardInterrupt):
        run_fold(prepared_dir, folds, tmp_path / "b")
    monkeypatch.undo()
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=False)["epoch"] == 1
    (tmp_path / "b" / "model.pt").unlink()  # DVC deletes a stage's non-persistent outputs before rerunning it
    capsys.readouterr()
    resumed, paths_b = run_fold(prepared_dir, folds, tmp_path / "b")
    out = capsys.readouterr().out
    assert "resuming after epoch 1" in out and "epoch 1/2" not in out and "epoch 2/2" in out
    assert resumed == uninterrupted
    for key, tensor in weights(paths_a.model).items():
        assert torch.equal(tensor, weights(paths_b.model)[key]), key
    np.testing.assert_array_equal(np.load(paths_b.oof / "probs.npy"), np.load(paths_a.oof / "probs.npy"))
    for curve in CURVES:
        assert curve_rows(paths_b, curve) == curve_rows(paths_a, curve), curve
    assert json.loads((paths_b.live_dir / "metrics.json").read_text()) == \
        json.loads((paths_a.live_dir / "metrics.json").read_text())


def test_a_changed_train_param_ignores_the_old_checkpoint(prepared_dir, folds, tmp_path, monkeypatch, capsys):
    one_epoch = FAST.model_copy(update={"epochs": 1})
    interrupt_on_call(monkeypatch, "write_oof", 1)  # killed after the last epoch's checkpoint
    with pytest.raises(KeyboardInterrupt):
        run_fold(prepared_dir, folds, tmp_path, cfg=one_epoch)
    monkeypatch.undo()
    assert not torch.load(tmp_path / "last.pt", weights_only=False)["finished"]
    capsys.readouterr()
    metrics, paths = run_fold(prepared_dir, folds, tmp_path, cfg=one_epoch.model_copy(update={"lr": 0.002}))
    out = capsys.readouterr().out
    assert "from other params or data, starting fresh" in out and "epoch 1/1" in out
    assert metrics["epochs_run"] == 1 and len(curve_rows(paths)) == 2
    assert torch.load(paths.last, weights_only=False)["finished"]


def test_early_stopping_keeps_the_best_epoch(prepared_dir, folds, tmp_path, monkeypatch):
    scripted = iter([0.5, 0.6, 0.55, 0.58, 0.9, 0.9])
    monkeypatch.setattr(train_module, "evaluate", lambda *args, **kwargs: (1.0, [next(scripted)]))
    cfg = FAST.model_copy(update={"epochs": 6, "patience": 2, "batch_size": 32})
    metrics, paths = run_fold(prepared_dir, folds, tmp_path, cfg=cfg)
    assert metrics["epoch"] == 2 and metrics["val_dice"] == 0.6 and metrics["epochs_run"] == 4
    assert len(curve_rows(paths)) == 5
    assert torch.load(paths.model, weights_only=False)["epoch"] == 2


def test_lesion_sampling_sgd_cosine_focal_lovasz_per_sample_augmentation_train(prepared_dir, folds, tmp_path):
    cfg = FAST.model_copy(update={"epochs": 1, "sampling": "lesion", "optimizer": "sgd", "scheduler": "cosine",
                                  "loss": {"focal": 1.0, "lovasz": 0.5},
                                  "augment": Augment(batched=False, brightness=0.2)})
    metrics, paths = run_fold(prepared_dir, folds, tmp_path, cfg=cfg)
    assert np.isfinite([metrics["val_loss"], metrics["val_dice"], metrics["oof_dice"]]).all()
    assert float(curve_rows(paths, "lr")[-1].split("\t")[-1]) < cfg.lr * 0.3  # the last step's rate, cosine-annealed


def test_named_weights_without_network_fail_before_any_data_is_read(folds, tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no retries against a dead network
    missing = tmp_path / "no-data"
    paths = FoldPaths(missing / "images.npy", missing / "masks.npy", tmp_path / "m.pt", tmp_path / "o.npy",
                      tmp_path / "live", last=tmp_path / "last.pt")
    with pytest.raises(InputError, match=r"train\.encoder_weights: no 'imagenet' weights .* on this machine: .*"
                                         r"the download failed .*a local weights file"):
        train_fold(FAST.model_copy(update={"encoder_weights": "imagenet"}), folds, 1, paths, seed=5)


def test_predict_decodes_the_test_images_and_averages_folds_into_compressed_maps(competition, straight, tmp_path):
    model = straight[1].model
    images = ImagesToPredict(competition.test.image, competition.read_image, TINY_SIZE, channels=3)
    out = tmp_path / "test.npz"
    predict_test(load_fold_models({1: model}, "unet"), images, out, batch_size=3, workers=2)
    one = [read_map(out, row) for row in range(len(images))]
    predict_test(load_fold_models({0: model, 1: model}, "unet"), images, out, batch_size=5, workers=0)
    assert count_maps(out) == len(competition.test) and one[0].dtype == np.uint8 and one[0].shape == TINY_SIZE
    for row, prob in enumerate(one):  # the mean of two copies is the copy; workers or not, the same order
        np.testing.assert_array_equal(read_map(out, row), prob)
    by_hand = next(ensemble_batches(Ensemble([load_checkpoint(model)[0]], torch.device("cpu")), [images[0][None]]))
    np.testing.assert_array_equal(by_hand[0], one[0])  # row 0 is the first test image, decoded like prepare does


EMA = FAST.model_copy(update={"ema": 0.9})


def test_ema_weights_are_the_ones_validated_saved_and_resumed_identically(prepared_dir, folds, straight, tmp_path,
                                                                            monkeypatch):
    plain, plain_paths = straight
    averaged, paths_a = run_fold(prepared_dir, folds, tmp_path / "a", cfg=EMA)
    assert averaged["val_dice"] != plain["val_dice"]  # another set of weights was validated
    assert any(not torch.equal(t, weights(plain_paths.model)[k]) for k, t in weights(paths_a.model).items())
    interrupt_on_call(monkeypatch, "save_resume", 2)  # killed after epoch 2, before its resume state
    with pytest.raises(KeyboardInterrupt):
        run_fold(prepared_dir, folds, tmp_path / "b", cfg=EMA)
    monkeypatch.undo()
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=False)["ema"] is not None
    (tmp_path / "b" / "model.pt").unlink()
    resumed, paths_b = run_fold(prepared_dir, folds, tmp_path / "b", cfg=EMA)
    assert resumed == averaged
    for key, tensor in weights(paths_a.model).items():
        assert torch.equal(tensor, weights(paths_b.model)[key]), key
    np.testing.assert_array_equal(np.load(paths_b.oof / "probs.npy"), np.load(paths_a.oof / "probs.npy"))


def test_the_ema_follows_the_model_with_warm_up():
    from timm.utils import ModelEmaV3

    model = torch.nn.Linear(2, 1)
    ema = train_module._ema(model, FAST.model_copy(update={"ema": 0.99}))
    assert isinstance(ema, ModelEmaV3) and train_module._ema(model, FAST) is None
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model, step=1)  # the first step copies the model (warm-up decay 0)
    assert torch.equal(ema.module.weight, model.weight)
    with torch.no_grad():
        model.weight.fill_(3.0)
    ema.update(model, step=2)  # then moves part of the way, less with every step
    assert 1.0 < ema.module.weight.detach()[0, 0].item() < 3.0


def test_context_trains_on_slice_stacks_and_predicts_the_test_stacks(prepared_dir, folds, competition, tmp_path):
    """train.context=1: 3 slices x 3 channels in, for OOF (metrics) and for the test images alike."""
    cfg = FAST.model_copy(update={"epochs": 1, "context": 1})
    metrics, paths = run_fold(prepared_dir, folds, tmp_path, cfg=cfg)
    assert 0 <= metrics["oof_dice"] <= 1
    assert np.load(paths.oof / "probs.npy").shape == ((folds.fold == 1).sum(), *TINY_SIZE)
    _, checkpoint = load_checkpoint(paths.model)
    assert checkpoint["spec"]["in_channels"] == 9 and checkpoint["contract"]["context"] == 1
    test = competition.test.reset_index(drop=True)
    flat = ImagesToPredict(test.image, competition.read_image, TINY_SIZE, channels=3)
    stacked = ImagesToPredict(test.image, competition.read_image, TINY_SIZE, channels=3,
                              neighbours=neighbour_rows(test, 1, "test"))
    first = int(np.flatnonzero(test.group == test.group[0])[np.argmin(test.slice[test.group == test.group[0]])])
    below, middle, above = np.split(stacked[first].numpy(), 3, axis=-1)
    np.testing.assert_array_equal(middle, flat[first].numpy())
    np.testing.assert_array_equal(below, middle)  # the first slice of a stack is repeated below it
    loaded = load_fold_models({1: paths.model}, "unet")
    assert (loaded.contract.in_channels, loaded.contract.context) == (9, 1)
    predict_test(loaded, stacked, tmp_path / "test.npz", batch_size=4)
    assert count_maps(tmp_path / "test.npz") == len(test)


def test_oof_and_test_maps_are_made_under_one_contract(prepared_dir, folds, competition, tmp_path, monkeypatch):
    """With train.amp false (channels_last off, per-image normalisation), the OOF pass and predict run the
    network the same way: both build their ensemble from the checkpoint's contract, and nothing falls back
    to a default."""
    made, normalised = [], []
    real = Ensemble.__init__
    real_input = ensemble_module.to_model_input

    def recording(self, models, device, **kwargs):
        real(self, models, device, **kwargs)
        made.append((self.amp, self.channels_last, self.in_channels, len(kwargs)))

    monkeypatch.setattr(Ensemble, "__init__", recording)
    monkeypatch.setattr(ensemble_module, "to_model_input",
                        lambda *args: normalised.append(args[-1]) or real_input(*args))
    cfg = FAST.model_copy(update={"epochs": 1, "amp": False, "channels_last": False, "normalize": "image"})
    _, paths = run_fold(prepared_dir, folds, tmp_path, cfg=cfg)
    loaded = load_fold_models({1: paths.model}, "unet")
    assert (loaded.contract.amp, loaded.contract.channels_last, loaded.contract.normalize) == (False, False, "image")
    images = ImagesToPredict(competition.test.image, competition.read_image, TINY_SIZE, channels=3)
    predict_test(loaded, images, tmp_path / "test.npz", batch_size=4)
    oof_pass, test_pass = made
    assert oof_pass == test_pass and oof_pass[:3] == (False, False, 3)
    assert normalised and set(normalised) == {"image"}  # the OOF pass's batches and the test's


def test_a_checkpoint_without_a_contract_is_refused_naming_the_stage(tmp_path):
    from segpipe.network.model import ModelSpec, build_model, save_checkpoint

    spec = ModelSpec("Unet", "resnet18", 3, (16, 8, 8), 3)
    path = tmp_path / "models" / "unet" / "fold2.pt"
    save_checkpoint(path, build_model(spec), spec, epoch=1)  # as before checkpoints carried one
    with pytest.raises(InputError, match=r"fold2.pt: checkpoint has no valid inference contract.*train@unet-2"):
        load_fold_models({2: path}, "unet")


def test_an_epoch_is_steps_over_epochs_batches_however_few_the_images(prepared_dir, folds, tmp_path):
    from segpipe.training.fold import build_loaders

    paths = FoldPaths(prepared_dir / "train_images.npy", prepared_dir / "train_masks.npy",
                      tmp_path / "model.pt", tmp_path / "oof", tmp_path / "live")
    train_rows = np.flatnonzero(folds.fold.to_numpy() != 1)
    val_rows = np.flatnonzero(folds.fold.to_numpy() == 1)
    for sampling in ("uniform", "lesion"):
        cfg = FAST.model_copy(update={"steps": 40, "epochs": 4, "sampling": sampling})  # 10 batches: ~3 passes
        loader, _ = build_loaders(cfg, paths, train_rows, val_rows, seed=1)
        batches = [masks for _, masks in loader]
        assert len(batches) == cfg.steps_per_epoch == 10 and all(len(b) == cfg.batch_size for b in batches)
        assert cfg.steps_per_epoch * cfg.batch_size > len(train_rows)  # more draws than images: passes repeat


def test_a_fold_that_learned_nothing_is_named(prepared_dir, folds, tmp_path, capsys):
    cfg = FAST.model_copy(update={"epochs": 1, "steps": 1, "lr": 1e-9})
    metrics, _ = run_fold(prepared_dir, folds, tmp_path, cfg=cfg)
    assert metrics["steps"] == 1 and not metrics["learned"]
    assert metrics["val_dice"] < metrics["val_empty_dice"] + 0.01
    assert "fold 1: val dice never rose above" in capsys.readouterr().err


def test_the_metrics_count_the_steps_run(straight):
    metrics, _ = straight
    assert metrics["steps"] == FAST.steps and metrics["epochs_run"] == FAST.epochs
