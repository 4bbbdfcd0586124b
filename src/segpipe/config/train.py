"""The `train` section and the models (a model = `train` with overrides).

The plan stage resolves each model's `auto` keys and writes the result for its train stages
(data/plan/models/<model>.json), which validate it back into a `Train`.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, NonNegativeInt, PositiveInt, ValidationError, model_validator

from segpipe.config.sections import Section, check_model_names
from segpipe.network.archs import STAGE_DECODERS
from segpipe.core.errors import InputError


class Augment(Section):
    scale: float = Field(0.05, ge=0, lt=1)
    rotate: float = Field(15.0, ge=0, le=180)
    hflip: float = Field(0.5, ge=0, le=1)
    brightness: float = Field(0.0, ge=0, le=1)
    batched: bool = True  # whole batches on the training device (segpipe.training.augment); False: albumentations per sample


AUTO = "auto"  # a key the plan stage resolves from the dataset's fingerprint and the device (`segpipe.plan`)
Auto = Literal["auto"]
AUTO_KEYS = ("encoder_name", "encoder_weights", "decoder_channels", "normalize", "steps", "batch_size", "lr",
             "num_workers")


class Train(Section):
    arch: str = "Unet"
    encoder_name: str = AUTO  # auto: the device's (`segpipe.plan.device_rules`)
    encoder_weights: str | None = AUTO  # None, a named set, a local weights file; auto: the device's
    encoder_depth: int = Field(5, ge=3, le=5)
    decoder_channels: Union[tuple[PositiveInt, ...], Auto] = AUTO  # auto: the device's, one per encoder stage
    in_channels: PositiveInt = 3  # channels of one slice fed to the model
    normalize: Literal["imagenet", "image", "auto"] = AUTO  # input: ImageNet statistics, or each image's z-score;
    # auto: imagenet for pretrained weights, image for random ones (`segpipe.plan.device_rules`)
    context: int = Field(0, ge=0, le=4)  # 2.5D: slices i-k..i+k of the same patient as extra channels
    epochs: PositiveInt = 12  # validation rounds: the run's `steps` are split into this many epochs
    steps: Union[PositiveInt, Auto] = AUTO  # optimizer steps of the whole run (the lr schedule's length)
    batch_size: Union[PositiveInt, Auto] = AUTO
    lr: Union[Annotated[float, Field(gt=0)], Auto] = AUTO  # peak learning rate
    weight_decay: float = Field(1e-4, ge=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    scheduler: Literal["onecycle", "cosine"] = "onecycle"
    loss: dict[Literal["bce", "dice", "focal", "lovasz"], float] = {"bce": 0.7, "dice": 0.3}
    sampling: Literal["uniform", "lesion"] = "uniform"
    foreground: float = Field(0.33, ge=0, le=1)  # tile mode: share of crops centred near foreground (nnU-Net 33 %)
    window_step: float = Field(0.5, gt=0, le=1)  # tile mode: sliding-window spacing / tile (OOF and test)
    patience: int = Field(0, ge=0)  # epochs without a val Dice gain before stopping; 0 = off
    ema: float = Field(0.0, ge=0, lt=1)  # decay of an exponential moving average of the weights; 0 = off
    clip_grad: float = Field(0.0, ge=0)  # clip the gradient norm to this before each step; 0 = off
    augment: Augment = Augment()
    num_workers: Union[NonNegativeInt, Auto] = AUTO  # auto: from the device's cores
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    devices: PositiveInt = 1

    @model_validator(mode="after")
    def _consistent(self) -> "Train":
        if (self.arch.lower() in STAGE_DECODERS and self.decoder_channels != AUTO
                and len(self.decoder_channels) != self.encoder_depth):
            raise ValueError(
                f"decoder_channels has {len(self.decoder_channels)} entries; encoder_depth is {self.encoder_depth}"
            )
        if not any(self.loss.values()):
            raise ValueError("loss needs at least one non-zero weight")
        return self

    @property
    def auto_keys(self) -> list[str]:
        """The keys still set to `auto` (the plan resolves them; training refuses them)."""
        return [key for key in AUTO_KEYS if getattr(self, key) == AUTO]

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps between two validations: `steps` split into `epochs` rounds."""
        return -(-int(self.steps) // self.epochs)

    @property
    def slices(self) -> int:
        """Slices stacked into one model input: 2 * context + 1."""
        return 2 * self.context + 1

    @property
    def model_channels(self) -> int:
        """Input channels of the network: in_channels per slice, for every stacked slice."""
        return self.in_channels * self.slices


def with_overrides(train: Train, models: dict[str, dict], name: str) -> Train:
    """`train` with the overrides of `models[name]` (`augment` is merged key by key)."""
    if name not in models:
        raise InputError(f"params.yaml: no model {name!r} under models (there are {sorted(models)})")
    override = dict(models[name] or {})
    merged = train.model_dump()
    if isinstance(override.get("augment"), dict):
        override["augment"] = {**merged["augment"], **override["augment"]}
    try:
        return Train.model_validate({**merged, **override})
    except ValidationError as err:
        problems = "; ".join(f"models.{name}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in err.errors())
        raise ValueError(problems) from None


def check_models(train: Train, models: dict[str, dict]) -> None:
    """Raise ValueError unless every model has a good name and its overrides make a valid Train."""
    check_model_names(models)
    for name in models:
        with_overrides(train, models, name)
