"""The whole of `params.yaml` as one typed, strict view, for notebooks, tests and benchmarks.

Every section loads into a frozen pydantic model that forbids unknown keys, so a misspelt
key or a wrong type fails with its dotted name before any heavy work; each dataset's section
into its adapter's `Params`. Stages do not load
this: each loads only its own sections (`segpipe.config.data`, `.train`, `.evaluation`), so
that a change to one section's code never reruns a stage that does not read it.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import ConfigDict, model_validator

from segpipe import datasets
from segpipe.config.bundle import Bundle
from segpipe.config.data import DataParams
from segpipe.config.evaluation import Blend, Threshold
from segpipe.config.sections import Base, read_params, validate
from segpipe.config.train import Augment, Train, check_models, with_overrides

__all__ = ["Augment", "Base", "Params", "Train", "load_params"]


class Params(DataParams):
    """The data stages' sections with `train`, `blend`, `threshold` and `bundle`; no key of any section left unchecked."""

    model_config = ConfigDict(extra="allow", frozen=True)  # the datasets' sections, checked by `load_params`

    train: Train = Train()
    blend: Blend = Blend()
    threshold: Threshold = Threshold()
    bundle: Bundle = Bundle()

    @model_validator(mode="after")
    def _models_valid(self) -> "Params":
        check_models(self.train, self.models)  # the overrides too, not only the names
        return self

    def dataset(self, name: str | None = None) -> "datasets.DatasetSection":
        """Dataset `name`'s section (the chosen one's by default), validated by its adapter."""
        return datasets.section_of(self, name)

    def model(self, name: str) -> Train:
        """`train` with the overrides of `models.<name>` (`augment` is merged key by key)."""
        return with_overrides(self.train, self.models, name)


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate the whole params file, each dataset's section by its adapter; raise InputError naming
    each bad key."""
    params = validate(Params, read_params(path), path)
    for name in params.model_extra or {}:
        datasets.section_of(params, name, path)
    return params
