"""requirements.txt pins every third-party package that src/, stages/ and bench/ import."""
from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS = {"segpipe", "bench_rle", "bench_postprocess", "bench_train_step", "gpu_wheels", "side_by_side", "ablation"}  # our package and the benchmarks' shared helpers


def imported_modules() -> set[str]:
    names = set()
    for folder in ("src", "stages", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - OURS - {"__future__"}


def pinned() -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    return {re.split("[=<>~!]", line)[0].lower().replace("_", "-"): line for line in lines if line}


def test_every_imported_package_is_pinned_exactly() -> None:
    distributions = packages_distributions()
    requirements = pinned()
    modules = imported_modules()
    assert {"torch", "cv2", "pydantic", "yaml", "PIL"} <= modules  # the scan works
    for module in sorted(modules):
        names = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        assert names, f"{module}: imported but no installed package provides it"
        listed = names & set(requirements)
        assert listed, f"{module} (package {sorted(names)}) is imported but not in requirements.txt"
        for name in listed:
            assert "==" in requirements[name], f"{requirements[name]}: pin it with =="


def declared() -> dict[str, str]:
    """pyproject.toml's runtime dependencies: name -> requirement (the supported range)."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {Requirement(text).name.lower().replace("_", "-"): text for text in project["dependencies"]}


def test_the_lock_pins_exactly_what_pyproject_declares_within_its_ranges() -> None:
    from packaging.requirements import Requirement

    requirements, ranges = pinned(), declared()
    assert set(ranges) == set(requirements), "pyproject.toml's dependencies and requirements.txt name other packages"
    for name, text in ranges.items():
        version = requirements[name].split("==")[1]
        assert Requirement(text).specifier.contains(version, prereleases=True), \
            f"requirements.txt pins {requirements[name]}, outside pyproject.toml's {text}"
