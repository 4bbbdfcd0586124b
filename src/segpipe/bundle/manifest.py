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
from dataclasses import asdict, dataclass
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


def inference_files(models: dict[str, ModelEntry]) -> list[str]:
    """The files inference reads besides bundle.json, relative to the bundle: what its sha256 record covers."""
    return [BLEND, RULES, LAYOUT, *(relative for entry in models.values() for relative in entry.folds.values())]


@dataclass(frozen=True)
class DatasetEntry:
    """How `segpipe.infer` finds the test set: the adapter and its options (no source path), and the holdout."""

    name: str
    options: dict
    holdout_patients: float
    seed: int


@dataclass(frozen=True)
class ModelEntry:
    """One model's network spec and inference contract (as its checkpoints hold them) and its fold files."""

    spec: dict
    contract: dict
    folds: dict[str, str]  # fold number -> weights file, relative to the bundle


@dataclass(frozen=True)
class Speed:
    """Inference images/s of the whole bundle measured when it was built: the kernel's time projection."""

    images: int
    seconds: float
    images_per_second: float
    overhead_seconds: float  # loading the networks and starting the workers
    device: str
    device_type: str  # cpu | cuda


@dataclass(frozen=True)
class Record:
    """bundle.json: written by `segpipe.bundle.export` and the bundle stage, read by `Manifest`, nowhere else."""

    dataset: DatasetEntry
    competition: str | None
    channels: int  # cached channels of one slice
    models: dict[str, ModelEntry]
    left_out: list[str]  # models at blend weight 0, not bundled
    built_with: dict[str, str]  # package -> version
    preinstalled: list[str]  # what the notebook image is expected to have (no wheels of them)
    sha256: dict[str, str] | None = None  # every other file inference reads (`segpipe.bundle.checksums`); None: older
    batch_size: int | None = None  # predict's: in tile mode, windows a batch
    speed: Speed | None = None

    def to_dict(self) -> dict:
        fields = asdict(self)
        return {key: value for key, value in fields.items() if value is not None or key not in ("batch_size", "speed")}

    @classmethod
    def from_dict(cls, raw: dict) -> Record:
        """The record of a bundle.json; KeyError or TypeError when a field is missing or of another kind."""
        return cls(**{**raw, "dataset": DatasetEntry(**raw["dataset"]),
                      "models": {name: ModelEntry(**entry) for name, entry in raw["models"].items()},
                      "speed": Speed(**raw["speed"]) if raw.get("speed") else None})

    def write(self, root: Path) -> None:
        from segpipe.core.runtime import write_json

        write_json(Path(root) / MANIFEST, self.to_dict())


@dataclass(frozen=True)
class Manifest:
    """A bundle at `root`, its bundle.json read."""

    root: Path
    record: Record

    @classmethod
    def read(cls, root: Path) -> Manifest:
        """bundle.json of the bundle at `root`, every file it lists checked against its recorded sha256."""
        path = Path(root) / MANIFEST
        try:
            manifest = cls(Path(root), Record.from_dict(json.loads(path.read_text())))
        except FileNotFoundError:
            raise InputError(f"{path}: missing: is {root} a segpipe bundle (`make bundle` writes one)?") from None
        except (ValueError, KeyError, TypeError) as err:
            raise InputError(f"{path}: not readable ({type(err).__name__}: {err}); rebuild the bundle with "
                             "`make bundle`") from None
        checksums.verify(manifest.root, manifest.record.sha256, inference_files(manifest.models))
        return manifest

    @property
    def dataset(self) -> DatasetEntry:
        return self.record.dataset

    @property
    def models(self) -> dict[str, ModelEntry]:
        return self.record.models

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
        spec, contract = ModelSpec.from_dict(entry.spec), InferenceContract.from_dict(entry.contract)
        networks, files = [], []
        for fold, relative in sorted(entry.folds.items(), key=lambda item: int(item[0])):
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
                built = self.record.built_with
                raise InputError(
                    f"{path}: these weights do not fit {spec.arch} {spec.encoder_name} as this "
                    f"segmentation-models-pytorch builds it ({problem}); the bundle was built with "
                    f"segmentation-models-pytorch {built.get('segmentation-models-pytorch', '?')} and timm "
                    f"{built.get('timm', '?')}: install those (its wheels/) or rebuild the bundle")
            networks.append(model)
            files.append(str(path))
        return FoldModels(networks, contract, tuple(files))
