"""The README's Kaggle Notebook lines, run in a Kaggle-like environment unlike the lock's (Python 3.12, torch 2.10,
the image's older numpy, pandas and PyYAML: tests/kaggle_image.py).

Each `!` line of the README's "In a Kaggle Notebook" section runs as a notebook cell would, with three
substitutions: the clone URL is a copy of this repository (small params), `base.dataset=lgg` is the
synthetic set (no LGG here), and `make submit` / `make bundle`, which need Kaggle, run as `make -n`
(their commands are printed, not run). The install must keep the image's packages exactly and add
at most 400 MB; the run must go from source to submission on the image's torch.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

from dvc_repo import ROOT, make_repo
from kaggle_image import KEPT, added_mb, fresh_image, versions
ADDED_MB = 400  # what segpipe may add to a notebook's environment
URL = "https://github.com/<you>/segpipe"


def notebook_lines() -> list[str]:
    """The `!` lines of the fenced blocks in the README's "In a Kaggle Notebook" section, without the `!`."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## In a Kaggle Notebook\n", 1)[1].split("\n## ", 1)[0]
    return [line.strip()[1:] for line in section.splitlines() if line.strip().startswith("!")]


def as_run_here(line: str, source: Path) -> str:
    line = line.replace(URL, str(source)).replace("base.dataset=lgg", "base.dataset=synthetic")
    return re.sub(r"\bmake (submit|bundle)\b", r"make -n \1", line)


def test_the_readme_notebook_path_installs_on_the_images_torch_and_runs_the_pipeline(tmp_path):
    lines = notebook_lines()
    assert len(lines) == 5 and lines[0].startswith(f"git clone {URL} ") and "make install VENV=" in lines[0]
    python = fresh_image(tmp_path / "image")
    kept = versions(python, KEPT)
    source = make_repo(tmp_path / "source", {})
    work = tmp_path / "working"
    work.mkdir()
    env = {**{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
           "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"}
    outputs = []
    for line in lines:
        start = time.perf_counter()
        done = subprocess.run(["bash", "-c", as_run_here(line, source)], cwd=work, env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, f"!{line}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)
        if "make install" in line:
            print(f"make install VENV= in the image: {time.perf_counter() - start:.0f} s, "
                  f"{added_mb(tmp_path / 'image'):.0f} MB added")
            assert versions(python, KEPT) == kept  # nothing of the image replaced
            assert added_mb(tmp_path / "image") <= ADDED_MB
    repo = work / "segpipe"
    assert json.loads((repo / "metrics/cv.json").read_text())["dice"] > 0  # the pipeline ran, source to submit
    assert (repo / "submissions/submit.csv.gz").stat().st_size > 0
    assert versions(python, ("torch",))["torch"].startswith("2.10.0")  # on the image's torch
    assert "Experiment" in outputs[2] and "dice" in outputs[2]  # dvc exp show, dvc metrics diff
    assert f"{python.parent}/python3 stages/kaggle_submit.py --message" in outputs[3]
    assert "-m dvc repro bundle" in outputs[4] and "stages/bundle_wheels.py" in outputs[4]
    assert versions(python, KEPT) == kept
