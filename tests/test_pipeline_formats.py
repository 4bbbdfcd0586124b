"""Kaggle's label formats from params alone: the `dvc exp run` command docs/competition.md shows for
each, run for real on a tree in that layout made here, to a validated submission in the competition's
own format, scored on its own metric.

Each format is a class of its own, so that the parallel workers run them side by side.
"""
import hashlib
import json
import shlex
from pathlib import Path

import pandas as pd
from dvc_repo import ROOT, make_repo, run
from formats import airbus, dsb, severstal

from segpipe import rle


def checksums(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def doc_command(marker: str, source: Path) -> list[str]:
    """The `dvc exp run` line of docs/competition.md that holds `marker`, its source set to `source`."""
    lines = [line for line in (ROOT / "docs/competition.md").read_text().splitlines()
             if line.startswith("dvc exp run") and marker in line]
    assert len(lines) == 1, f"docs/competition.md: {len(lines)} commands hold {marker!r}"
    return [f"{arg.split('=')[0]}={source}" if arg.split("=")[0].endswith(".source") else arg
            for arg in shlex.split(lines[0])]


def run_doc_example(tmp_path: Path, make_tree, marker: str) -> tuple[Path, Path]:
    """(repo, source): `make_tree` writes a source in its layout, and the docs' command that holds `marker`
    runs on it in a fresh repo, leaving the user's files as they were."""
    source = tmp_path / "source"
    make_tree(source)
    before = checksums(source)
    repo = make_repo(tmp_path / "repo", {})
    run(doc_command(marker, source), repo)
    assert checksums(source) == before  # the user's data is read, never written
    return repo, source


def read(repo: Path, name: str) -> dict:
    return json.loads((repo / name).read_text())


def submission_of(repo: Path) -> pd.DataFrame:
    return pd.read_csv(repo / "submissions/submit.csv.gz", dtype=str, keep_default_na=False)


class TestARowPerInstance:
    def test_airbus_runs_to_instance_rows_tuned_on_object_f2(self, tmp_path):
        repo, source = run_doc_example(tmp_path, airbus, "train_ship_segmentations_v2.csv")
        submission = submission_of(repo)
        assert list(submission.columns) == ["ImageId", "EncodedPixels"]
        sample = pd.read_csv(source / "sample_submission_v2.csv", dtype=str)
        assert list(dict.fromkeys(submission.ImageId)) == sample.ImageId.tolist()  # every image, in order
        for image_id, rows in submission.groupby("ImageId"):  # an empty row alone, or instances
            assert len(rows) == 1 or rows.EncodedPixels.ne("").all()
        for code in submission.EncodedPixels:
            rle.validate(code, 40 * 48)
        cv = read(repo, "metrics/cv.json")
        assert cv["metric"] == "object_f2" and 0 <= cv["score"] <= 1
        assert cv["search"][-1]["step"].startswith("objects") and cv["search"][-1]["score"] == cv["score"]


class TestInstanceMaskFolders:
    def test_dsb_runs_to_a_holdout_scored_on_object_map(self, tmp_path):
        repo, _ = run_doc_example(tmp_path, dsb, "stage1_train")
        holdout = read(repo, "metrics/holdout.json")
        assert holdout["metric"] == "object_ap" and 0 <= holdout["score"] <= 1 and holdout["images"] == 3
        submission = submission_of(repo)
        assert list(submission.columns) == ["id", "rle_mask"] and submission.id.nunique() == 3
        assert read(repo, "metrics/cv.json")["metric"] == "object_ap"


class TestARowPerImageAndClass:
    def test_severstal_layout_runs_to_a_row_per_image_and_class(self, tmp_path):
        repo, _ = run_doc_example(tmp_path, severstal, "ClassId")
        submission = submission_of(repo)
        assert list(submission.columns) == ["ImageId", "EncodedPixels", "ClassId"]
        assert submission.ClassId.tolist() == ["1", "2", "3", "4"] * 4
        assert submission.ImageId.tolist() == [f"t{i:02d}.png" for i in range(4) for _ in range(4)]
        cv = read(repo, "metrics/cv.json")
        assert cv["metric"] == "dice" and set(cv["classes"]) == {"1", "2", "3", "4"}
