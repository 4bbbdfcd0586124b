from pathlib import Path

import pytest
import yaml

from segpipe import datasets
from segpipe.config.params import Params, load_params
from segpipe.config.sections import dataset_names
from segpipe.core.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_repo_params_are_valid_and_explicit():
    params = load_params(ROOT / "params.yaml")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    # every section and knob is spelled out in params.yaml, not left to a default
    assert set(raw) == set(Params.model_fields) | set(dataset_names())
    for section, model in Params.model_fields.items():
        if section != "models":  # a mapping of names, not a section of knobs
            assert set(raw[section]) == set(model.annotation.model_fields), section
    for name in dataset_names():  # each dataset's section is its adapter's
        assert set(raw[name]) == set(datasets.adapter(name).Params.model_fields), name
    assert params.prepare.size == params.train.steps == params.threshold.gate_areas == "auto"  # the plan decides


def test_params_yaml_and_the_code_defaults_agree():
    """One set of defaults: the pydantic defaults are exactly params.yaml, so library code built
    without a params file (tests, notebooks) trains what `dvc repro` trains."""
    params = load_params(ROOT / "params.yaml")
    assert Params().model_dump() == {k: v for k, v in params.model_dump().items() if k not in dataset_names()}
    for name in dataset_names():
        assert datasets.adapter(name).Params() == params.dataset(name), name


def test_a_model_is_train_with_its_overrides():
    params = Params.model_validate({"train": {"lr": 0.01, "augment": {"rotate": 10}},
                                    "models": {"unet": {}, "fpn": {"arch": "FPN", "lr": 0.003,
                                                                   "augment": {"hflip": 0.0}}}})
    assert params.model("unet") == params.train
    fpn = params.model("fpn")
    assert (fpn.arch, fpn.lr, fpn.epochs) == ("FPN", 0.003, params.train.epochs)
    assert (fpn.augment.hflip, fpn.augment.rotate) == (0.0, 10)  # augment merged key by key
    with pytest.raises(InputError, match="no model 'deeplab'"):
        params.model("deeplab")


@pytest.mark.parametrize("models, named", [
    ({"fpn": {"lrr": 0.1}}, r"models\.fpn\.lrr"),
    ({"fpn": {"epochs": 0}}, r"models\.fpn\.epochs"),
    ({"Big-Net": {}}, "a model name is lower case"),
    ({}, "needs at least one model"),
])
def test_bad_models_fail_naming_the_key(tmp_path, models, named):
    with pytest.raises(InputError, match=named):
        load_params(write(tmp_path, {"models": models}))


@pytest.mark.parametrize(
    "params, named",
    [
        ({"train": {"lrr": 0.1}}, "train.lrr"),
        ({"trian": {}}, "trian"),
        ({"train": {"epochs": "many"}}, "train.epochs"),
        ({"prepare": {"size": [100, 64]}}, "multiples of 32"),
        ({"folds": {"n_splits": 3, "train": [0, 3]}}, "folds"),
        ({"train": {"encoder_depth": 4, "decoder_channels": [64, 32, 16, 16, 8]}}, "decoder_channels"),
        ({"train": {"num_workers": -1}}, "train.num_workers"),
        ({"base": {"device": "tpu"}}, "base.device"),
        ({"train": {"optimizer": "adam"}}, "train.optimizer"),
        ({"train": {"sampling": "weighted"}}, "train.sampling"),
        ({"train": {"patience": -1}}, "train.patience"),
        ({"train": {"context": -1}}, "train.context"),
        ({"train": {"clip_grad": -1.0}}, "train.clip_grad"),
        ({"lgg": {"sourc": "x"}}, "lgg.sourc"),  # a dataset's section, checked by its adapter
        ({"synthetic": {"kind": "circles"}}, "synthetic.kind"),
        ({"base": {"dataset": "cells"}}, "unknown dataset 'cells'; choose one of carvana, clouds"),
    ],
)
def test_bad_params_fail_naming_the_key(tmp_path, params, named):
    with pytest.raises(InputError, match=named.replace(".", r"\.")):
        load_params(write(tmp_path, params))


def test_a_dataset_section_is_checked_by_its_adapter_when_chosen(tmp_path):
    """The data stages keep a dataset's section as written; the chosen one is validated by its adapter."""
    from segpipe.config.data import load_data_params

    params = load_data_params(write(tmp_path, {"base": {"dataset": "lgg"}, "lgg": {"holdout_patients": 0.3}}))
    assert datasets.section_of(params).holdout_patients == 0.3
    assert datasets.section_of(params).source == "data/sources/lgg"  # the adapter's default
    assert datasets.section_of(params, "folder").holdout_patients == 0.2  # no test_images: a holdout
    bad = load_data_params(write(tmp_path, {"base": {"dataset": "lgg"}, "lgg": {"holdout": 0.3}}))
    with pytest.raises(InputError, match=r"lgg\.holdout: Extra inputs"):
        datasets.section_of(bad)
