"""Per-class post-processing against one shared threshold, out of fold and on the scored holdout.

Run in a workspace after a `dvc repro` of a competition with classes and a labelled test set,
for example the synthetic multi-label kind with a holdout:

    dvc exp run -S synthetic.kind=multi -S synthetic.holdout_patients=0.2
    python bench/class_rules.py

Per class: the rules of metrics/postprocess.json (each class's threshold and gates, searched
out of fold), scored by metrics/cv.json (OOF) and metrics/holdout.json (holdout). Shared: the
one threshold that maximises the OOF Dice averaged over classes (the `dice` column of
plots/threshold.csv), nothing else, applied to every class; its holdout score comes from a
submission written with it by the submit stage's own code to a temporary file.
Not a timing benchmark (`make bench` runs only bench_*.py).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd

from segpipe.cache.tiles import Layout
from segpipe.config.data import load_data_params
from segpipe.datasets import load_chosen
from segpipe.evaluation.blend import read_counts
from segpipe.evaluation.holdout import score_holdout
from segpipe.evaluation.postprocess import Rule
from segpipe.paths import artifacts
from segpipe.paths.cache_files import TEST_INDEX
from segpipe.submission.submit import Blend, write_submission


def main(root: Path = Path(".")) -> None:
    params = load_data_params(root / "params.yaml")
    prepared = root / "data/prepared"
    classes = Layout.read(prepared).labels.classes
    if not classes:
        raise SystemExit("this workspace's competition has one class: nothing to compare")
    competition = load_chosen(params, root / "data/raw" / params.base.dataset, root / "data/sources")
    if "mask" not in competition.test:
        raise SystemExit("the test set is not labelled: set <dataset>.holdout_patients > 0 and rerun")
    cv = json.loads((root / "metrics/cv.json").read_text())
    holdout = json.loads((root / "metrics/holdout.json").read_text())
    curve = pd.read_csv(root / "plots/threshold.csv")
    best = curve.loc[curve.score.idxmax()]
    shared = [Rule(threshold=float(best.threshold))] * len(classes)
    labels = Layout.read(prepared).labels
    counts = read_counts(json.loads((root / "metrics/blend.json").read_text()), labels)
    blend = Blend({name: artifacts.test_probs(root / "preds", name) for name in params.models}, counts, labels)
    test_index = pd.read_csv(prepared / TEST_INDEX, dtype={"id": str, "group": str})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "shared.csv.gz"
        write_submission(blend, test_index, competition.submission, shared, out)
        shared_holdout = score_holdout(out, competition)
    print(f"shared threshold {best.threshold:.3f}; holdout {holdout['images']} images")
    print(f"{'class':<12} {'OOF per-class':>14} {'OOF shared':>11} {'holdout per-class':>18} {'holdout shared':>15}")
    for name in classes:
        print(f"{name:<12} {cv['classes'][name]['dice']:>14.4f} {best[f'dice_{name}']:>11.4f} "
              f"{holdout['classes'][name]['dice']:>18.4f} {shared_holdout['classes'][name]['dice']:>15.4f}")
    print(f"{'mean':<12} {cv['dice']:>14.4f} {best.dice:>11.4f} {holdout['dice']:>18.4f} {shared_holdout['dice']:>15.4f}")


if __name__ == "__main__":
    main()
