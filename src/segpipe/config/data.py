"""The params of the data stages and of predict/submit: the dataset sections, `prepare`, `folds`, `predict`.

download, prepare, folds, predict and submit load `DataParams`: the sections here, `base`,
and the model names (which models exist, not how they train), so that editing `train`
reruns none of them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, PositiveInt, model_validator

from segpipe.config.sections import DEFAULT_MODELS, Base, Section, StageParams, check_model_names, read_params, validate


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
    height: PositiveInt = 64
    width: PositiveInt = 64
    kind: Literal["brain", "thin", "multi", "exclusive"] = "brain"  # brain: MRI-like lesions; thin: thin structures on large
    # images; multi: three overlapping lesion classes (a multi-label competition); exclusive: the same
    # classes, one a pixel (a multi-class competition: softmax with a background)


class Carvana(DatasetSection):
    source: str = "data/sources/carvana"  # an existing copy (folder or zip); this default is segpipe's own


class Nerve(DatasetSection):
    source: str = "data/sources/nerve"


class Lgg(DatasetSection):
    source: str = "data/sources/lgg"
    holdout_patients: float = Field(0.2, ge=0, lt=1)


class Severstal(DatasetSection):
    source: str = "data/sources/severstal"


class Uwmgi(DatasetSection):
    source: str = "data/sources/uwmgi"
    holdout_patients: float = Field(0.2, ge=0, lt=1)  # the public download's test folder is empty


class Clouds(DatasetSection):
    source: str = "data/sources/clouds"


class Folder(DatasetSection):
    source: str = "data/sources/folder"  # the user's data folder (or a zip of it)
    train_images: str = "train/*.png"
    mask: str = "{stem}_mask.png"
    test_images: str | None = None
    group_regex: str | None = None
    rle_order: Literal["C", "F"] = "F"
    classes: list[str] = []  # index masks: value k + 1 is classes[k]; [] = binary masks
    exclusive: bool = False  # index masks: train the classes as exclusive (softmax with a background)
    metric: Literal["dice", "patient_dice"] = "dice"  # the score to maximise (segpipe.evaluation.scores)
    holdout_patients: float | None = Field(None, ge=0, lt=1)

    @model_validator(mode="after")
    def _holdout_without_test(self) -> "Folder":
        if self.holdout_patients is None:  # like LGG when there is no test set
            object.__setattr__(self, "holdout_patients", 0.0 if self.test_images else 0.2)
        return self


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
    """The sections the data stages, predict and submit read."""

    base: Base = Base()
    synthetic: Synthetic = Synthetic()
    carvana: Carvana = Carvana()
    nerve: Nerve = Nerve()
    lgg: Lgg = Lgg()
    severstal: Severstal = Severstal()
    uwmgi: Uwmgi = Uwmgi()
    clouds: Clouds = Clouds()
    folder: Folder = Folder()
    prepare: Prepare = Prepare()
    folds: Folds = Folds()
    predict: Predict = Predict()
    models: dict[str, dict] = DEFAULT_MODELS  # read for the names only; `segpipe.config.train` checks the rest

    @model_validator(mode="after")
    def _model_names(self) -> "DataParams":
        check_model_names(self.models)
        return self

    @property
    def dataset(self) -> DatasetSection:
        """The options section of the chosen dataset (`base.dataset`)."""
        return getattr(self, self.base.dataset)


def load_data_params(path: Path | str = "params.yaml") -> DataParams:
    """The data stages' sections of the params file, validated; InputError naming each bad key."""
    return validate(DataParams, read_params(path), path)
