"""Predict-time faults: a damaged fold checkpoint or test image is named, and nothing is written."""
import re

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from segpipe.core.errors import InputError
from segpipe.datasets import readers
from segpipe.inference.predict import FoldModels, ImagesToPredict, load_fold_models, predict_test
from segpipe.network.contract import InferenceContract
from segpipe.network.model import ModelSpec, build_model, save_checkpoint


def contract(in_channels: int, context: int) -> dict:
    return InferenceContract(in_channels, context, window_step=0.5, amp=True, channels_last=True).to_dict()


SPEC = ModelSpec(arch="Unet", in_channels=3, encoder_name="resnet18", encoder_depth=3, decoder_channels=(16, 8, 8))


@pytest.fixture(scope="module")
def fold0(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "unet" / "fold0.pt"
    save_checkpoint(path, build_model(SPEC), SPEC, epoch=1, contract=contract(3, 0))
    return path


@pytest.mark.parametrize("damage", ["missing", "truncated", "not a checkpoint"])
def test_a_bad_fold_checkpoint_names_the_fold_and_writes_nothing(fold0, tmp_path, damage):
    broken = tmp_path / "unet" / "fold1.pt"
    broken.parent.mkdir()
    if damage == "truncated":
        broken.write_bytes(fold0.read_bytes()[:5000])
    elif damage == "not a checkpoint":
        broken.write_text("version https://git-lfs.github.com/spec/v1\n")  # e.g. an LFS pointer
    with pytest.raises(InputError, match=re.escape(str(broken)) + r": checkpoint .*`dvc repro train@unet-1`"):
        load_fold_models({0: fold0, 1: broken}, "unet")


def test_fold_models_of_one_model_must_share_one_contract(fold0, tmp_path):
    wide = tmp_path / "fold1.pt"
    spec = ModelSpec(arch="Unet", in_channels=9, encoder_name="resnet18", encoder_depth=3, decoder_channels=(16, 8, 8))
    save_checkpoint(wide, build_model(spec), spec, epoch=1, contract=contract(9, 1))
    with pytest.raises(InputError, match=r"fold models of unet were trained to run differently .*in_channels=3.*"
                                         r"in_channels=9, context=1"):
        load_fold_models({0: fold0, 1: wide}, "unet")
    loaded = load_fold_models({1: wide}, "unet")
    assert len(loaded.models) == 1 and loaded.contract == InferenceContract(9, 1, 0.5, True, True)


def test_a_bad_test_image_is_named_without_the_workers_traceback(fold0, tmp_path):
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    cv2.imwrite(str(good), np.zeros((20, 20, 3), np.uint8))
    bad.write_bytes(b"not a png")
    images = ImagesToPredict([good, bad, good], readers.read_rgb, (32, 32), 3)
    out = tmp_path / "preds" / "test.npz"
    with pytest.raises(InputError) as err:
        predict_test(load_fold_models({0: fold0}, "unet"), images, out, batch_size=1, workers=2)
    assert str(err.value) == f"{bad}: cannot decode image (missing, truncated or not an image)"
    assert not out.exists()


def test_a_fold_checkpoint_with_non_finite_weights_is_refused_naming_it(tmp_path):
    """A diverged run's weights load without complaint and predict an empty mask everywhere."""
    model = build_model(SPEC)
    with torch.no_grad():
        model.segmentation_head[0].weight.view(-1)[0] = float("inf")
    path = tmp_path / "unet" / "fold1.pt"
    save_checkpoint(path, model, SPEC, epoch=1, contract=contract(3, 0))
    with pytest.raises(InputError, match=re.escape(str(path)) + r": 1 of \d+ weights are not finite \(NaN or "
                                      r"infinite\), in segmentation_head.0.weight; .*`dvc repro train@unet-1`"):
        load_fold_models({1: path}, "unet")


class NanLogits(nn.Module):
    def forward(self, x):
        return x[:, :1] * float("nan")


def test_non_finite_probabilities_name_the_model_file_and_write_nothing(tmp_path):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((20, 20, 3), np.uint8))
    folds = FoldModels([build_model(SPEC), NanLogits()], InferenceContract.from_dict(contract(3, 0)),
                       files=("models/unet/fold0.pt", "models/unet/fold1.pt"))
    out = tmp_path / "preds" / "test.npz"
    with pytest.raises(InputError, match=r"^models/unet/fold1.pt: gives non-finite probabilities"):
        predict_test(folds, ImagesToPredict([image], readers.read_rgb, (32, 32), 3), out, batch_size=1)
    assert not out.exists()
