"""Ablation of the default recipe: CV Dice per row over several seeds, with the real `dvc repro`.

Each row is a set of param overrides on top of params.yaml; each (row, seed) runs
`dvc repro threshold` (download ... blend, threshold: no predict or submit) in a scratch copy
of this repository, and reads metrics/blend.json (the best plain cut, before post-processing)
and metrics/cv.json (after it). Prints a markdown table: mean and spread (min-max) over the
seeds of per-image and per-patient CV Dice, before and after post-processing, and the mean
wall time of a run. The rows are run one at a time; don't run anything else on the machine
meanwhile, or the times mean nothing.

    python bench/ablation.py                        # every row, seeds 42 1 2
    python bench/ablation.py --rows baseline "context 1" --seeds 42
    python bench/ablation.py --rows competition --seeds 42   # the competition recipe
    python bench/ablation.py --rows plan "lr 0.003"           # the planned defaults against lr 0.003
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

# The plan's defaults (`auto` everywhere), then the recipe rows of docs/recipe.md: lr 0.01, 2D,
# no EMA, then each addition alone, then all together.
ROWS = {
    "plan": {},
    "baseline": {"train.lr": 0.01, "train.context": 0, "train.ema": 0.0},
    "lr 0.003": {"train.lr": 0.003, "train.context": 0, "train.ema": 0.0},
    "EMA 0.99": {"train.lr": 0.01, "train.context": 0, "train.ema": 0.99},
    "context 1": {"train.lr": 0.01, "train.context": 1, "train.ema": 0.0},
    "all": {"train.lr": 0.003, "train.context": 1, "train.ema": 0.99},
    "z-score": {"train.normalize": "image"},
}
# Not run by default: the competition recipe of docs/recipe.md (two models, more epochs).
EXTRA = {
    "competition": {"train.lr": 0.003, "train.context": 1, "train.ema": 0.99, "train.epochs": 20,
                    "models": {"unet": {}, "wide": {"decoder_channels": [128, 64, 32, 16, 8]}}},
}


def set_key(params: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def scratch_copy(into: Path) -> Path:
    """This repository's tracked and untracked-but-not-ignored files, as a fresh git repo."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    for name in files:
        if (ROOT / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, into / name)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "ablation"]):
        subprocess.run(cmd, cwd=into, check=True, capture_output=True)
    return into


def run_env(repo: Path) -> dict:
    """The environment a scratch copy runs `dvc repro` in: this Python's tools first, and the copy's
    own src/ ahead of the editable install, so a run uses the code it was copied from, whatever is
    edited here while it runs. OMP_NUM_THREADS passes through: two runs side by side on 2 cores, one
    thread each, cost about what one costs alone (docs/performance.md#busy-cores)."""
    threads = {"OMP_NUM_THREADS": os.environ["OMP_NUM_THREADS"]} if "OMP_NUM_THREADS" in os.environ else {}
    return {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(Path.home()),
            "PYTHONPATH": str(repo / "src"), **threads}


def run_one(repo: Path, base: dict, overrides: dict, seed: int) -> dict:
    params = json.loads(json.dumps(base))
    for key, value in {**overrides, "base.seed": seed}.items():
        set_key(params, key, value)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    start = time.perf_counter()
    done = subprocess.run(["dvc", "repro", "threshold"], cwd=repo, capture_output=True, text=True, env=run_env(repo))
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"dvc repro failed for {overrides} seed {seed}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    blend = json.loads((repo / "metrics/blend.json").read_text())
    cv = json.loads((repo / "metrics/cv.json").read_text())
    return {"dice_plain": blend["dice"], "patient_plain": blend["patient_dice"], "dice": cv["dice"],
            "patient": cv["patient_dice"], "wall": wall, "folds": {k: v["dice"] for k, v in cv["folds"].items()}}


def spread(values: list[float]) -> str:
    mean = sum(values) / len(values)
    return f"{mean:.4f} ({min(values):.3f}-{max(values):.3f})" if len(values) > 1 else f"{mean:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=[*ROWS, *EXTRA])
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 1, 2])
    parser.add_argument("--log", type=Path, default=None, help="append each run's result here as a json line")
    args = parser.parse_args()
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    table = ["| row | overrides | per-image Dice, plain cut | per-patient, plain cut | per-image Dice, "
             "post-processed | per-patient, post-processed | wall per run |", "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="segpipe-ablation-") as tmp:
        repo = scratch_copy(Path(tmp))
        for row in args.rows:
            results = []
            for seed in args.seeds:
                result = run_one(repo, base, {**ROWS, **EXTRA}[row], seed)
                results.append(result)
                line = {"row": row, "seed": seed, **result}
                print(json.dumps(line), flush=True)
                if args.log:
                    with args.log.open("a") as log:
                        log.write(json.dumps(line) + "\n")
            overrides = " ".join(f"{k}={v}" for k, v in {**ROWS, **EXTRA}[row].items())
            table.append(f"| {row} | `{overrides}` | " + " | ".join(
                spread([r[key] for r in results]) for key in ("dice_plain", "patient_plain", "dice", "patient"))
                + f" | {sum(r['wall'] for r in results) / len(results):.0f} s |")
    print("\n".join(table))


if __name__ == "__main__":
    main()
