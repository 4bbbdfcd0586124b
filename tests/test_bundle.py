"""End to end, the offline bundle: the real `dvc repro` (its bundle stage) and `make bundle`'s wheels, then the
kernel run in a fresh venv that has only the "Kaggle image" packages, installing from the wheels with the
index off and the network refused, on a read-only copy of the test images: its submission is the pipeline's."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import yaml
from dvc_repo import ROOT, SMALL, make_repo, run
from kaggle_image import KEPT, fresh_image, versions

from segpipe.bundle.manifest import Manifest
from segpipe.bundle.wheels import closure
from segpipe.core.errors import InputError

OFFLINE = {"PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": "", "PIP_INDEX_URL": "",
           "PIP_EXTRA_INDEX_URL": "", "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


# tile mode (sliding windows) and several classes at once: the multi-label kind cut into 32 x 32 tiles
TILED_CLASSES = {"synthetic": {**SMALL["synthetic"], "kind": "multi"},
                 "prepare": {"mode": "tile", "scale": 1.0, "tile": [32, 32]}}


def bundled(repo: Path) -> Path:
    """`dvc repro` (its bundle stage) and make bundle's wheels in `repo`."""
    run(["dvc", "repro"], repo)
    run([sys.executable, "stages/bundle_wheels.py", "--bundle", "bundle", "--project", str(ROOT)], repo)
    return repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return bundled(make_repo(tmp_path_factory.mktemp("bundle"), {}))


@pytest.fixture(scope="module")
def tiled_repo(tmp_path_factory) -> Path:
    return bundled(make_repo(tmp_path_factory.mktemp("bundle_tiled"), TILED_CLASSES))


def image_venv(folder: Path, preinstalled: list[str]) -> Path:
    """A fresh venv holding only `preinstalled` and what they require (a Kaggle image), linked from this one."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, capture_output=True)
    python = folder / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    for name in sorted(closure(preinstalled)):
        dist = metadata.distribution(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if ".." not in Path(str(f)).parts}
        for top in sorted(tops):
            source, target = Path(dist.locate_file(top)), site / top
            if source.exists() and not target.exists():
                target.symlink_to(source)
    return python


@pytest.fixture
def image(repo, tmp_path) -> Path:
    """A fresh image for each test: what one kernel installs must not help the next."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    return image_venv(tmp_path / "venv", params["bundle"]["preinstalled"])


def kaggle_input(repo: Path, where: Path, wheels: Path | None = None) -> Path:
    """/kaggle/input as a notebook sees it: the bundle dataset and the data, read-only."""
    (where / "working").mkdir(parents=True)
    shutil.copytree(repo / "bundle", where / "input" / "segpipe-bundle", symlinks=False,
                    ignore=shutil.ignore_patterns("wheels") if wheels else None)
    if wheels:
        shutil.copytree(wheels, where / "input" / "segpipe-bundle" / "wheels")
    shutil.copytree(repo / "data/raw/synthetic", where / "input" / "synthetic")
    for path in (where / "input").rglob("*"):
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return where


def checksums(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_kernel(python: Path, where: Path) -> subprocess.CompletedProcess:
    kernel = where / "input" / "segpipe-bundle" / "kernel" / "infer.py"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}, **OFFLINE,
           "SEGPIPE_KAGGLE_INPUT": str(where / "input"), "SEGPIPE_KAGGLE_WORKING": str(where / "working"),
           "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(python), str(kernel)], cwd=where / "working", env=env, capture_output=True, text=True)


def test_the_bundle_holds_the_models_rules_and_kaggle_metadata_and_no_training_cache(repo):
    bundle = repo / "bundle"
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert list(manifest["models"]) == ["unet"] and len(manifest["models"]["unet"]["folds"]) == 2
    assert manifest["speed"]["images_per_second"] > 0 and manifest["speed"]["device_type"] == "cpu"
    assert manifest["built_with"]["torch"] == metadata.version("torch")
    assert sorted(p.name for p in (bundle / "models/unet").iterdir()) == ["fold0.safetensors", "fold1.safetensors"]
    assert not [p for p in bundle.rglob("*") if p.suffix in (".npy", ".pt", ".npz", ".lock")]  # no cache, no DVC
    kernel = json.loads((bundle / "kernel/kernel-metadata.json").read_text())
    assert kernel["enable_internet"] is False and kernel["enable_gpu"] is True
    assert kernel["dataset_sources"] == ["KAGGLE_USERNAME/segpipe-bundle"] and kernel["code_file"] == "infer.py"
    assert json.loads((bundle / "dataset-metadata.json").read_text())["id"] == "KAGGLE_USERNAME/segpipe-bundle"
    pins = (bundle / "wheels/requirements.txt").read_text().split()
    assert pins[0] == "segpipe==0.1.0" and f"timm=={metadata.version('timm')}" in pins
    assert not any(p.split("==")[0] in ("torch", "numpy", "pandas", "torchvision") for p in pins)  # the image's


def test_the_kernel_installs_offline_in_a_fresh_image_and_writes_the_pipelines_submission(repo, image, tmp_path):
    where = kaggle_input(repo, tmp_path)
    before = checksums(where / "input" / "synthetic")
    done = run_kernel(image, where)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "projected" in done.stdout
    written = (where / "working" / "submission.csv").read_bytes()
    assert written == gzip.decompress((repo / "submissions/submit.csv.gz").read_bytes())  # rows, ids, order, masks
    assert checksums(where / "input" / "synthetic") == before


def test_in_a_kaggle_like_image_the_kernel_keeps_its_packages_and_writes_the_same_submission(repo, tmp_path):
    """Built on Python 3.11 and torch 2.14.1 (the lock); run on Python 3.12, torch 2.10 and an older PyYAML."""
    python = fresh_image(tmp_path / "image")
    kept = versions(python, KEPT)
    where = kaggle_input(repo, tmp_path / "k")
    start = time.perf_counter()
    done = run_kernel(python, where)
    assert done.returncode == 0, done.stdout + done.stderr
    installed = next(line for line in done.stdout.splitlines() if line.startswith("installed from the bundle:"))
    print(f"the kernel in the Kaggle-like image: {time.perf_counter() - start:.0f} s; {installed}")
    assert "segmentation-models-pytorch==" in installed and "pyyaml" not in installed.lower()  # the image's stays
    assert f"running on Python 3.12" in done.stdout
    assert f"torch {kept['torch']} (bundle built with {metadata.version('torch')})" in done.stdout
    assert versions(python, KEPT) == kept
    written = (where / "working" / "submission.csv").read_bytes()
    assert written == gzip.decompress((repo / "submissions/submit.csv.gz").read_bytes())


def test_the_same_offline_for_tile_mode_with_classes(tiled_repo, tmp_path):
    """Sliding windows, a map per class, a row per (image, class): the kernel's file is the pipeline's."""
    params = yaml.safe_load((tiled_repo / "params.yaml").read_text())
    python = image_venv(tmp_path / "venv", params["bundle"]["preinstalled"])
    assert json.loads((tiled_repo / "bundle/layout.json").read_text())["mode"] == "tile"
    where = kaggle_input(tiled_repo, tmp_path / "k")
    done = run_kernel(python, where)
    assert done.returncode == 0, done.stdout + done.stderr
    written = (where / "working" / "submission.csv").read_bytes()
    assert written == gzip.decompress((tiled_repo / "submissions/submit.csv.gz").read_bytes())
    assert written.splitlines()[0] == b"id,rle_mask,class"


def test_a_bundle_missing_a_wheel_fails_the_install_naming_it(repo, image, tmp_path):
    wheels = tmp_path / "wheels"
    shutil.copytree(repo / "bundle/wheels", wheels)
    (missing,) = wheels.glob("timm-*.whl")
    missing.unlink()
    done = run_kernel(image, kaggle_input(repo, tmp_path / "k", wheels))
    assert done.returncode != 0
    assert "installing the bundle's wheels failed" in done.stderr and "timm" in done.stderr
    assert not (tmp_path / "k" / "working" / "submission.csv").exists()


def test_infer_refuses_to_start_when_the_projection_is_far_over_the_limit(repo, tmp_path):
    out = tmp_path / "submission.csv"
    done = subprocess.run([sys.executable, "-m", "segpipe.infer", "--bundle", str(repo / "bundle"), "--input",
                           str(repo / "data/raw/synthetic"), "--out", str(out), "--limit", "0.01s"],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "far over the limit" in done.stderr and "projected (limit 0m00s)" in done.stderr
    assert not out.exists()
    bad = subprocess.run([sys.executable, "-m", "segpipe.infer", "--bundle", str(repo / "bundle"), "--input",
                          str(repo / "data/raw/synthetic"), "--out", str(out), "--limit", "nine hours"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "--limit: time limit 'nine hours'" in bad.stderr


def test_weights_that_do_not_fit_the_architecture_are_refused_naming_the_file(repo, tmp_path):
    bundle = shutil.copytree(repo / "bundle", tmp_path / "bundle", ignore=shutil.ignore_patterns("wheels"))
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["models"]["unet"]["spec"]["decoder_channels"] = [32, 16, 8]  # another decoder than was trained
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    done = subprocess.run([sys.executable, "-m", "segpipe.infer", "--bundle", str(bundle), "--input",
                           str(repo / "data/raw/synthetic"), "--out", str(tmp_path / "s.csv")],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "fold0.safetensors: these weights do not fit Unet" in done.stderr
    assert "built with segmentation-models-pytorch" in done.stderr



def overwrite(path: Path, offset: int, data: bytes) -> None:
    """`data` written over `path` at `offset`, as a bad disk or a broken upload would leave it."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def rerecord(bundle: Path, name: str) -> None:
    """Record `name`'s present sha256 in bundle.json: as if the bundle had been built with that file."""
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["sha256"][name] = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
    (bundle / "bundle.json").write_text(json.dumps(manifest))


def infer(bundle: Path, repo: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "segpipe.infer", "--bundle", str(bundle), "--input",
                           str(repo / "data/raw/synthetic"), "--out", str(out)], capture_output=True, text=True)


def test_corrupted_weights_stop_the_kernel_naming_the_file_and_write_no_submission(repo, image, tmp_path):
    """64 KB of random bytes inside a tensor still load: only their sha256 tells (the run used to submit zeros)."""
    where = kaggle_input(repo, tmp_path)
    weights = where / "input" / "segpipe-bundle" / "models" / "unet" / "fold1.safetensors"
    weights.chmod(0o644)
    overwrite(weights, weights.stat().st_size // 2, np.random.default_rng(0).bytes(64 * 1024))
    done = run_kernel(image, where)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {weights}: its sha256 ") and "make bundle" in line, line
    assert not (where / "working" / "submission.csv").exists()


def test_a_corrupted_safetensors_header_is_one_line_naming_the_file(repo, tmp_path):
    bundle = shutil.copytree(repo / "bundle", tmp_path / "bundle", ignore=shutil.ignore_patterns("wheels"))
    weights = bundle / "models" / "unet" / "fold1.safetensors"
    overwrite(weights, 8, b"\xff" * 64)  # the JSON header, after its 8-byte length
    done = infer(bundle, repo, tmp_path / "s.csv")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: {weights}: ")
    assert not (tmp_path / "s.csv").exists()
    rerecord(bundle, "models/unet/fold1.safetensors")  # the checksum agrees: safetensors' own error is named
    with pytest.raises(InputError, match=f"{weights}: not a readable safetensors file"):
        Manifest.read(bundle).load_models("unet")


def test_non_finite_weights_are_refused_naming_the_file_and_tensor(repo, tmp_path):
    """A bundle built from a diverged fold: its checksums agree, its weights are NaN."""
    from safetensors.torch import load_file, save_file

    bundle = shutil.copytree(repo / "bundle", tmp_path / "bundle", ignore=shutil.ignore_patterns("wheels"))
    weights = bundle / "models" / "unet" / "fold1.safetensors"
    state = load_file(weights)
    name = sorted(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)[0]
    state[name] = state[name].clone()
    state[name].view(-1)[:2] = float("nan")
    save_file(state, str(weights))
    rerecord(bundle, "models/unet/fold1.safetensors")
    with pytest.raises(InputError, match=rf"{weights}: 2 of \d+ weights are not finite \(NaN or infinite\), in "
                                         rf"{re.escape(name)}"):
        Manifest.read(bundle).load_models("unet")
