"""A user's copy of the data is only ever read: real `dvc` commands on sources in the real layouts.

Each safety test records the bytes and mode of every file and folder of a source and runs the
pipeline from it with `dvc exp run -S <dataset>.source=...`; on the extracted folder it then
switches back to the synthetic default and runs `dvc checkout`, `dvc exp apply` and
`dvc gc -w -f`. Every file must still be there, byte for byte, with its mode. The source trees
are the ones the adapter tests build (tests/datasets/adapters/test_<dataset>.py).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import zipfile
from pathlib import Path

import pandas as pd
import test_carvana
import test_lgg
import test_nerve
from dvc_repo import make_repo, ran_stages, run, run_failing, stale_stages

NO_CREDENTIALS = {"KAGGLE_USERNAME": "", "KAGGLE_KEY": "", "KAGGLE_API_TOKEN": ""}


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """sha256 (files) and permission bits of `root` and everything under it."""
    paths = [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]
    return {str(p.relative_to(root)) if p != root else ".":
            (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir", stat.S_IMODE(p.stat().st_mode))
            for p in paths}


def read_only(root: Path) -> Path:
    """`chmod -R a-w`, as a Kaggle Notebook's /kaggle/input is."""
    for path in [*sorted(root.rglob("*"), reverse=True), root]:
        path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
    return root


def competition_zip(tree: Path, out: Path) -> Path:
    """`tree` as `kaggle competitions download` leaves Carvana: one zip of per-part zips.

    train.zip is stored (read in place); test.zip is deflated (extracted once into segpipe's folder).
    """
    with zipfile.ZipFile(out, "w") as outer:
        for part, compression in (("train", zipfile.ZIP_STORED), ("train_masks", zipfile.ZIP_STORED),
                                  ("test", zipfile.ZIP_DEFLATED)):
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as inner:
                for path in sorted((tree / part).rglob("*")):
                    inner.write(path, path.relative_to(tree).as_posix())
            outer.writestr(zipfile.ZipInfo(f"{part}.zip"), buffer.getvalue(), compress_type=compression)
        for name in ("train_masks.csv", "sample_submission.csv"):
            outer.writestr(f"{name}.zip", _zip_of(tree / name), compress_type=zipfile.ZIP_STORED)
    return out


def _zip_of(path: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(path, path.name)
    return buffer.getvalue()


def run_from_source(repo: Path, dataset: str, source: Path, **env: str) -> str:
    """Run the pipeline from `source`; its output. The source's bytes and modes are checked after."""
    before = snapshot(source)
    ran = run(["dvc", "exp", "run", "-n", f"from-{dataset}", "-S", f"base.dataset={dataset}",
               "-S", f"{dataset}.source={source}"], repo, **env)
    assert {"download", "prepare", "train@unet-0", "submit"} <= ran_stages(ran)
    manifest = pd.read_csv(repo / "data" / "raw" / dataset / "manifest.csv")
    assert len(manifest) and [p.name for p in (repo / "data" / "raw" / dataset).iterdir()] == ["manifest.csv"]
    assert snapshot(source) == before, "the pipeline changed the user's source"
    return ran


def run_from_source_then_leave_it(repo: Path, dataset: str, source: Path, **env: str) -> str:
    """`run_from_source`, then the DVC commands that rewrite a workspace; the source is checked after them too."""
    before = snapshot(source)
    ran = run_from_source(repo, dataset, source, **env)
    run(["dvc", "exp", "run", "-n", "back", "-S", "base.dataset=synthetic"], repo, **env)
    run(["dvc", "checkout"], repo, **env)
    run(["dvc", "exp", "apply", f"from-{dataset}"], repo, **env)
    run(["dvc", "checkout"], repo, **env)
    run(["dvc", "gc", "-w", "-f"], repo, **env)  # drops the synthetic run's cache
    assert stale_stages(run(["dvc", "status"], repo, **env)) == set()
    assert snapshot(source) == before, "a DVC command changed the user's source"
    return ran


def test_lgg_from_an_extracted_folder(tmp_path: Path) -> None:
    source = test_lgg.build(tmp_path / "my data" / "lgg")  # a space in the path, as user folders have
    repo = make_repo(tmp_path / "repo", {})
    run_from_source_then_leave_it(repo, "lgg", source, **NO_CREDENTIALS)
    holdout = json.loads((repo / "metrics/holdout.json").read_text())
    assert holdout["patients"] == 1 and 0 <= holdout["dice"] <= 1


def test_carvana_from_the_competition_zip(tmp_path: Path) -> None:
    source = competition_zip(test_carvana._build(tmp_path / "tree"), tmp_path / "carvana-image-masking-challenge.zip")
    repo = make_repo(tmp_path / "repo", {})
    run_from_source(repo, "carvana", source, **NO_CREDENTIALS)
    submission = pd.read_csv(repo / "submissions/submit.csv.gz", dtype=str, keep_default_na=False)
    assert submission.img.tolist() == list(test_carvana.TEST)
    assert list((repo / "data/sources/.unzipped/carvana").glob("*-test.zip"))  # the deflated inner zip, once


def test_nerve_from_a_read_only_tree(tmp_path: Path) -> None:
    source = read_only(test_nerve._build(tmp_path / "nerve"))
    repo = make_repo(tmp_path / "repo", {})
    run_from_source(repo, "nerve", source, **NO_CREDENTIALS)
    submission = pd.read_csv(repo / "submissions/submit.csv.gz", dtype=str, keep_default_na=False)
    assert submission.img.tolist() == [str(n) for n in test_nerve.TEST]


def test_a_kaggle_notebook_input_is_found_and_scored_without_credentials(tmp_path: Path) -> None:
    """A Kaggle Notebook: the dataset mounted read-only under the input root, no source set, no API token."""
    inputs = tmp_path / "kaggle" / "input"
    mounted = read_only(test_lgg.build(inputs / "lgg-mri-segmentation"))
    before = snapshot(mounted)
    repo = make_repo(tmp_path / "repo", {"base": {"dataset": "lgg", "kaggle_input": str(inputs)}})
    empty = tmp_path / "no-kaggle-config"
    empty.mkdir()
    out = run(["dvc", "repro"], repo, KAGGLE_CONFIG_DIR=str(empty), **NO_CREDENTIALS)
    assert f"reading the Kaggle input folder {mounted}" in out
    holdout = json.loads((repo / "metrics/holdout.json").read_text())
    assert holdout["patients"] == 1 and holdout["images"] in test_lgg.PATIENTS.values()
    assert 0 <= holdout["dice"] <= 1
    assert list((repo / "data/sources/lgg").iterdir()) == [repo / "data/sources/lgg/.gitkeep"]  # nothing fetched
    assert snapshot(mounted) == before


def test_an_edited_added_or_removed_source_file_is_named_and_reruns_what_it_feeds(tmp_path: Path) -> None:
    """`make run` indexes the source again first (DVC does not see files changed in place, so `dvc status` stays
    clean); download and what follows rerun only when the index changed."""
    source = test_lgg.build(tmp_path / "lgg")
    repo = make_repo(tmp_path / "repo", {"base": {"dataset": "lgg"}, "lgg": {"source": str(source)}})

    def refresh_then_download() -> str:  # what `make run` does, up to download
        return run(["dvc", "repro", "-f", "-s", "source", "device"], repo) + run(["dvc", "repro", "download"], repo)

    run(["dvc", "repro", "download"], repo)
    run(["dvc", "status", "-q", "download"], repo)  # up to date: exit status 0
    again = refresh_then_download()
    assert "since the last index: no file changed" in again and ran_stages(again) == {"source", "device"}
    patient = sorted((source / "kaggle_3m").iterdir())[0]
    edited = f"kaggle_3m/{patient.name}/{patient.name}_1.tif"
    manifests = [(repo / "data/raw/lgg/manifest.csv").read_bytes()]
    (patient / f"{patient.name}_1.tif").write_bytes((patient / f"{patient.name}_2.tif").read_bytes())
    ran = refresh_then_download()
    assert f"1 edited ({edited})" in ran and ran_stages(ran) == {"source", "device", "download"}, ran
    manifests.append((repo / "data/raw/lgg/manifest.csv").read_bytes())
    (patient / "notes.txt").write_text("added")  # not a slice: indexed, but not in the manifest
    ran = refresh_then_download()
    assert "no file changed" in ran and ran_stages(ran) == {"source", "device"}, ran
    os.remove(patient / f"{patient.name}_3_mask.tif")
    failed = run_failing(["dvc", "repro", "-f", "-s", "source"], repo)  # a slice without its mask: the adapter says so
    assert f"{patient.name}_3" in failed and "Errno" not in failed, failed
    assert manifests[0] != manifests[1]  # the edited slice's fingerprint


def test_a_mistyped_source_is_segpipes_error_and_blocks_no_other_dataset(tmp_path: Path) -> None:
    """`dvc exp run -S lgg.source=<typo>` leaves the typo in params.yaml; the synthetic default still runs."""
    repo = make_repo(tmp_path / "repo", {})
    missing = tmp_path / "nonexistent" / "lgg"
    failed = run_failing(["dvc", "exp", "run", "-S", "base.dataset=lgg", "-S", f"lgg.source={missing}"], repo)
    assert f"error: {missing}: lgg.source does not exist" in failed and "Errno" not in failed, failed
    assert str(missing) in (repo / "params.yaml").read_text()  # DVC leaves the failed run's params
    ran = run(["dvc", "exp", "run", "-S", "base.dataset=synthetic"], repo)
    assert {"download", "prepare", "submit"} <= ran_stages(ran)
