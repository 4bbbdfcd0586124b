"""The real LGG brain MRI (110 patients), end to end: wall time, OOF and holdout Dice, per image and per patient.

Runs the real `dvc repro` (download ... submit) with `base.dataset=lgg` and
`lgg.source=SOURCE` plus any overrides, in a scratch copy of this repository (the source
is read in place, never written), and prints one json line and a markdown row. The
holdout is `lgg.holdout_patients` (0.2: 22 patients), scored by the submit stage. How to
get the data: docs/plan.md#the-real-lgg-benchmark.

    python bench/real_lgg.py /data/lgg                               # the default plan, five folds
    python bench/real_lgg.py /data/lgg -S 'folds.train=[0]' -S train.lr=0.003   # an ablation row, fold 0
"""
from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ablation import ROOT, run_env, scratch_copy, set_key  # noqa: E402  (bench/ is not a package)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="the LGG folder (kaggle_3m/ or a folder above it), or its zip")
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a param override, its value parsed as YAML (as `dvc exp run -S` does)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="copy the run's metrics/, data/plan.json and the dvc output (repro.log) here")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="run in this new folder and leave it there (to rerun later stages with other params)")
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    overrides = {"base.dataset": "lgg", "lgg.source": str(args.source.resolve())}
    for item in args.overrides:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    for key, value in overrides.items():
        set_key(params, key, value)
    if args.workdir:
        args.workdir.mkdir(parents=True)  # a new folder: never run over an earlier one
    with contextlib.nullcontext(args.workdir) if args.workdir else tempfile.TemporaryDirectory(prefix="segpipe-lgg-") as tmp:
        repo = scratch_copy(Path(tmp))
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        start = time.perf_counter()
        done = subprocess.run(["dvc", "repro"], cwd=repo, capture_output=True, text=True,
                              env=run_env(repo))
        wall = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"dvc repro failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        cv = json.loads((repo / "metrics/cv.json").read_text())
        holdout = json.loads((repo / "metrics/holdout.json").read_text())
        plan = json.loads((repo / "data/plan.json").read_text())
        if args.keep:
            kept = [str(repo / "metrics"), str(repo / "data/plan.json"), str(args.keep)]
            args.keep.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-r", *kept], check=True)
            (args.keep / "repro.log").write_text(done.stdout + done.stderr)
    model = next(iter(plan["models"].values()))
    sides = plan["prepare"]["size"] if plan["prepare"]["mode"] == "resize" else plan["prepare"]["tile"]
    result = {"overrides": args.overrides, "wall_s": round(wall), "size": sides, "steps": model["steps"],
              "lr": model["lr"], "oof_dice": cv["dice"], "oof_patient_dice": cv["patient_dice"],
              "holdout_dice": holdout["dice"], "holdout_patient_dice": holdout["patient_dice"],
              "empty_dice": cv["baselines"]["empty_dice"]}
    print(json.dumps(result))
    print("| overrides | wall | size | steps | OOF per image | OOF per patient | holdout per image "
          "| holdout per patient |")
    print(f"| `{' '.join(args.overrides) or 'none'}` | {wall / 60:.1f} min | {sides[0]}x{sides[1]} | {model['steps']} "
          f"| {cv['dice']:.4f} | {cv['patient_dice']:.4f} | {holdout['dice']:.4f} | {holdout['patient_dice']:.4f} |")


if __name__ == "__main__":
    main()
