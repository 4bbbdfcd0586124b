"""The params of the data stages and of predict/submit: `prepare`, `folds`, `predict`, and the datasets' sections.

download, prepare, folds, predict and submit load `DataParams`: the sections here, `base`,
and the model names (which models exist, not how they train), so that editing `train`
reruns none of them. A dataset's section is kept as it is written and validated by its own
adapter when the dataset is chosen (`segpipe.datasets.section_of`), so that a stage that
loads no dataset never depends on the adapters' code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import ConfigDict, Field, PositiveInt, model_validator

from segpipe.config.sections import (DEFAULT_MODELS, Base, Section, StageParams, check_model_names, dataset_names,
                                     read_params, validate)


Side2 = tuple[PositiveInt, PositiveInt]


class Prepare(Section):
    """How the training images are cached; `auto` keys are resolved by the plan (`segpipe.plan.rules`)."""

    mode: Literal["resize", "tile", "auto"] = "auto"  # resize: whole images at `size`; tile: `scale`, `tile` crops
    size: Union[Side2, Literal["auto"]] = "auto"
    scale: Union[Annotated[float, Field(gt=0, le=1)], Literal["auto"]] = "auto"  # tile mode: 1 = native, 0.5 = half
    tile: Union[Side2, Literal["auto"]] = "auto"  # tile mode: the crop the model sees
    max_size: Union[Side2, Literal["auto"]] = "auto"  # the plan's budget: an auto size or tile has at most this
    # many pixels; auto: the device's (`segpipe.plan.device_rules`)
    workers: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _multiple_of_32(self) -> "Prepare":
        for key in ("size", "tile", "max_size"):
            sides = getattr(self, key)
            if sides != "auto" and any(side % 32 for side in sides):
                raise ValueError(f"{key} {list(sides)} must be multiples of 32 (U-Net downsamples 5 times)")
        return self


class Folds(Section):
    n_splits: int = Field(5, ge=2)
    train: tuple[int, ...] = (0, 1, 2, 3, 4)

    @model_validator(mode="after")
    def _train_folds_exist(self) -> "Folds":
        bad = [k for k in self.train if not 0 <= k < self.n_splits]
        if bad or not self.train or len(set(self.train)) != len(self.train):
            raise ValueError(f"train {list(self.train)} must be distinct fold numbers in 0..{self.n_splits - 1}")
        return self


class Predict(Section):
    batch_size: PositiveInt = 64
    workers: int = Field(2, ge=0)  # DataLoader processes decoding test images; 0 = in the main process


class DataParams(StageParams):
    """The sections the data stages, predict and submit read; the datasets' sections as written."""

    model_config = ConfigDict(extra="allow", frozen=True)  # the other sections, unchecked here (see `section`)

    base: Base = Base()
    prepare: Prepare = Prepare()
    folds: Folds = Folds()
    predict: Predict = Predict()
    models: dict[str, dict] = DEFAULT_MODELS  # read for the names only; `segpipe.config.train` checks the rest

    @model_validator(mode="after")
    def _model_names(self) -> "DataParams":
        check_model_names(self.models)
        return self

    def section(self, name: str) -> dict:
        """Dataset `name`'s section as params.yaml writes it ({} when absent)."""
        if name not in dataset_names():
            raise KeyError(f"{name} is no dataset ({', '.join(dataset_names())})")
        return dict((self.model_extra or {}).get(name) or {})


def load_data_params(path: Path | str = "params.yaml") -> DataParams:
    """The data stages' sections of the params file, validated; InputError naming each bad key."""
    return validate(DataParams, read_params(path), path)
