"""The params of blend, threshold and report: `folds`, the model names, `blend` and `threshold`."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Union

from pydantic import PositiveInt, model_validator

from segpipe.config.data import Folds
from segpipe.config.sections import DEFAULT_MODELS, Section, StageParams, check_model_names, read_params, validate


class Blend(Section):
    iterations: PositiveInt = 20  # greedy forward-selection steps (with replacement) over the models' OOF maps


class Threshold(Section):
    """Grids of the post-processing search; the pixel threshold itself is searched over every uint8 cut."""

    gate_areas: Union[tuple[int, ...], Literal["auto"]] = "auto"  # auto: from the objects' sizes (the plan)
    gate_thresholds: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
    min_components: Union[tuple[int, ...], Literal["auto"]] = "auto"
    keep_largest: tuple[int, ...] = (0, 1, 2)

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
