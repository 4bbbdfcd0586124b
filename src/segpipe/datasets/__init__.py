"""Dataset adapters, chosen by name (`base.dataset`): one module each in `segpipe.datasets.adapters`.

A generated dataset (the synthetic one) writes its files into the raw folder. Every real
dataset is read in place from its source (see `source.py`): `index` fingerprints the files of
the source that the dataset uses, fetching it from Kaggle first only when segpipe's own folder
is still empty; `download` copies that index into the raw folder's manifest, and `load` reads
the source back through the manifest. What an adapter module provides is in `base.py`; its
params section is validated here, when the dataset is chosen. Stages call only the functions
here, which also apply the generic patient holdout.
"""
from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from segpipe.config.sections import dataset_names, validate
from segpipe.core.errors import InputError
from segpipe.datasets import source as source_files
from segpipe.datasets import state as source_state
from segpipe.datasets.base import Competition, DatasetSection, SubmissionSpec
from segpipe.datasets.tree import Tree

if TYPE_CHECKING:
    from segpipe.config.data import DataParams

# The adapters' package: each module is imported only when chosen, so that a dataset's network-bound
# imports (the Kaggle client) never run for another.
ADAPTERS = "segpipe.datasets.adapters"

__all__ = ["Competition", "SubmissionSpec", "adapter", "download", "hold_out_patients", "index", "load",
           "load_chosen", "read_in_place", "section_of"]


def adapter(name: str) -> ModuleType:
    """The adapter module of dataset `name`; InputError listing the datasets there are."""
    if name not in dataset_names():
        raise InputError(f"params.yaml: base.dataset: unknown dataset {name!r}; "
                         f"choose one of {', '.join(dataset_names())}")
    return importlib.import_module(f"{ADAPTERS}.{name}")


def section_of(params: "DataParams", name: str | None = None, path: Path | str = "params.yaml") -> DatasetSection:
    """Dataset `name`'s section of `params` (the chosen one's by default), validated by its adapter's `Params`."""
    name = name or params.base.dataset
    return validate(adapter(name).Params, params.section(name), path, within=name)


def _generated(module: ModuleType) -> bool:
    return hasattr(module, "generate")


def index(name: str, out: Path, *, sources: Path = Path("data/sources"), kaggle_input: Path = Path("/kaggle/input"),
          source: str | None = None, owned: Path | None = None, **options) -> None:
    """Write the csv `out`: the content index of real dataset `name`'s source (no rows for the synthetic one).

    The source is fetched from Kaggle first when it is segpipe's own, still empty folder.
    Fingerprints are remembered by file stat under `sources`, so an unchanged source is not
    read again; what changed since the last index is printed.
    """
    module = adapter(name)
    if _generated(module):
        source_files.write_index(Tree({}, name), [], Path(out))
        return
    if source is not None and owned is not None and Path(source).resolve().is_relative_to(Path(owned).resolve()):
        raise InputError(f"{name}.source {source} is inside {owned}, which DVC owns and rewrites: "
                         "never put data there; point the source at a folder of your own")
    tree = _source_tree(name, module, source, sources, kaggle_input, fetch=True)
    files = source_files.used_files(module.load(tree, **options), tree)
    changes = source_files.write_index(tree, files, Path(out), state=source_state.state_file(sources, name))
    since = "" if changes is None else f"; since the last index: {changes}"
    print(f"{name}: indexed {len(files)} files of {tree.where} into {out}{since}")


def download(name: str, root: Path, *, index_file: Path | None = None, seed: int = 0, **options) -> None:
    """Fill the raw folder `root`: a generated dataset's files, or the manifest of a real dataset's source.

    A real dataset's manifest is a copy of `index_file`, what `index` wrote for it.
    """
    module = adapter(name)
    if _generated(module):
        module.generate(Path(root), seed=seed, **options)
        return
    if index_file is None or source_files.write_manifest(Path(index_file), Path(root)) == 0:
        raise InputError(f"{index_file}: lists no file of {name}: run the source stage first (`dvc repro source`)")


def load(name: str, root: Path, *, holdout_patients: float = 0.0, seed: int = 0, sources: Path = Path("data/sources"),
         kaggle_input: Path = Path("/kaggle/input"), source: str | None = None, **options) -> Competition:
    """Index dataset `name` from its raw folder `root` (and, for a real dataset, its source).

    With `holdout_patients` > 0, that fraction of the train patients (seeded) becomes a
    labelled test set that the submit stage scores. A dataset without a test set needs it.
    """
    module = adapter(name)
    if _generated(module):
        competition = module.load(Path(root), **options)
    else:
        tree = _source_tree(name, module, source, sources, kaggle_input, fetch=False)
        competition = module.load(source_files.read_manifest(Path(root), tree), **options)
    if holdout_patients > 0:
        return hold_out_patients(competition, holdout_patients, seed)
    if competition.test.empty:
        raise InputError(f"{name} has no test set: set {name}.holdout_patients in params.yaml (e.g. 0.2) "
                         "to hold out patients as a scored test set")
    return competition


def read_in_place(name: str, root: Path, unzip_dir: Path | None = None, **options) -> Competition:
    """Dataset `name` read straight from the folder or zip `root`, with no manifest and no holdout: how
    a notebook reads the competition's input (`segpipe.infer`). `unzip_dir` takes compressed inner zips."""
    module = adapter(name)
    if _generated(module):  # a folder as the download stage generates it; no pipeline here to rerun that stage
        if not any(path.is_file() for path in Path(root).rglob("*")):
            raise InputError(f"{root}: {'holds no files' if Path(root).is_dir() else 'no such folder'} of {name}")
        return module.load(Path(root), remedy="copy the whole folder the download stage generated", **options)
    tree = Tree.scan(Path(root), unzip_dir=unzip_dir)
    if not tree.entries:
        raise InputError(f"{root}: holds no files of {name}")
    return module.load(tree, **options)


def load_chosen(params: "DataParams", raw: Path, sources: Path) -> Competition:
    """The dataset that `params` choose (`base.dataset`), with its options and holdout.

    `raw` is its raw folder, `sources` segpipe's own folder of downloads (the default sources).
    """
    section = section_of(params)
    return load(params.base.dataset, raw, holdout_patients=section.holdout_patients, seed=params.base.seed,
                sources=sources, kaggle_input=Path(params.base.kaggle_input), **section.adapter_options())


def _source_tree(name: str, module: ModuleType, source: str | None, sources: Path, kaggle_input: Path,
                 fetch: bool) -> Tree:
    if source is None:
        raise InputError(f"params.yaml: {name}.source is not set: give the folder or zip that holds the data")
    where = source_files.locate(name, Path(source), Path(sources), Path(kaggle_input), getattr(module, "KAGGLE", None),
                                fetch=fetch)
    tree = Tree.scan(where, unzip_dir=source_files.unzip_dir(sources, name))
    if not tree.entries:
        raise InputError(f"{where}: holds no files: set {name}.source to the folder or zip with your data")
    return tree


def hold_out_patients(competition: Competition, fraction: float, seed: int) -> Competition:
    """Move `fraction` of the patients (at least one, seeded) from train to a labelled test set."""
    groups = np.array(sorted(competition.train.group.unique()))
    count = max(1, int(round(fraction * len(groups))))
    if count >= len(groups):
        raise InputError(f"holdout_patients={fraction} would hold out all {len(groups)} patients of {competition.name}")
    held = np.random.default_rng(seed).choice(groups, size=count, replace=False)
    is_held = competition.train.group.isin(held)
    return dataclasses.replace(
        competition,
        train=competition.train[~is_held].reset_index(drop=True),
        test=competition.train[is_held].reset_index(drop=True),
        submission=dataclasses.replace(competition.submission, sample_submission=None, competition=None),
    )
