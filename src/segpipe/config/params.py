"""The whole of `params.yaml` as one typed, strict view, for notebooks, tests and benchmarks.

Every section loads into a frozen pydantic model that forbids unknown keys, so a misspelt
key or a wrong type fails with its dotted name before any heavy work. Stages do not load
this: each loads only its own sections (`segpipe.config.data`, `.train`, `.evaluation`), so
that a change to one section's code never reruns a stage that does not read it.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import model_validator

from segpipe.config.data import Carvana, DatasetSection, Folder, Folds, Lgg, Nerve, Predict, Prepare, Synthetic
from segpipe.config.evaluation import Blend, Threshold
from segpipe.config.sections import DEFAULT_MODELS, Base, Section, read_params, validate
from segpipe.config.train import Augment, Train, check_models, with_overrides

__all__ = ["Augment", "Base", "Params", "Train", "load_params"]


class Params(Section):
    base: Base = Base()
    synthetic: Synthetic = Synthetic()
    carvana: Carvana = Carvana()
    nerve: Nerve = Nerve()
    lgg: Lgg = Lgg()
    folder: Folder = Folder()
    prepare: Prepare = Prepare()
    folds: Folds = Folds()
    train: Train = Train()
    models: dict[str, dict] = DEFAULT_MODELS  # model name -> overrides of `train` keys
    predict: Predict = Predict()
    blend: Blend = Blend()
    threshold: Threshold = Threshold()

    @model_validator(mode="after")
    def _models_valid(self) -> "Params":
        check_models(self.train, self.models)
        return self

    def model(self, name: str) -> Train:
        """`train` with the overrides of `models.<name>` (`augment` is merged key by key)."""
        return with_overrides(self.train, self.models, name)

    @property
    def dataset(self) -> DatasetSection:
        """The options section of the chosen dataset (`base.dataset`)."""
        return getattr(self, self.base.dataset)


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate the whole params file; raise InputError naming each bad key."""
    return validate(Params, read_params(path), path)
