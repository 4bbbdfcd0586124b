"""What every params section shares: strict frozen models, the `base` section, loading with named errors.

Each stage loads only the sections it reads (`StageParams`): the train stages `segpipe.config.train`,
the data stages `segpipe.config.data`, blend/threshold/report `segpipe.config.evaluation`. So a
change to one section's code reruns only the stages that read it. `segpipe.config.params`
validates the whole file at once, for notebooks and tests.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from segpipe.core.errors import InputError

Model = TypeVar("Model", bound=BaseModel)
# The top-level sections of params.yaml besides one per dataset; a stage rejects any other key, though it
# reads only its own.
STAGE_SECTIONS = ("base", "prepare", "folds", "train", "models", "predict", "blend", "threshold", "bundle")
# One module per dataset, named as its params section (`segpipe.datasets.adapters`). Listed, not imported:
# a stage that never loads a dataset never depends on the adapters' code.
ADAPTERS = Path(__file__).resolve().parents[1] / "datasets" / "adapters"
MODEL_NAME = r"^[a-z][a-z0-9_]*$"  # becomes a path component and part of a DVC stage name
DEFAULT_MODELS = {"unet": {}}


def dataset_names() -> tuple[str, ...]:
    """The datasets `base.dataset` may name: the modules of `segpipe.datasets.adapters`."""
    return tuple(sorted(path.stem for path in ADAPTERS.glob("*.py") if not path.stem.startswith("_")))


def sections() -> tuple[str, ...]:
    """Every top-level section params.yaml may have: the stages' and one per dataset."""
    return STAGE_SECTIONS + dataset_names()


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Base(Section):
    seed: int = 42
    dataset: str = "synthetic"  # a module of segpipe.datasets.adapters: its section holds the options
    kaggle_input: str = "/kaggle/input"  # where a Kaggle Notebook mounts its inputs
    device: Literal["auto", "cpu"] = "auto"  # the device the plan is for: auto = this machine's; cpu = a CPU's plan
    weights_dirs: tuple[str, ...] = ()  # folders searched for named pretrained weights (besides the Hugging Face
    # cache and kaggle_input)

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        if name not in dataset_names():
            raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(dataset_names())}")
        return name


class StageParams(BaseModel):
    """The sections one stage reads; the others are left to their stages, but a key that is no
    section at all (a misspelt `treshold:`) stops every stage."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_sections(cls, raw):
        unknown = sorted(set(raw) - set(sections())) if isinstance(raw, dict) else []
        if unknown:
            raise ValueError(f"unknown section {', '.join(unknown)} (the sections are {', '.join(sections())})")
        return raw


def check_model_names(models: dict[str, dict]) -> None:
    """Raise ValueError unless there is a model and every name is fit for a path and a stage name."""
    if not models:
        raise ValueError("models: needs at least one model (name: {} trains `train` as it is)")
    for name in models:
        if not re.match(MODEL_NAME, name):
            raise ValueError(f"models.{name}: a model name is lower case letters, digits and _, "
                             "starting with a letter (it names stages and folders)")


def read_params(path: Path | str) -> dict:
    """The params file as a dict; InputError naming the file when it cannot be read."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise InputError(f"{path}: cannot read params: {err}") from err


def validate(model: type[Model], raw: dict, path: Path | str, within: str = "") -> Model:
    """`model` validated from `raw` (the section `within`, if given); InputError naming every bad key by its
    dotted path."""
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in ([within] if within else []) + list(e['loc'])) or '<top>'}: {e['msg']}"
            for e in err.errors()
        )
        raise InputError(f"{path}: {problems}") from None


class BaseParams(StageParams):
    """Only `base`: what a stage reads whose other inputs come from the plan (train)."""

    base: Base = Base()


def load_base(path: Path | str = "params.yaml") -> Base:
    """The `base` section of the params file, validated (the other sections only by name)."""
    return validate(BaseParams, read_params(path), path).base
