"""The versions an offline kernel runs on: said at its start, and checked against the ranges segpipe
supports (pyproject.toml's dependencies, read from segpipe's installed metadata).

A notebook image brings its own torch, numpy and pandas; the bundle was built and its submission
proven with others. A version outside the ranges is warned about, not refused: a newer image
usually runs the same code, and a kernel that stops spends the run anyway.
"""
from __future__ import annotations

import platform
from importlib import metadata

from packaging.requirements import Requirement

from segpipe.bundle.wheels import canonical

SHOWN = ("torch", "torchvision", "numpy", "pandas", "segmentation-models-pytorch", "timm")


def supported() -> dict[str, Requirement]:
    """segpipe's declared requirements, by canonical name."""
    return {canonical(r.name): r for r in map(Requirement, metadata.requires("segpipe") or [])}


def version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def outside_ranges(names=SHOWN, ranges: dict[str, Requirement] | None = None) -> list[str]:
    """'<name> <version> (segpipe supports <range>)' for each of `names` installed outside its range."""
    ranges = supported() if ranges is None else ranges
    found = []
    for name in names:
        wanted, have = ranges.get(canonical(name)), version(name)
        if wanted is not None and have is not None and not wanted.specifier.contains(have, prereleases=True):
            found.append(f"{name} {have} (segpipe supports {wanted.specifier})")
    return found


def describe(built_with: dict[str, str]) -> str:
    """One line: this Python and the versions of SHOWN here, each with the bundle's own where it differs."""
    parts = []
    for name in SHOWN:
        have, built = version(name), built_with.get(name)
        parts.append(f"{name} {have}" + (f" (bundle built with {built})" if built and built != have else ""))
    return f"running on Python {platform.python_version()}: " + ", ".join(parts)
