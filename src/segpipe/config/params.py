"""Typed, strict views of `params.yaml`.

Every section loads into a frozen pydantic model that forbids unknown keys, so a misspelt
key or a wrong type fails at stage start with its dotted name, before any heavy work.
Library code never reads params.yaml; stages load it here and pass plain values on.
The sections the train stages read live in `segpipe.config.train` (and `segpipe.config.sections`),
so that a new section here for another stage never retrains a model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from segpipe.config.sections import Base, Section, read_params, validate
from segpipe.config.train import DEFAULT_MODELS, Augment, Train, check_models, with_overrides

__all__ = ["Augment", "Base", "Params", "Train", "load_params"]


class DatasetSection(Section):
    """Options of one dataset adapter; `holdout_patients` is understood by all of them."""

    holdout_patients: float = Field(0.0, ge=0, lt=1)  # patients moved to a labelled, scored test set

    def adapter_options(self) -> dict:
        """The options the adapter's download/load take (holdout is applied generically)."""
        return self.model_dump(exclude={"holdout_patients"})


class Synthetic(DatasetSection):
    train_patients: PositiveInt = 32
    test_patients: PositiveInt = 8
    slices_per_patient: PositiveInt = 16
    height: PositiveInt = 100
    width: PositiveInt = 100
    kind: Literal["brain", "thin"] = "brain"  # brain: MRI-like lesion slices; thin: thin structures on large images


class Carvana(DatasetSection):
    source: str = "data/sources/carvana"  # an existing copy (folder or zip); this default is segpipe's own


class Nerve(DatasetSection):
    source: str = "data/sources/nerve"


class Lgg(DatasetSection):
    source: str = "data/sources/lgg"
    holdout_patients: float = Field(0.2, ge=0, lt=1)


class Folder(DatasetSection):
    source: str = "data/sources/folder"  # the user's data folder (or a zip of it)
    train_images: str = "train/*.png"
    mask: str = "{stem}_mask.png"
    test_images: str | None = None
    group_regex: str | None = None
    rle_order: Literal["C", "F"] = "F"
    holdout_patients: float | None = Field(None, ge=0, lt=1)

    @model_validator(mode="after")
    def _holdout_without_test(self) -> "Folder":
        if self.holdout_patients is None:  # like LGG when there is no test set
            object.__setattr__(self, "holdout_patients", 0.0 if self.test_images else 0.2)
        return self


class Prepare(Section):
    mode: Literal["resize", "tile"] = "resize"  # resize: whole images at `size`; tile: at `scale`, crops of `tile`
    size: tuple[PositiveInt, PositiveInt] = (64, 64)
    scale: float = Field(1.0, gt=0, le=1)  # tile mode: 1 = native resolution, 0.5 = half
    tile: tuple[PositiveInt, PositiveInt] = (256, 256)  # tile mode: the crop the model sees
    workers: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _multiple_of_32(self) -> "Prepare":
        key, sides = ("tile", self.tile) if self.mode == "tile" else ("size", self.size)
        if any(side % 32 for side in sides):
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


class Threshold(Section):
    start: float = Field(0.1, gt=0, lt=1)
    stop: float = Field(0.9, gt=0, lt=1)
    step: float = Field(0.05, gt=0)
    gate_areas: tuple[int, ...] = (0, 5, 10, 20, 40, 80)
    gate_thresholds: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
    min_components: tuple[int, ...] = (0, 5, 10, 20, 40)
    keep_largest: tuple[int, ...] = (0, 1, 2)

    @property
    def grid(self) -> list[float]:
        """The thresholds to try, rounded so the grid is the same on every machine."""
        count = int(round((self.stop - self.start) / self.step)) + 1
        return [round(self.start + i * self.step, 6) for i in range(count)]


class Blend(Section):
    iterations: PositiveInt = 20  # greedy forward-selection steps (with replacement) over the models' OOF maps


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
