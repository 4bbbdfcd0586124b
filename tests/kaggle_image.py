"""A Kaggle Notebook's environment, unlike the lock's: Python 3.12 with the image's torch 2.10 / torchvision
0.25 (CUDA 12.8 builds, as on Kaggle), its older numpy, pandas, PyYAML, OpenCV and numba, and the
SciPy, scikit-learn and matplotlib every Kaggle image has (shared/DATASETS.md, "The Kaggle Notebook
image"); not timm, albumentations or DVC, which segpipe's install adds.

Built once from the package index into ~/.cache/segpipe/ (about 7 GB, 3 minutes) and reused while
its package list is the same. Each test gets a fresh copy: a new venv whose site-packages are hard
links to the base's, so an install in it adds files there and never changes the base.
"""
from __future__ import annotations

import glob
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
BASE = Path.home() / ".cache" / "segpipe" / f"kaggle-image-py{PYTHON}"
STAMP = "segpipe-image.txt"


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
    """The base environment, built from the package index if it is missing or holds another package list."""
    wanted = "\n".join(PACKAGES) + "\n"
    if (BASE / STAMP).is_file() and (BASE / STAMP).read_text() == wanted:
        return BASE
    shutil.rmtree(BASE, ignore_errors=True)
    subprocess.run([interpreter(), "-m", "venv", str(BASE)], check=True, capture_output=True)
    done = subprocess.run([str(BASE / "bin" / "python"), "-m", "pip", "install", "--quiet", *PACKAGES],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"building the Kaggle-like image failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    (BASE / STAMP).write_text(wanted)
    return BASE


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
