"""Typed, strict views of `params.yaml`.

Every section loads into a frozen pydantic model that forbids unknown keys, so a misspelt
key or a wrong type fails at stage start with its dotted name, before any heavy work.
Library code never reads params.yaml; stages load it here and pass plain values on.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from segpipe.errors import InputError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Base(Section):
    seed: int = 42
    dataset: Literal["synthetic", "carvana", "nerve", "lgg", "folder"] = "synthetic"
    kaggle_input: str = "/kaggle/input"  # where a Kaggle Notebook mounts its inputs


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
    size: tuple[PositiveInt, PositiveInt] = (64, 64)
    workers: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _multiple_of_32(self) -> "Prepare":
        if any(side % 32 for side in self.size):
            raise ValueError(f"size {list(self.size)} must be multiples of 32 (U-Net downsamples 5 times)")
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


class Augment(Section):
    scale: float = Field(0.05, ge=0, lt=1)
    rotate: float = Field(15.0, ge=0, le=180)
    hflip: float = Field(0.5, ge=0, le=1)
    brightness: float = Field(0.0, ge=0, le=1)
    batched: bool = True  # whole batches on the training device (segpipe.augment); False: albumentations per sample


STAGE_DECODERS = ("unet", "unetplusplus", "manet")  # archs with one decoder_channels entry per encoder stage


class Train(Section):
    arch: str = "Unet"
    encoder_name: str = "tu-mobilenetv3_small_050"
    encoder_weights: str | None = None  # None, a named set (network) or a local weights file
    encoder_depth: int = Field(5, ge=3, le=5)
    decoder_channels: tuple[PositiveInt, ...] = (64, 32, 16, 16, 8)
    in_channels: PositiveInt = 3  # channels of one slice fed to the model
    context: int = Field(0, ge=0, le=4)  # 2.5D: slices i-k..i+k of the same patient as extra channels
    epochs: PositiveInt = 12
    batch_size: PositiveInt = 16
    lr: float = Field(0.01, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    scheduler: Literal["onecycle", "cosine"] = "onecycle"
    loss: dict[Literal["bce", "dice", "focal", "lovasz"], float] = {"bce": 0.7, "dice": 0.3}
    sampling: Literal["uniform", "lesion"] = "uniform"
    patience: int = Field(0, ge=0)  # epochs without a val Dice gain before stopping; 0 = off
    ema: float = Field(0.0, ge=0, lt=1)  # decay of an exponential moving average of the weights; 0 = off
    clip_grad: float = Field(0.0, ge=0)  # clip the gradient norm to this before each step; 0 = off
    augment: Augment = Augment()
    num_workers: int = Field(0, ge=0)
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    devices: PositiveInt = 1

    @model_validator(mode="after")
    def _consistent(self) -> "Train":
        if self.arch.lower() in STAGE_DECODERS and len(self.decoder_channels) != self.encoder_depth:
            raise ValueError(
                f"decoder_channels has {len(self.decoder_channels)} entries; encoder_depth is {self.encoder_depth}"
            )
        if not any(self.loss.values()):
            raise ValueError("loss needs at least one non-zero weight")
        return self

    @property
    def slices(self) -> int:
        """Slices stacked into one model input: 2 * context + 1."""
        return 2 * self.context + 1

    @property
    def model_channels(self) -> int:
        """Input channels of the network: in_channels per slice, for every stacked slice."""
        return self.in_channels * self.slices


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


MODEL_NAME = r"^[a-z][a-z0-9_]*$"  # becomes a path component and part of a DVC stage name


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
    models: dict[str, dict] = {"unet": {}}  # model name -> overrides of `train` keys
    predict: Predict = Predict()
    blend: Blend = Blend()
    threshold: Threshold = Threshold()

    @model_validator(mode="after")
    def _models_valid(self) -> "Params":
        if not self.models:
            raise ValueError("models: needs at least one model (name: {} trains `train` as it is)")
        for name in self.models:
            if not re.match(MODEL_NAME, name):
                raise ValueError(f"models.{name}: a model name is lower case letters, digits and _, "
                                 "starting with a letter (it names stages and folders)")
            self.model(name)  # every override must make a valid Train
        return self

    def model(self, name: str) -> Train:
        """`train` with the overrides of `models.<name>` (`augment` is merged key by key)."""
        if name not in self.models:
            raise InputError(f"params.yaml: no model {name!r} under models (there are {sorted(self.models)})")
        override = dict(self.models[name] or {})
        merged = self.train.model_dump()
        if isinstance(override.get("augment"), dict):
            override["augment"] = {**merged["augment"], **override["augment"]}
        try:
            return Train.model_validate({**merged, **override})
        except ValidationError as err:
            problems = "; ".join(f"models.{name}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                 for e in err.errors())
            raise ValueError(problems) from None

    @property
    def dataset(self) -> DatasetSection:
        """The options section of the chosen dataset (`base.dataset`)."""
        return getattr(self, self.base.dataset)


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate the whole params file; raise InputError naming each bad key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise InputError(f"{path}: cannot read params: {err}") from err
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '<top>'}: {e['msg']}" for e in err.errors()
        )
        raise InputError(f"{path}: {problems}") from None
