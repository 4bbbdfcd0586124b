"""Predict-time faults: a missing or damaged fold checkpoint names the fold and how to rebuild it."""
import re

import numpy as np
import pytest

from segpipe.errors import InputError
from segpipe.model import ModelSpec, build_model, save_checkpoint
from segpipe.predict import predict_test

SPEC = ModelSpec(encoder_name="resnet18", encoder_depth=3, decoder_channels=(16, 8, 8))


@pytest.fixture(scope="module")
def fold0(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "fold0.pt"
    save_checkpoint(path, build_model(SPEC), SPEC, epoch=1)
    return path


@pytest.mark.parametrize("damage", ["missing", "truncated", "not a checkpoint"])
def test_a_bad_fold_checkpoint_names_the_fold_and_writes_nothing(fold0, tmp_path, damage):
    broken = tmp_path / "fold1.pt"
    if damage == "truncated":
        broken.write_bytes(fold0.read_bytes()[:5000])
    elif damage == "not a checkpoint":
        broken.write_text("version https://git-lfs.github.com/spec/v1\n")  # e.g. an LFS pointer
    images = tmp_path / "test_images.npy"
    np.save(images, np.zeros((3, 32, 32, 3), np.uint8))
    out = tmp_path / "preds" / "test.npy"
    with pytest.raises(InputError, match=re.escape(str(broken)) + r": checkpoint .*`dvc repro train@1`"):
        predict_test({0: fold0, 1: broken}, images, out, batch_size=2)
    assert not out.parent.exists() or not list(out.parent.iterdir())
