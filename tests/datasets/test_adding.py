"""docs/competition.md's worked example adds a competition with its module and its params section, nothing else.

The page's adapter is dropped into a copy of the package and its yaml into a copy of params.yaml; a fresh
interpreter on that copy finds the dataset by name, validates its section with the module's own `Params`,
and indexes, downloads and loads a tiny tree in the example's layout.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "competition.md"
TRAIN, TEST = ("a10", "a2", "b1"), ("t2", "t1")  # natural order a2 < a10; the sample's order t2, t1

SCRIPT = """
import json, sys
from pathlib import Path
from segpipe import datasets
from segpipe.config.params import load_params
from segpipe.config.sections import dataset_names

params = load_params("params.yaml")  # every section, cells' by the new module's Params
section = datasets.section_of(params)
raw, index = Path("data/raw/cells"), Path("data/source.csv")
datasets.index("cells", index, sources=Path("data/sources"), owned=Path("data/raw"), **section.adapter_options())
datasets.download("cells", raw, index_file=index, **section.adapter_options())
competition = datasets.load_chosen(params, raw, Path("data/sources"))
print(json.dumps({"names": dataset_names(), "module": datasets.adapter("cells").__file__,
                  "train": competition.train.id.tolist(), "groups": competition.train.group.tolist(),
                  "test": competition.test.id.tolist(), "header": competition.submission.header(),
                  "source": section.source}))
"""


def fenced(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", PAGE.read_text(), re.S | re.M)


def build(root: Path) -> Path:
    """The example's layout: train/images, train/masks, test/images, sample_submission.csv."""
    rng = np.random.default_rng(0)
    for folder in ("train/images", "train/masks", "test/images"):
        (root / folder).mkdir(parents=True)
    for name in TRAIN:
        cv2.imwrite(str(root / "train/images" / f"{name}.png"), rng.integers(0, 255, (32, 32, 3), np.uint8))
        cv2.imwrite(str(root / "train/masks" / f"{name}.png"), (rng.random((32, 32)) > 0.7).astype(np.uint8) * 255)
    for name in TEST:
        cv2.imwrite(str(root / "test/images" / f"{name}.png"), rng.integers(0, 255, (32, 32, 3), np.uint8))
    (root / "sample_submission.csv").write_text("id,rle_mask\n" + "".join(f"{name},1 1\n" for name in TEST))
    return root


def test_the_worked_example_is_one_module_and_one_params_section(tmp_path: Path) -> None:
    [module] = [block for block in fenced("python") if "class Params(DatasetSection)" in block]
    [section] = [block for block in fenced("yaml") if block.startswith("cells:")]
    package = tmp_path / "src" / "segpipe"
    shutil.copytree(ROOT / "src" / "segpipe", package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "datasets" / "adapters" / "cells.py").write_text(module)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(yaml.safe_load(section))
    params["base"]["dataset"] = "cells"
    params["cells"]["source"] = str(build(tmp_path / "my cells"))
    work = tmp_path / "work"
    (work / "data" / "sources").mkdir(parents=True)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = {path: path.read_bytes() for path in (tmp_path / "my cells").rglob("*") if path.is_file()}

    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=work, capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path / "src"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert "cells" in found["names"] and found["module"] == str(package / "datasets" / "adapters" / "cells.py")
    assert found["train"] == ["a2", "a10", "b1"] and found["groups"] == found["train"]  # each image its own group
    assert found["test"] == list(TEST) and found["header"] == ["id", "rle_mask"]
    assert found["source"] == params["cells"]["source"]
    assert {path: path.read_bytes() for path in (tmp_path / "my cells").rglob("*") if path.is_file()} == before
