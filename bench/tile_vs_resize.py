"""Tile mode against resize mode on the thin-structure synthetic, at (about) equal training time.

Both rows run the real `dvc repro` in a scratch copy (`ablation.scratch_copy`) on the same
data: `synthetic.kind: thin`, 512x768 images, a fifth of the patients held out as a
labelled test set. Resize mode trains on whole images shrunk 4x (128x192) or 2x (256x384);
tile mode on 128² crops at native size, predicted back by sliding windows. A tile-mode
epoch covers 16x the pixels of a 4x-resize epoch (4x those of a 2x one), so resize mode
gets 16x (4x) the epochs. Both are scored the
same way, on the held-out images at native resolution (`metrics/holdout.json`: what a
leaderboard would see), and the train stages are timed on their own.

    python bench/tile_vs_resize.py              # both rows
    python bench/tile_vs_resize.py --rows tile  # one
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from ablation import ROOT, run_env, scratch_copy, set_key

COMMON = {
    "synthetic.kind": "thin", "synthetic.train_patients": 10, "synthetic.test_patients": 2,
    "synthetic.slices_per_patient": 4, "synthetic.height": 512, "synthetic.width": 768,
    "synthetic.holdout_patients": 0.2, "folds.n_splits": 2, "folds.train": [0],
}
ROWS = {
    "resize": {"prepare.mode": "resize", "prepare.size": [128, 192], "train.epochs": 384},
    "resize 2x": {"prepare.mode": "resize", "prepare.size": [256, 384], "train.epochs": 96},
    "tile": {"prepare.mode": "tile", "prepare.scale": 1.0, "prepare.tile": [128, 128], "train.epochs": 24},
}


def dvc(repo: Path, *args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(["dvc", *args], cwd=repo, capture_output=True, text=True,
                          env=run_env(repo))
    if done.returncode:
        raise SystemExit(f"dvc {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def run_row(name: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        repo = scratch_copy(Path(tmp))
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        for key, value in {**COMMON, **ROWS[name]}.items():
            set_key(params, key, value)
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        before = dvc(repo, "repro", "folds")
        train = dvc(repo, "repro", "train@unet-0")
        after = dvc(repo, "repro")
        holdout = json.loads((repo / "metrics/holdout.json").read_text())
        cv = json.loads((repo / "metrics/cv.json").read_text())
        return {"row": name, "holdout_dice": holdout["dice"], "holdout_patient_dice": holdout["patient_dice"],
                "cv_dice": cv["dice"], "train_s": train, "rest_s": after, "prepare_s": before,
                "images": holdout["images"], "epochs": ROWS[name]["train.epochs"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    args = parser.parse_args()
    results = []
    for name in args.rows:
        results.append(run_row(name))
        print(json.dumps(results[-1]), flush=True)
    print("\n| mode | epochs | holdout per-image Dice (native) | holdout per-patient | CV Dice (training size) "
          "| train s (fold 0) | download+prepare+folds s | predict ... submit s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['row']} | {r['epochs']} | {r['holdout_dice']:.4f} | {r['holdout_patient_dice']:.4f} | "
              f"{r['cv_dice']:.4f} | {r['train_s']:.0f} | {r['prepare_s']:.0f} | {r['rest_s']:.0f} |")


if __name__ == "__main__":
    main()
