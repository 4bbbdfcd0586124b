"""The wheels bench/gpu_pass.py installs on a CUDA machine that reaches no package index.

`python bench/gpu_wheels.py` (after `make install`, with the package index) downloads into .whl/,
which git ignores here, the Python 3.12 x86_64 wheels of every package the lock installed into
.venv, less the ones a CUDA image always has (torch and NVIDIA's libraries, the scientific
stack): about 44 MB. On the machine, the pass installs only those it lacks (`choose_wheels`).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
IMAGE_HAS = re.compile(
    r"(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*|numpy|scipy|pandas|opencv-python.*|numba|llvmlite"
    r"|scikit-learn|matplotlib|pillow|pyarrow|fonttools|kiwisolver|contourpy|sympy|mpmath|networkx"
    r"|jinja2|markupsafe|fsspec|pip|wheel|segpipe|pytest|pytest-xdist|hypothesis|execnet)==", re.IGNORECASE)
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in (35, 34, 31, 28, 27, 26, 24, 17)] + [
    "manylinux2014_x86_64", "manylinux1_x86_64", "any"]


def installed_version(project: str) -> str | None:
    try:
        return metadata.version(project)
    except metadata.PackageNotFoundError:
        return None


def choose_wheels(wheels: list[Path], installed: Callable[[str], str | None], ranges: list[str]) -> list[Path]:
    """The `wheels` whose project this Python lacks, or has at a version outside segpipe's range for it
    (`ranges`: pyproject's dependencies). What the image has stays: its torch above all."""
    wanted = {canonicalize_name(r.name): r.specifier for r in map(Requirement, ranges)}
    chosen = []
    for wheel in wheels:
        project = canonicalize_name(wheel.name.split("-")[0])
        version = installed(project)
        if version is None or (project in wanted and not wanted[project].contains(version, prereleases=True)):
            chosen.append(wheel)
    return chosen


def main() -> None:
    pip = ROOT / ".venv/bin/pip"
    if not pip.is_file():
        sys.exit(f"gpu_wheels: {pip} not found: run 'make install' first")
    exclude = ROOT / ".git/info/exclude"
    if exclude.parent.is_dir() and "/.whl/" not in exclude.read_text().split():
        with exclude.open("a") as file:
            file.write("/.whl/\n")
    frozen = subprocess.run([pip, "list", "--format=freeze", "--exclude-editable"], check=True, capture_output=True,
                            text=True).stdout.split()
    folder = ROOT / ".whl"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    # --no-deps: the lock is already the whole closure
    subprocess.run([pip, "download", "--quiet", "--no-deps", "--prefer-binary", "--python-version", "3.12",
                    "--implementation", "cp", *(f"--platform={p}" for p in PLATFORMS), "-d", folder,
                    *(line for line in frozen if not IMAGE_HAS.match(line))], check=True)
    for source in folder.glob("*.tar.gz"):  # published only as sources (antlr4-python3-runtime, for hydra)
        subprocess.run([pip, "wheel", "--quiet", "--no-deps", "-w", folder, source], check=True)
        source.unlink()
    wheels = list(folder.glob("*.whl"))
    print(f"{len(wheels)} wheels, {sum(w.stat().st_size for w in wheels) / 2**20:.0f} MB, in {folder}")


if __name__ == "__main__":
    main()
