"""The params of blend, threshold and report: `folds`, the model names, `blend` and `threshold`."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Union

from pydantic import PositiveInt, model_validator

from segpipe.config.data import Folds
from segpipe.config.sections import DEFAULT_MODELS, Section, StageParams, check_model_names, read_params, validate


class Blend(Section):
    iterations: PositiveInt = 20  # greedy forward-selection steps (with replacement) over the models' OOF maps
    per_class: bool = False  # with classes: a bag of models per class, each on its own class's OOF Dice


class Threshold(Section):
    """Grids of the post-processing search; the pixel threshold itself is searched over every uint8 cut."""

    gate_areas: Union[tuple[int, ...], Literal["auto"]] = "auto"  # auto: from the objects' sizes (the plan)
    gate_thresholds: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
    min_components: Union[tuple[int, ...], Literal["auto"]] = "auto"
    keep_largest: tuple[int, ...] = (0, 1, 2)
    # a multi-label competition: a class's own grids, any of the keys above, e.g. {spot: {min_components: [0, 20]}}
    classes: dict[str, dict] = {}

    def of_class(self, name: str) -> "Threshold":
        """The grids class `name` is searched with: these, with its own keys from `classes`."""
        return Threshold.model_validate({**self.model_dump(exclude={"classes"}), **self.classes.get(name, {})})

    @model_validator(mode="after")
    def _classes(self) -> "Threshold":
        grid_keys = set(Threshold.model_fields) - {"classes"}
        for name, keys in self.classes.items():
            unknown = sorted(set(keys) - grid_keys)
            if unknown:
                raise ValueError(f"classes.{name}: unknown keys {unknown} (a class may set {sorted(grid_keys)})")
            Threshold.model_validate(keys)  # the same ranges as the shared grids
        return self

    @model_validator(mode="after")
    def _in_range(self) -> "Threshold":
        sized = [value for key in ("gate_areas", "min_components") if getattr(self, key) != "auto"
                 for value in getattr(self, key)]
        if any(a < 0 for a in (*sized, *self.keep_largest)):
            raise ValueError("gate_areas, min_components and keep_largest must be >= 0")
        if any(not 0 < g < 1 for g in self.gate_thresholds):
            raise ValueError("gate_thresholds must lie between 0 and 1")
        return self


class EvaluationParams(StageParams):
    """The sections blend, threshold and report read."""

    folds: Folds = Folds()
    models: dict[str, dict] = DEFAULT_MODELS  # read for the names only
    blend: Blend = Blend()
    threshold: Threshold = Threshold()

    @model_validator(mode="after")
    def _model_names(self) -> "EvaluationParams":
        check_model_names(self.models)
        return self


def load_evaluation_params(path: Path | str = "params.yaml") -> EvaluationParams:
    """The blend/threshold/report sections of the params file, validated; InputError naming each bad key."""
    return validate(EvaluationParams, read_params(path), path)
