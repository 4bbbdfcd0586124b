"""Write a bundle (`segpipe.bundle.manifest` describes it): the blend's models, their contracts, the
blend, the rules and the Kaggle metadata. The wheels come after, from `segpipe.bundle.wheels`."""
from __future__ import annotations

import json
import shutil
from importlib import metadata
from pathlib import Path
from typing import Mapping, Sequence

from segpipe.bundle import checksums, kernel
from segpipe.bundle.environment import version
from segpipe.bundle.manifest import BLEND, RULES, DatasetEntry, ModelEntry, Record, inference_files, weights_file
from segpipe.core.errors import InputError
from segpipe.core.runtime import write_json
from segpipe.network.contract import one_setting
from segpipe.paths.cache_files import LAYOUT

KERNEL = "kernel"
DATASET_METADATA = "dataset-metadata.json"
README = "README.md"
VERSIONS = ("torch", "torchvision", "segmentation-models-pytorch", "timm", "numpy", "pandas",
            "opencv-python-headless", "numba", "safetensors")


def blended_models(blend: dict) -> list[str]:
    """The models the blend gives a weight in some bag (a model at weight 0 everywhere is left out)."""
    bags = [blend["counts"], *blend.get("class_counts", {}).values()]
    return sorted({name for bag in bags for name, count in bag.items() if count})


def built_with() -> dict[str, str]:
    return {name: found for name in VERSIONS if (found := version(name)) is not None}


def write_models(out: Path, checkpoints: Mapping[str, Mapping[int, Path]]) -> dict[str, dict]:
    """Each model's fold weights as safetensors state dicts, and its spec and contract (which the folds share).

    Weights that are NaN or infinite (a diverged fold) are refused, naming the checkpoint.
    """
    import torch
    from safetensors.torch import save

    from segpipe.network.weights import check_finite

    entries = {}
    for name, folds in checkpoints.items():
        specs, contracts, files = [], [], {}
        for fold, path in sorted(folds.items()):
            try:
                checkpoint = torch.load(path, map_location="cpu", weights_only=False)
            except FileNotFoundError:
                raise InputError(f"{path}: checkpoint missing; run `dvc repro train@{name}-{fold}`") from None
            check_finite(checkpoint["model"], path, f"the fold diverged: retrain it (`dvc repro -f train@{name}-{fold}`, "
                         "with a lower train.lr)")
            specs.append(json.dumps(checkpoint["spec"], sort_keys=True))
            contracts.append(json.dumps(checkpoint["contract"], sort_keys=True))
            target = out / weights_file(name, fold)
            target.parent.mkdir(parents=True, exist_ok=True)
            # serialised in memory, then written by Python: a full disk is then an OSError (safetensors' own
            # writer reports it as its SafetensorError)
            target.write_bytes(save({k: v.contiguous() for k, v in sorted(checkpoint["model"].items())}))
            files[str(fold)] = weights_file(name, fold)
        spec, contract = (json.loads(one_setting(name, setting)) for setting in (specs, contracts))
        entries[name] = ModelEntry(spec, contract, files)
    return entries


def write_bundle(out: Path, *, checkpoints: Mapping[str, Mapping[int, Path]], blend_json: Path, rules_json: Path,
                 prepared: Path, channels: int, dataset: DatasetEntry, competition: str | None, owner: str, slug: str,
                 kernel_slug: str, limit: str, preinstalled: Sequence[str]) -> dict:
    """Write everything of the bundle but its wheels and speed into `out` (a fresh folder); the manifest."""
    out.mkdir(parents=True)
    blend = json.loads(Path(blend_json).read_text())
    wanted = blended_models(blend)
    models = write_models(out, {name: checkpoints[name] for name in wanted})
    shutil.copyfile(blend_json, out / BLEND)
    shutil.copyfile(rules_json, out / RULES)
    shutil.copyfile(Path(prepared) / LAYOUT, out / LAYOUT)
    record = Record(dataset, competition, channels, models, sorted(set(checkpoints) - set(wanted)), built_with(),
                    list(preinstalled), checksums.record(out, inference_files(models)))
    record.write(out)
    write_json(out / DATASET_METADATA, kernel.dataset_metadata(owner, slug, f"segpipe bundle: {dataset.name}"))
    (out / KERNEL).mkdir()
    write_json(out / KERNEL / "kernel-metadata.json", kernel.kernel_metadata(owner, kernel_slug, slug, competition))
    (out / KERNEL / kernel.KERNEL_FILE).write_text(kernel.kernel_script(owner, slug, competition, limit,
                                                                       data=dataset.name))
    return record


def readme(record: Record) -> str:
    """The bundle's README: what it holds, what it was built against, how to use it."""
    versions = ", ".join(f"{k} {v}" for k, v in record.built_with.items())
    models = "; ".join(f"{name} ({entry.spec['arch']} {entry.spec['encoder_name']}, {len(entry.folds)} folds)"
                       for name, entry in record.models.items())
    speed = record.speed
    return "\n".join([
        f"# segpipe bundle: {record.dataset.name}",
        "",
        f"Models: {models}. Built against {versions}.",
        f"The notebook image is expected to have {', '.join(record.preinstalled)} (no wheels of them here);",
        "wheels/ holds the rest, listed with their versions in wheels/requirements.txt (`make bundle` downloads them).",
        f"Measured: {speed.images_per_second:.3g} test images/s on {speed.device} ({speed.images} images).",
        "",
        "Upload it, push the kernel and submit: see segpipe's docs/code-competitions.md.",
    ]) + "\n"


def folder_mb(path: Path) -> float:
    """Megabytes of a file, or of the files under a folder."""
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


__all__ = ["KERNEL", "README", "blended_models", "folder_mb", "readme", "write_bundle"]
