"""How a trained network is run: the inference contract, saved in every checkpoint beside its spec.

The OOF pass at the end of training and predict both build their ensemble from it, so the
out-of-fold maps that tune the threshold and the test maps it is applied to are made with
the same input, precision, memory format, windows and TTA views. No reader repeats a
training default: a checkpoint without a contract is refused.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, TypeVar

from segpipe.core.errors import InputError
from segpipe.core.labels import Labels
from segpipe.paths.artifacts import remake

VIEWS = ("identity", "hflip")  # the test-time augmentation views an ensemble can average
# how the input is normalised (`segpipe.network.inputs.normalize`): ImageNet statistics, or each image's z-score
NORMALIZATIONS = ("imagenet", "image")
T = TypeVar("T")


@dataclass(frozen=True)
class InferenceContract:
    in_channels: int  # the network's input channels: channels per slice x stacked slices
    context: int  # 2.5D: the slices i-k..i+k of the patient go in as channels; 0 = 2D
    window_step: float  # tile mode: sliding-window spacing as a fraction of the tile
    amp: bool  # mixed precision on CUDA (bf16 where supported); ignored on CPU
    channels_last: bool  # NHWC memory format
    views: tuple[str, ...] = VIEWS  # TTA views, averaged with each prediction undone
    labels: Labels = Labels()  # what the maps are: a sigmoid per class, or with exclusive classes a softmax
    normalize: str = "imagenet"  # the input's normalisation, one of NORMALIZATIONS

    def __post_init__(self) -> None:
        unknown = sorted(set(self.views) - set(VIEWS))
        if unknown or not self.views:
            raise ValueError(f"TTA views {list(self.views)}: each must be one of {list(VIEWS)}")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize {self.normalize!r}: one of {list(NORMALIZATIONS)}")

    @property
    def softmax(self) -> bool:
        """Exclusive classes: a softmax over background + classes (its channel 0 dropped), not sigmoids."""
        return self.labels.exclusive

    def to_dict(self) -> dict:
        return {**asdict(self), "views": list(self.views), "labels": self.labels.to_dict()}

    @classmethod
    def from_dict(cls, stored: dict) -> InferenceContract:
        """The contract as `to_dict` stored it; KeyError, TypeError or ValueError for anything else."""
        stored = dict(stored)
        return cls(**{**stored, "views": tuple(stored["views"]), "labels": Labels.from_dict(stored["labels"])})

    @classmethod
    def of_checkpoint(cls, checkpoint: dict, path: Path) -> InferenceContract:
        """The contract stored in `checkpoint` (loaded from `path`); InputError naming the stage to rerun."""
        try:
            return cls.from_dict(checkpoint["contract"])
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{path}: checkpoint has no valid inference contract ({type(err).__name__}: {err}); "
                             f"retrain it with `{remake(path)}`") from None


def one_setting(name: str, settings: Iterable[T]) -> T:
    """The one setting (inference contract, network spec) the fold models of model `name` share; an
    InputError naming the retrain command when they were trained differently."""
    distinct = set(settings)
    if len(distinct) > 1:
        raise InputError(f"the fold models of {name} were trained to run differently {sorted(map(str, distinct))}; "
                         f"retrain them with one setting: dvc repro -f -s --glob 'train@{name}-*'")
    return distinct.pop()
