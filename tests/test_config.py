from pathlib import Path

import pytest
import yaml

from segpipe.config import Params, load_params
from segpipe.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_repo_params_are_valid_and_explicit():
    params = load_params(ROOT / "params.yaml")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    # every section and knob is spelled out in params.yaml, not left to a default
    assert set(raw) == set(Params.model_fields)
    for section, model in Params.model_fields.items():
        assert set(raw[section]) == set(model.annotation.model_fields), section
    assert params.prepare.size[0] % 32 == 0


@pytest.mark.parametrize(
    "params, named",
    [
        ({"train": {"lrr": 0.1}}, "train.lrr"),
        ({"trian": {}}, "trian"),
        ({"train": {"epochs": "many"}}, "train.epochs"),
        ({"prepare": {"size": [100, 64]}}, "multiples of 32"),
        ({"folds": {"n_splits": 3, "train": [0, 3]}}, "folds"),
        ({"train": {"encoder_depth": 4}}, "decoder_channels"),
        ({"train": {"optimizer": "adam"}}, "train.optimizer"),
        ({"train": {"sampling": "weighted"}}, "train.sampling"),
        ({"train": {"patience": -1}}, "train.patience"),
    ],
)
def test_bad_params_fail_naming_the_key(tmp_path, params, named):
    with pytest.raises(InputError, match=named.replace(".", r"\.")):
        load_params(write(tmp_path, params))


def test_threshold_grid_is_inclusive_and_rounded():
    grid = Params.model_validate({"threshold": {"start": 0.3, "stop": 0.7, "step": 0.1}}).threshold.grid
    assert grid == [0.3, 0.4, 0.5, 0.6, 0.7]
