"""The params of the `bundle` stage: the data sections (which dataset, its options and holdout,
the models and folds) and `bundle`, the offline inference bundle for a Kaggle code competition."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field

from segpipe.config.data import DataParams
from segpipe.config.sections import Section, read_params, validate

# What a Kaggle GPU notebook image already has: the bundle carries no wheel of these, nor of
# what they require. The install test builds a venv with exactly these.
KAGGLE_IMAGE = ["torch", "torchvision", "numpy", "pandas", "opencv-python-headless", "numba"]


class Bundle(Section):
    owner: str = "KAGGLE_USERNAME"  # your Kaggle user name: the bundle dataset and the kernel are <owner>/<slug>
    dataset: str = "segpipe-bundle"  # the slug of the bundle's Kaggle dataset
    kernel: str = "segpipe-infer"  # the slug of the inference kernel
    pythons: list[str] = ["3.11", "3.12", "3.13"]  # the Pythons a notebook image may run: wheels fit each
    platforms: list[str] = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    preinstalled: list[str] = Field(default_factory=lambda: list(KAGGLE_IMAGE))
    limit: str = "9h"  # the competition's run-time limit: the kernel refuses a test set projected far over it
    speed_images: int = Field(16, ge=1)  # test images timed for the images/s the bundle records


class BundleParams(DataParams):
    bundle: Bundle = Bundle()


def load_bundle_params(path: Path | str = "params.yaml") -> BundleParams:
    return validate(BundleParams, read_params(path), path)
