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
spec builds is refused with the names of the keys that differ. bundle.json records the
sha256 of every other file inference reads (`segpipe.bundle.checksums`): reading a bundle
checks them all before anything is predicted, and weights that are NaN or infinite are
refused too, each naming its file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from segpipe.bundle import checksums
from segpipe.core.errors import InputError
from segpipe.paths.cache_files import LAYOUT

MANIFEST = "bundle.json"
BLEND = "blend.json"
RULES = "postprocess.json"
MODELS = "models"


def weights_file(model: str, fold: int) -> str:
    """Where fold `fold` of `model` lies, relative to the bundle."""
    return f"{MODELS}/{model}/fold{fold}.safetensors"


def inference_files(models: dict[str, dict]) -> list[str]:
    """The files inference reads besides bundle.json, relative to the bundle: what its sha256 record covers."""
    return [BLEND, RULES, LAYOUT, *(relative for entry in models.values() for relative in entry["folds"].values())]


@dataclass(frozen=True)
class Manifest:
    """bundle.json, read."""

    root: Path
    raw: dict

    @classmethod
    def read(cls, root: Path) -> Manifest:
        """bundle.json of the bundle at `root`, every file it lists checked against its recorded sha256."""
        path = Path(root) / MANIFEST
        try:
            manifest = cls(Path(root), json.loads(path.read_text()))
        except FileNotFoundError:
            raise InputError(f"{path}: missing: is {root} a segpipe bundle (`make bundle` writes one)?") from None
        except ValueError as err:
            raise InputError(f"{path}: not readable ({err}); rebuild the bundle with `make bundle`") from None
        checksums.verify(manifest.root, manifest.raw.get("sha256"), inference_files(manifest.models))
        return manifest

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
        from safetensors import SafetensorError
        from safetensors.torch import load

        from segpipe.inference.predict import FoldModels
        from segpipe.network.contract import InferenceContract
        from segpipe.network.model import ModelSpec, build_model
        from segpipe.network.weights import check_finite

        entry = self.models[name]
        spec, contract = ModelSpec.from_dict(entry["spec"]), InferenceContract.from_dict(entry["contract"])
        networks, files = [], []
        for fold, relative in sorted(entry["folds"].items(), key=lambda item: int(item[0])):
            path = self.root / relative
            if not path.is_file():
                raise InputError(f"{path}: the weights of {name} fold {fold} are missing from the bundle")
            try:
                state = load(path.read_bytes())
            except SafetensorError as err:
                raise InputError(f"{path}: not a readable safetensors file ({err}); {checksums.REBUILD}") from None
            check_finite(state, path, f"the fold diverged in training or the file is damaged; {checksums.REBUILD}")
            model = build_model(spec)
            try:
                result = model.load_state_dict(state, strict=False)
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
            files.append(str(path))
        return FoldModels(networks, contract, tuple(files))
