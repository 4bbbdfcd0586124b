"""Helpers for the tests that run the real DVC: a shrunken copy of this repo as a fresh git repo."""
from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SMALL = {
    "synthetic": {"train_patients": 6, "test_patients": 2, "slices_per_patient": 8, "height": 40, "width": 48},
    "prepare": {"size": [32, 32]},
    "folds": {"n_splits": 2, "train": [0, 1]},
    "train": {"encoder_depth": 3, "decoder_channels": [16, 8, 8], "epochs": 1, "steps": 3, "batch_size": 8,
              "lr": 0.003},
}


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`cmd` with this virtualenv first on PATH (and `env` added)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **env}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)


def run(cmd: list[str], cwd: Path, **env: str) -> str:
    """Run `cmd` with this virtualenv first on PATH (and `env` added); its output, asserting success."""
    done = _run(cmd, cwd, env)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def run_failing(cmd: list[str], cwd: Path, **env: str) -> str:
    """Run `cmd` as `run` does; its output, asserting that it failed."""
    done = _run(cmd, cwd, env)
    assert done.returncode != 0, f"{' '.join(cmd)} succeeded:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def ran_stages(output: str) -> set[str]:
    """The stages a `dvc repro` ran."""
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


def stale_stages(status: str) -> set[str]:
    """The stages `dvc status` lists as changed."""
    return {line[:-1] for line in status.splitlines() if line.endswith(":") and not line[0].isspace()}


def edit_params(repo: Path, changes: dict) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in changes.items():
        if section == "models":  # the models are replaced, not merged: these are the ones to train
            params[section] = values
        else:
            params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def make_repo(repo: Path, changes: dict) -> Path:
    """Fill `repo` with this repo's tracked files and small params, as a fresh git repo."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    results = ("dvc.lock", "data/", "models/", "oof/", "preds/", "dvclive/", "metrics/", "plots/")
    for name in files:  # data/sources/*/.gitkeep: the default sources, which must exist as deps
        if (ROOT / name).is_file() and (not name.startswith(results) or name.startswith("data/sources/")):
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    edit_params(repo, {**SMALL, **changes})
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        run(cmd, repo)
    return repo


def infer_matches_submit(repo: Path, tmp_path: Path, *extra: str) -> None:
    """`segpipe.infer` on the repo's bundle writes the pipeline's submission byte for byte."""
    out = tmp_path / "submission.csv"
    done = subprocess.run([sys.executable, "-m", "segpipe.infer", "--bundle", str(repo / "bundle"), "--input",
                           str(repo / "data/raw/synthetic"), "--out", str(out), *extra], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == gzip.decompress((repo / "submissions/submit.csv.gz").read_bytes())

