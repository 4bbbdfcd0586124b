"""Every library module a stage script imports, directly or through other modules, is a dep of its stage.

Otherwise DVC would not rerun the stage when that module changes, and a stale cache would
hide the change. Imports inside functions count too (the lazy Kaggle client), and so do
modules named in strings: a package so named counts as all of its modules (the dataset
adapters, imported by name with importlib). Conversely, a dep
on a module the script never imports would rerun the stage for nothing.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def stages() -> dict[str, dict]:
    """Stage name -> its definition (a foreach stage's `do` block)."""
    raw = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in raw.items()}


def module_file(name: str) -> Path | None:
    """The file of module `name` under src/, or None if it is not ours."""
    path = SRC.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_files(path: Path) -> set[Path]:
    """Our module files that `path` imports, directly."""
    package = ".".join(path.relative_to(SRC).with_suffix("").parts[:-1]) if path.is_relative_to(SRC) else ""
    if path.name == "__init__.py":
        package = ".".join(path.relative_to(SRC).parts[:-1])
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from .tree import Tree
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names += [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("segpipe."):
            names.append(node.value)  # importlib.import_module(f"{ADAPTERS}.{name}"): the adapters
            package = SRC.joinpath(*node.value.split("."))
            if (package / "__init__.py").is_file():
                names += [f"{node.value}.{module.stem}" for module in package.glob("*.py")]
    found = set()
    for name in names:
        parts = name.split(".")
        for end in range(1, len(parts) + 1):  # a.b.c imports a and a.b too
            file = module_file(".".join(parts[:end]))
            if file is not None:
                found.add(file)
    return found


def is_docstring_only(file: Path) -> bool:
    """A package `__init__.py` that only says what the package is for: nothing in it can change a result."""
    body = ast.parse(file.read_text()).body
    return file.name == "__init__.py" and all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                                             for node in body)


def transitive_imports(script: Path) -> set[Path]:
    seen, todo = set(), [script]
    while todo:
        for file in imported_files(todo.pop()):
            if file not in seen:
                seen.add(file)
                todo.append(file)
    return seen


def test_the_scan_finds_imports_through_other_modules():
    found = transitive_imports(ROOT / "stages" / "prepare.py")
    assert SRC / "segpipe" / "datasets" / "tree.py" in found  # prepare -> config -> datasets -> tree
    assert SRC / "segpipe" / "kaggle.py" in found  # a lazy import inside a function


@pytest.mark.parametrize("name", sorted(stages()))
def test_a_stage_depends_on_every_module_its_script_imports(name):
    stage = stages()[name]
    script = next(ROOT / word for word in stage["cmd"].split() if word.startswith("stages/"))
    deps = [ROOT / dep for dep in stage.get("deps", []) if "${" not in dep]
    assert script in deps, f"{name}: its script {script.name} is not a dep"
    missing = sorted(str(file.relative_to(ROOT)) for file in transitive_imports(script)
                     if not is_docstring_only(file)
                     if not any(file == dep or file.is_relative_to(dep) for dep in deps))
    assert not missing, f"dvc.yaml stage {name} imports these but does not depend on them: {missing}"


@pytest.mark.parametrize("name", sorted(stages()))
def test_a_stage_depends_on_no_module_it_does_not_import(name):
    """An extra dep reruns the stage (a retrain, for train@k) on changes it cannot see."""
    stage = stages()[name]
    script = next(ROOT / word for word in stage["cmd"].split() if word.startswith("stages/"))
    imported = transitive_imports(script)
    extra = [dep for dep in stage.get("deps", []) if dep.startswith("src/")
             if not any(file == ROOT / dep or file.is_relative_to(ROOT / dep) for file in imported)]
    assert not extra, f"dvc.yaml stage {name} depends on modules its script never imports: {extra}"


def test_training_does_not_depend_on_the_other_stages_params_code():
    """A new section for another stage goes into its own module under config/; that must never retrain a model."""
    deps = stages()["train"]["deps"]
    assert "src/segpipe/config/params.py" not in deps and "src/segpipe/config/train.py" in deps
    assert not any(dep.endswith(("tune.py", "postprocess.py", "blend.py", "oof.py")) for dep in deps)


@pytest.mark.parametrize("name", ["download", "prepare", "folds", "predict", "blend", "threshold", "submit", "report"])
def test_editing_train_reruns_no_stage_but_train(name):
    """`train`'s code (its params section, the loop, the sampler) is no dep of the other stages: a new Train
    field never re-decodes the data nor reruns the networks on the test set."""
    imported = transitive_imports(ROOT / "stages" / f"{name}.py")
    assert SRC / "segpipe" / "config" / "train.py" not in imported
    assert not any(file.is_relative_to(SRC / "segpipe" / "training") for file in imported)


def test_predict_does_not_depend_on_preparing_or_evaluating():
    imported = transitive_imports(ROOT / "stages" / "predict.py")
    for module in ("cache/prepare.py", "config/evaluation.py", "evaluation/tune.py", "evaluation/blend.py"):
        assert SRC / "segpipe" / module not in imported, module
