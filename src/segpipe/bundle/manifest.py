"""What a bundle holds and how it is read back: `bundle.json`, the weights, the blend and the rules.

    bundle/
      bundle.json            the dataset and its options, the cache layout, each model's spec,
                             inference contract and fold weights, the measured images/s, versions
      blend.json             the blend stage's counts, as the pipeline's submit reads them
      postprocess.json       the threshold stage's rule file, as submit reads it
      models/<model>/fold<k>.safetensors   the fold networks' state dicts
      wheels/                what the notebook image lacks (`segpipe.bundle.wheels`)
      kernel/                the notebook that installs the wheels and runs `segpipe.infer`
      dataset-metadata.json  for `kaggle datasets create -p bundle`

The weights are plain state dicts in safetensors, not pickled modules, so a bundle built
with one torch loads with another; a network whose state does not fit the architecture the
spec builds is refused with the names of the keys that differ.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from segpipe.core.errors import InputError

MANIFEST = "bundle.json"
BLEND = "blend.json"
RULES = "postprocess.json"
MODELS = "models"


def weights_file(model: str, fold: int) -> str:
    """Where fold `fold` of `model` lies, relative to the bundle."""
    return f"{MODELS}/{model}/fold{fold}.safetensors"


@dataclass(frozen=True)
class Manifest:
    """bundle.json, read."""

    root: Path
    raw: dict

    @classmethod
    def read(cls, root: Path) -> Manifest:
        path = Path(root) / MANIFEST
        try:
            return cls(Path(root), json.loads(path.read_text()))
        except FileNotFoundError:
            raise InputError(f"{path}: missing: is {root} a segpipe bundle (`make bundle` writes one)?") from None
        except ValueError as err:
            raise InputError(f"{path}: not readable ({err}); rebuild the bundle with `make bundle`") from None

    @property
    def dataset(self) -> dict:
        return self.raw["dataset"]

    @property
    def models(self) -> dict[str, dict]:
        return self.raw["models"]

    def path(self, name: str) -> Path:
        return self.root / name

    def load_models(self, name: str):
        """The fold networks of model `name` and their contract, as `segpipe.inference.predict.FoldModels`."""
        from safetensors.torch import load_file

        from segpipe.inference.predict import FoldModels
        from segpipe.network.contract import InferenceContract
        from segpipe.network.model import ModelSpec, build_model

        entry = self.models[name]
        spec, contract = ModelSpec.from_dict(entry["spec"]), InferenceContract.from_dict(entry["contract"])
        networks = []
        for fold, relative in sorted(entry["folds"].items(), key=lambda item: int(item[0])):
            path = self.root / relative
            if not path.is_file():
                raise InputError(f"{path}: the weights of {name} fold {fold} are missing from the bundle")
            model = build_model(spec)
            try:
                result = model.load_state_dict(load_file(str(path)), strict=False)
                problem = (f"missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}"
                           if result.missing_keys or result.unexpected_keys else None)
            except RuntimeError as err:  # a tensor of another shape
                problem = str(err).strip().splitlines()[-1].strip()
            if problem:
                built = self.raw.get("built_with", {})
                raise InputError(
                    f"{path}: these weights do not fit {spec.arch} {spec.encoder_name} as this "
                    f"segmentation-models-pytorch builds it ({problem}); the bundle was built with "
                    f"segmentation-models-pytorch {built.get('segmentation-models-pytorch', '?')} and timm "
                    f"{built.get('timm', '?')}: install those (its wheels/) or rebuild the bundle")
            networks.append(model)
        return FoldModels(networks, contract)
