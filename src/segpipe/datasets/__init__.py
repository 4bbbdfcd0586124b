"""Dataset adapters, chosen by name (`base.dataset`).

The synthetic adapter generates its files into the raw folder. Every real dataset is read in
place from its source (see `source.py`): `index` fingerprints the files of the source that the
dataset uses, fetching it from Kaggle first only when segpipe's own folder is still empty;
`download` copies that index into the raw folder's manifest, and `load` reads the source back
through the manifest. An adapter module provides
`load(tree, **options) -> Competition` over a `Tree` of the source, and `KAGGLE`, where
the dataset lives on Kaggle. Stages call only the functions here, which also apply the
generic patient holdout.
"""
from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from segpipe.core.errors import InputError
from segpipe.datasets import source as source_files
from segpipe.datasets import state as source_state
from segpipe.datasets.base import Competition, SubmissionSpec
from segpipe.datasets.tree import Tree

if TYPE_CHECKING:
    from segpipe.config.data import DataParams

# name -> module under segpipe.datasets; modules are imported only when chosen, so that a
# dataset's network-bound imports (the Kaggle client) never run for another.
ADAPTERS = {
    "synthetic": "segpipe.datasets.synthetic",
    "carvana": "segpipe.datasets.carvana",
    "nerve": "segpipe.datasets.nerve",
    "lgg": "segpipe.datasets.lgg",
    "folder": "segpipe.datasets.folder",
    "severstal": "segpipe.datasets.severstal",
    "uwmgi": "segpipe.datasets.uwmgi",
    "clouds": "segpipe.datasets.clouds",
}

__all__ = ["ADAPTERS", "Competition", "SubmissionSpec", "download", "hold_out_patients", "index", "load",
           "load_chosen", "read_in_place"]


def _adapter(name: str):
    if name not in ADAPTERS:
        raise InputError(f"params.yaml: base.dataset: unknown dataset {name!r}; choose one of {sorted(ADAPTERS)}")
    return importlib.import_module(ADAPTERS[name])


def index(name: str, out: Path, *, sources: Path = Path("data/sources"), kaggle_input: Path = Path("/kaggle/input"),
          source: str | None = None, owned: Path | None = None, **options) -> None:
    """Write the csv `out`: the content index of real dataset `name`'s source (no rows for the synthetic one).

    The source is fetched from Kaggle first when it is segpipe's own, still empty folder.
    Fingerprints are remembered by file stat under `sources`, so an unchanged source is not
    read again; what changed since the last index is printed.
    """
    adapter = _adapter(name)
    if name == "synthetic":
        source_files.write_index(Tree({}, "synthetic"), [], Path(out))
        return
    if source is not None and owned is not None and Path(source).resolve().is_relative_to(Path(owned).resolve()):
        raise InputError(f"{name}.source {source} is inside {owned}, which DVC owns and rewrites: "
                         "never put data there; point the source at a folder of your own")
    tree = _source_tree(name, adapter, source, sources, kaggle_input, fetch=True)
    files = source_files.used_files(adapter.load(tree, **options), tree)
    changes = source_files.write_index(tree, files, Path(out), state=source_state.state_file(sources, name))
    since = "" if changes is None else f"; since the last index: {changes}"
    print(f"{name}: indexed {len(files)} files of {tree.where} into {out}{since}")


def download(name: str, root: Path, *, index_file: Path | None = None, seed: int = 0, **options) -> None:
    """Fill the raw folder `root`: the synthetic files, or the manifest of a real dataset's source.

    A real dataset's manifest is a copy of `index_file`, what `index` wrote for it.
    """
    adapter = _adapter(name)
    if name == "synthetic":
        adapter.download(Path(root), seed=seed, **options)
        return
    if index_file is None or source_files.write_manifest(Path(index_file), Path(root)) == 0:
        raise InputError(f"{index_file}: lists no file of {name}: run the source stage first (`dvc repro source`)")


def load(name: str, root: Path, *, holdout_patients: float = 0.0, seed: int = 0, sources: Path = Path("data/sources"),
         kaggle_input: Path = Path("/kaggle/input"), source: str | None = None, **options) -> Competition:
    """Index dataset `name` from its raw folder `root` (and, for a real dataset, its source).

    With `holdout_patients` > 0, that fraction of the train patients (seeded) becomes a
    labelled test set that the submit stage scores. A dataset without a test set needs it.
    """
    adapter = _adapter(name)
    if name == "synthetic":
        competition = adapter.load(Path(root), **options)
    else:
        tree = _source_tree(name, adapter, source, sources, kaggle_input, fetch=False)
        competition = adapter.load(source_files.read_manifest(Path(root), tree), **options)
    if holdout_patients > 0:
        return hold_out_patients(competition, holdout_patients, seed)
    if competition.test.empty:
        raise InputError(f"{name} has no test set: set {name}.holdout_patients in params.yaml (e.g. 0.2) "
                         "to hold out patients as a scored test set")
    return competition


def read_in_place(name: str, root: Path, unzip_dir: Path | None = None, **options) -> Competition:
    """Dataset `name` read straight from the folder or zip `root`, with no manifest and no holdout: how
    a notebook reads the competition's input (`segpipe.infer`). `unzip_dir` takes compressed inner zips."""
    adapter = _adapter(name)
    if name == "synthetic":  # a folder as the download stage generates it; no pipeline here to rerun that stage
        if not any(path.is_file() for path in Path(root).rglob("*")):
            raise InputError(f"{root}: {'holds no files' if Path(root).is_dir() else 'no such folder'} of {name}")
        return adapter.load(Path(root), remedy="copy the whole folder the download stage generated", **options)
    tree = Tree.scan(Path(root), unzip_dir=unzip_dir)
    if not tree.entries:
        raise InputError(f"{root}: holds no files of {name}")
    return adapter.load(tree, **options)


def load_chosen(params: "DataParams", raw: Path, sources: Path) -> Competition:
    """The dataset that `params` choose (`base.dataset`), with its options and holdout.

    `raw` is its raw folder, `sources` segpipe's own folder of downloads (the default sources).
    """
    section = params.dataset
    return load(params.base.dataset, raw, holdout_patients=section.holdout_patients, seed=params.base.seed,
                sources=sources, kaggle_input=Path(params.base.kaggle_input), **section.adapter_options())


def _source_tree(name: str, adapter, source: str | None, sources: Path, kaggle_input: Path, fetch: bool) -> Tree:
    if source is None:
        raise InputError(f"params.yaml: {name}.source is not set: give the folder or zip that holds the data")
    where = source_files.locate(name, Path(source), Path(sources), Path(kaggle_input), getattr(adapter, "KAGGLE", None),
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
