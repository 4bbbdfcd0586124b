"""A Kaggle Notebook's environment, unlike the lock's: Python 3.12 with the image's torch 2.10 / torchvision
0.25 (CUDA 12.8 builds, as on Kaggle), its older numpy, pandas, PyYAML, OpenCV and numba, and the
SciPy, scikit-learn and matplotlib every Kaggle image has (shared/DATASETS.md, "The Kaggle Notebook
image"); not timm, albumentations or DVC, which segpipe's install adds.

Built once from the package index into ~/.cache/segpipe/ (about 7.5 GB, 3 to 11 minutes), in a
folder named by its package list, and reused. Each test gets a fresh copy: a new venv whose site-packages are hard
links to the base's, so an install in it adds files there and never changes the base.
"""
from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PYTHON = "3.12"
PACKAGES = ("torch==2.10.0", "torchvision==0.25.0", "numpy==2.0.2", "pandas==2.2.3",
            "opencv-python-headless==4.11.0.86", "PyYAML==6.0.2", "numba==0.61.2", "scipy==1.15.3",
            "scikit-learn==1.6.1", "matplotlib==3.10.0")
KEPT = ("torch", "torchvision", "numpy", "pandas", "opencv-python-headless", "PyYAML", "numba", "scipy",
        "scikit-learn", "matplotlib")  # the image's: never replaced
CACHE = Path.home() / ".cache" / "segpipe"
STAMP = "segpipe-image.txt"


def base_folder() -> Path:
    """The base environment's folder: named by its package list, so runs that want other packages never
    share (or remove) one."""
    digest = hashlib.sha256("\n".join(PACKAGES).encode()).hexdigest()[:12]
    return CACHE / f"kaggle-image-py{PYTHON}-{digest}"

def interpreter() -> str:
    """A Python 3.12 to build venvs with: pyenv's, or one on PATH (not a pyenv shim, which needs PYENV_VERSION)."""
    installed = sorted(glob.glob(str(Path.home() / f".pyenv/versions/{PYTHON}.*/bin/python{PYTHON}")))
    on_path = shutil.which(f"python{PYTHON}")
    found = installed[-1] if installed else on_path if on_path and "/shims/" not in on_path else None
    if not found:
        pytest.fail(f"no Python {PYTHON} here (on PATH or under ~/.pyenv/versions): the Kaggle-image tests need one")
    return found


def site_packages(venv: Path) -> Path:
    return venv / "lib" / f"python{PYTHON}" / "site-packages"


def base_image() -> Path:
    """The base environment, built from the package index if it is missing.

    Built in a temporary folder and renamed into place under a lock, so test runs at the same
    time (a developer's and CI's) wait for one build instead of removing each other's.
    """
    base = base_folder()
    if (base / STAMP).is_file():
        return base
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{base.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (base / STAMP).is_file():  # another run built it while this one waited
            return base
        building = base.with_name(f"{base.name}.tmp-{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        subprocess.run([interpreter(), "-m", "venv", str(building)], check=True, capture_output=True)
        done = subprocess.run([str(building / "bin" / "python"), "-m", "pip", "install", "--quiet", *PACKAGES],
                              capture_output=True, text=True)
        assert done.returncode == 0, \
            f"building the Kaggle-like image failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        (building / STAMP).write_text("\n".join(PACKAGES) + "\n")
        shutil.rmtree(base, ignore_errors=True)  # a build that died before its stamp
        building.rename(base)  # a venv runs from its new folder: `bin/python` finds pyvenv.cfg beside it
    return base

def fresh_image(venv: Path) -> Path:
    """A new venv holding exactly the base image's packages (hard links); its python."""
    base = base_image()
    subprocess.run([interpreter(), "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    shutil.rmtree(site_packages(venv))
    subprocess.run(["cp", "-al", str(site_packages(base)), str(site_packages(venv))], check=True)
    return venv / "bin" / "python"


def added_mb(venv: Path) -> float:
    """MB of files in the venv's site-packages that are not the base image's (not hard links)."""
    total = 0
    for root, _, files in os.walk(site_packages(venv)):
        for name in files:
            stat = os.lstat(os.path.join(root, name))
            total += stat.st_size if stat.st_nlink == 1 else 0
    return total / 1e6


def versions(python: Path, names: tuple[str, ...]) -> dict[str, str]:
    """The installed version of each of `names` in `python`'s environment."""
    code = "import sys; from importlib import metadata; print(*[metadata.version(n) for n in sys.argv[1:]])"
    done = subprocess.run([str(python), "-c", code, *names], check=True, capture_output=True, text=True)
    return dict(zip(names, done.stdout.split()))
