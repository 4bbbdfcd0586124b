"""What every params section shares: strict frozen models, the `base` section, loading with named errors.

Its own module (with `segpipe.config.train`) so that the train stages, which read only
`base`, `train` and `models`, do not depend on the sections of the other stages.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from segpipe.core.errors import InputError

Model = TypeVar("Model", bound=BaseModel)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Base(Section):
    seed: int = 42
    dataset: Literal["synthetic", "carvana", "nerve", "lgg", "folder"] = "synthetic"
    kaggle_input: str = "/kaggle/input"  # where a Kaggle Notebook mounts its inputs


def read_params(path: Path | str) -> dict:
    """The params file as a dict; InputError naming the file when it cannot be read."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise InputError(f"{path}: cannot read params: {err}") from err


def validate(model: type[Model], raw: dict, path: Path | str) -> Model:
    """`model` validated from `raw`; InputError naming every bad key by its dotted path."""
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '<top>'}: {e['msg']}" for e in err.errors()
        )
        raise InputError(f"{path}: {problems}") from None
