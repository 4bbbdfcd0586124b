"""Where a real dataset's files are, and the manifest of them that DVC tracks instead of the data.

A dataset's `source` is a folder or zip that already holds it: a download made by hand, a
kagglehub cache folder, a Kaggle Notebook's read-only `/kaggle/input/<slug>`, or the folder
segpipe downloads into (`data/sources/<dataset>`, the default). Sources are only ever
read: the `source` stage indexes the chosen one in place (`make run` reruns it first), into
`data/source.csv` (name, size and content fingerprint of every file the dataset uses); the
download stage copies that index into the raw folder's `manifest.csv`, through which
prepare and submit read the source. A source is neither a DVC dependency nor an output, so
no DVC command can delete, move or re-permission a file in it, and a mistyped path is
segpipe's own error, which blocks no other dataset.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segpipe.core.errors import InputError
from segpipe.core.runtime import atomic_path

from . import state as source_state
from .readers import class_files
from .rle_labels import mask_file
from .tree import Tree

MANIFEST = "manifest.csv"
UNZIPPED = ".unzipped"  # under the sources folder: compressed zips found inside zips, extracted once


@dataclass(frozen=True)
class KaggleHome:
    """Where a dataset lives on Kaggle: a competition slug or a dataset handle `owner/name`."""

    kind: str  # "competition" | "dataset"
    name: str
    files: tuple[str, ...] | None = None  # the competition files to fetch; None = all of them

    def input_folders(self, root: Path) -> list[Path]:
        """Where a Kaggle Notebook may mount it under `root` (layouts differ between mount versions)."""
        short = self.name.split("/")[-1]
        if self.kind == "competition":
            return [root / short, root / "competitions" / short]
        return [root / short, root / "datasets" / self.name]


def locate(name: str, source: Path, sources: Path, kaggle_input: Path, home: KaggleHome | None, *,
           fetch: bool = False) -> Path:
    """The folder or zip to read dataset `name` from.

    A source outside `sources` (segpipe's own download folders), or of a dataset that is not
    on Kaggle (`home` None), is used as it is and Kaggle is never contacted. Segpipe's own
    folder is used once it holds a finished download; before that, the dataset's Kaggle
    input folder is used when there is one, and else, with `fetch`, the Kaggle API
    downloads into the folder.
    """
    from segpipe import kaggle

    source = Path(source)
    if home is None or not _is_within(source, sources):
        if not source.exists():
            raise InputError(f"{source}: {name}.source does not exist (params.yaml): point it at your copy of "
                             f"the data, a folder or a zip")
        return source
    if kaggle.is_complete(source):
        return source
    for folder in home.input_folders(Path(kaggle_input)):
        if folder.is_dir():
            if fetch:
                print(f"{name}: reading the Kaggle input folder {folder} ({name}.source is not set)")
            return folder
    if not fetch:
        raise InputError(f"{source}: no finished download of {name} here: run the source stage "
                         f"(`dvc repro source`) or set {name}.source")
    if home.kind == "competition":
        kaggle.download_competition(home.name, source, files=home.files)
    else:
        kaggle.download_dataset(home.name, source)
    return source


def unzip_dir(sources: Path, name: str) -> Path:
    return Path(sources) / UNZIPPED / name


def used_files(competition, tree: Tree) -> list[str]:
    """The names of every file `competition` reads: images, masks (or label csvs) and the sample submission."""
    by_locator = {str(entry.locator): name for name, entry in tree.entries.items()}
    frames = [competition.train.image, competition.train["mask"], competition.test.image]
    if "mask" in competition.test:
        frames.append(competition.test["mask"])
    locators = [mask_file(part) for frame in frames for entry in frame  # a mask key names its label csv,
                for part in ([entry] if str(entry) in by_locator else class_files(entry))]  # a class files key its files
    if competition.submission.sample_submission is not None:
        locators.append(str(competition.submission.sample_submission))
    return sorted({by_locator[locator] for locator in locators})


def write_index(tree: Tree, names: list[str], path: Path, state: Path | None = None) -> source_state.Changes | None:
    """Write the csv `path`: name, size and content fingerprint of each of `names`, sorted.

    No absolute path goes in, so the same data indexed on another machine or at another
    mount point gives the same index (and nothing downstream reruns). Fingerprints are
    remembered in `state` by file stat; the changes since the last index are returned.
    """
    fingerprints, changes = source_state.fingerprints(tree, names, state)
    table = pd.DataFrame({"name": names, "size": [tree.entries[n].size for n in names], "fingerprint": fingerprints})
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return changes


def write_manifest(index: Path, out_dir: Path) -> int:
    """Fill `out_dir` with `manifest.csv`, a copy of the source stage's `index`; the number of files it lists."""
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        shutil.copyfile(index, tmp / MANIFEST)
    with open(index) as handle:
        return sum(1 for _ in handle) - 1  # less the header


def read_manifest(raw: Path, tree: Tree) -> Tree:
    """The part of `tree` that `raw/manifest.csv` lists, after checking that the files are unchanged.

    Sizes are compared for every file, and CRCs for zip members (free: the zip's directory
    holds them); plain files' contents are fingerprinted by the source stage.
    """
    try:
        table = pd.read_csv(Path(raw) / MANIFEST, dtype={"name": str, "fingerprint": str}, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(f"{raw / MANIFEST}: missing; run the download stage (`dvc repro download`)") from None
    changed = []
    for name, size, fingerprint in zip(table.name, table["size"], table.fingerprint):
        entry = tree.entries.get(name)
        if entry is None or entry.size != size or (entry.crc is not None and tree.fingerprint(name) != fingerprint):
            changed.append(name)
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise InputError(f"{tree.where}: files changed or missing since the source stage indexed them ({shown}); "
                         f"index the source again: `dvc repro -f -s source`, then `dvc repro`")
    return Tree({name: tree.entries[name] for name in table.name}, tree.where)


def _is_within(path: Path, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(Path(folder).resolve())
