"""The bundle's wheels: segpipe and what `segpipe.infer` needs that the notebook image lacks.

What infer imports (`INFER`) and everything those require, as this environment's package
metadata says (markers evaluated here), less what the image already has (`bundle.preinstalled`)
and everything *that* requires: the image brings its packages' dependencies with them. Each is
downloaded at the version installed here, as binary wheels for every Python the image may run
(`bundle.pythons`: a pure or abi3 wheel serves them all, a compiled one comes once per Python)
and its platforms; `wheels/requirements.txt` lists them, segpipe first. The kernel installs only
those the image lacks, with the image's own packages pinned as they are
(`segpipe.bundle.kernel`), so a newer wheel never replaces the image's torch, numpy or PyYAML.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Iterable, Sequence

from packaging.requirements import Requirement

from segpipe.core.errors import InputError

# What segpipe.infer imports, directly or through segpipe's modules. tests/test_bundle.py proves it is
# enough: the kernel runs in a venv that holds only the image's packages and these wheels.
INFER = ("torch", "torchvision", "segmentation-models-pytorch", "timm", "safetensors", "numpy", "pandas",
         "opencv-python-headless", "numba", "tqdm", "pillow", "packaging",
         "pydantic")  # each dataset adapter declares its params section (segpipe.datasets.base)
REQUIREMENTS = "requirements.txt"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requires(name: str, extras: Iterable[str] = ()) -> list[tuple[str, frozenset[str]]]:
    """The distributions `name` (with `extras`) requires here, each with the extras it asks for; markers
    are evaluated in this environment."""
    try:
        listed = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        raise InputError(f"{name}: not installed here, so its wheel cannot be pinned; run `make install`") from None
    found = []
    for text in listed:
        requirement = Requirement(text)
        wanted = requirement.marker is None or any(requirement.marker.evaluate({"extra": extra})
                                                   for extra in ("", *extras))
        if wanted:
            found.append((canonical(requirement.name), frozenset(requirement.extras)))
    return found


def closure(names: Iterable[str]) -> set[str]:
    """`names` and everything they require (their extras' requirements too), recursively."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(canonical(n), frozenset()) for n in names]
    while todo:
        item = todo.pop()
        if item not in seen:
            seen.add(item)
            todo.extend(requires(*item))
    return {name for name, _ in seen}


def needed(preinstalled: Sequence[str], infer: Sequence[str] = INFER) -> list[str]:
    """The distributions to ship: infer's closure less the image's closure, sorted."""
    return sorted(closure(infer) - closure(preinstalled))


def pins(names: Iterable[str]) -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in names]


def download(out: Path, names: Sequence[str], pythons: Sequence[str], platforms: Sequence[str],
             project: Path) -> list[str]:
    """Fill `out` with segpipe's wheel and each of `names`' wheels for every Python in `pythons`;
    write wheels/requirements.txt; the pins."""
    out.mkdir(parents=True, exist_ok=True)
    pinned = pins(names)
    for python in pythons:  # a wheel that fits several Pythons (py3-none, abi3) is downloaded once
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--python-version",
              python, "--implementation", "cp", *[f"--platform={p}" for p in platforms], "--dest", str(out),
              "--quiet", *pinned], f"downloading the wheels for Python {python}")
    with tempfile.TemporaryDirectory() as tmp:  # built from a copy: setuptools leaves build/ in the tree it builds
        source = Path(tmp) / "segpipe"
        shutil.copytree(project / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(project / name, source / name)
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "--wheel-dir",
              str(out), str(source)], "building segpipe's wheel")
    own = f"segpipe=={metadata.version('segpipe')}"
    (out / REQUIREMENTS).write_text("\n".join([own, *pinned]) + "\n")
    return [own, *pinned]


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise InputError(f"{what} failed ({' '.join(command[:6])} ...): {(done.stderr or done.stdout).strip()[-2000:]}")
