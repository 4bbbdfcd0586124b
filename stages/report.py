"""DVC stage `report`: pictures of the OOF results (best/median/worst cases, Dice per fold)
and of the training and threshold curves (PNGs, which show offline unlike vega plots).

With classes, each class's cases are drawn under its own rule, one grid below the other, and
the threshold chart has a curve per class."""
import json

import cv2
import numpy as np
import pandas as pd

from segpipe.cache.tiles import Layout
from segpipe.config.evaluation import load_evaluation_params
from segpipe.core.cli import parse_paths, run_stage
from segpipe.core.labels import of_class
from segpipe.evaluation.cv import covered_rows, oof_maps
from segpipe.evaluation.postprocess import read_rules
from segpipe.paths import artifacts
from segpipe.paths.cache_files import TRAIN_IMAGES, TRAIN_MASKS
from segpipe.report.cases import case_grid, image_scores, oof_rows, pick_cases, write_png
from segpipe.report.charts import (
    class_threshold_chart,
    fold_bar_chart,
    fold_curves,
    read_table,
    threshold_chart,
    training_curves_chart,
)


def main() -> None:
    args = parse_paths(__doc__, "folds", "prepared", "oof", "cv", "rule", "cases", "bars", "live", "threshold_csv",
                       "curves", "threshold_png")
    params = load_evaluation_params()
    cv = json.loads(args.cv.read_text())
    # the small inputs first, so a missing one fails before the slow drawing
    runs = {f"{name} fold{k}" if len(params.models) > 1 else f"fold{k}": artifacts.fold_dir(args.live / name, k)
            for name in params.models for k in params.folds.train}
    curves = fold_curves(runs)
    sweep = read_table(args.threshold_csv, ["threshold", "score"])
    layout = Layout.read(args.prepared)
    labels = layout.labels
    rules = read_rules(args.rule, labels)
    folds = pd.read_csv(args.folds, dtype={"id": str, "group": str})
    oof_paths = {k: artifacts.fold_dir(args.oof, k) for k in params.folds.train}  # the blend's
    grids, shown_counts = [], []
    for k, name, rule in zip(labels.indices(), labels.names, rules):
        grid, cases = _cases(args, folds, oof_paths, rule, k)
        grids.append(grid if k is None else _titled(grid, name))
        shown_counts.append(", ".join(f"{len(c)} {name}" for name, c in cases.items()))
    write_png(args.cases, grids[0] if len(grids) == 1 else _stacked(grids))
    fold_dice = {name: score["dice"] for name, score in cv["folds"].items()}
    counts = {f"fold{k}": int((folds.fold == k).sum()) for k in params.folds.train}
    fold_bar_chart(fold_dice, cv["dice"], args.bars, images=counts)
    training_curves_chart(curves, args.curves)
    if labels.several:  # each class's curve, at its own first search step's gate area
        class_threshold_chart(sweep, labels.classes, [rule.threshold for rule in rules], args.threshold_png, cv["metric"])
    else:  # the curve is the first search step's: thresholds at that step's gate area
        threshold_chart(sweep, rules[0].threshold, cv["search"][0]["gate_area"], args.threshold_png, cv["metric"])
    print(f"wrote {args.cases} ({'; '.join(shown_counts)}), {args.bars}, {args.curves} and {args.threshold_png}")


def _cases(args, folds: pd.DataFrame, oof_paths: dict, rule, k: int | None):
    """The case grid of class `k` (of the one class when None) under its `rule`, and the cases picked."""
    rows = covered_rows(folds, oof_paths)
    maps = oof_maps(folds, oof_paths, args.prepared / TRAIN_MASKS, k)
    dice, truth_area, pred_area = image_scores(maps, rule)
    cases = pick_cases(dice, truth_area, pred_area)
    picked = np.concatenate(list(cases.values()))
    shown = rows[picked]  # folds.csv rows, which are also rows of the prepared arrays
    images = np.load(args.prepared / TRAIN_IMAGES, mmap_mode="r")[shown]
    masks = of_class(np.load(args.prepared / TRAIN_MASKS, mmap_mode="r"), k)[shown]
    probs = oof_rows(folds, oof_paths, shown)
    probs = probs if k is None or not len(probs) else probs[:, k]
    # positions into the loaded arrays, group by group
    bounds = np.cumsum([0] + [len(c) for c in cases.values()])
    local = {name: np.arange(bounds[i], bounds[i + 1]) for i, name in enumerate(cases)}
    grid = case_grid(images, masks, probs, folds.id.to_numpy()[shown], folds.group.to_numpy()[shown],
                     dice[picked], local, rule)
    return grid, cases


def _titled(grid: np.ndarray, name: str) -> np.ndarray:
    """`grid` under a band naming its class."""
    band = np.full((28, grid.shape[1], 3), 255, np.uint8)
    cv2.putText(band, f"class {name}", (4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return cv2.vconcat([band, grid])


def _stacked(grids: list[np.ndarray]) -> np.ndarray:
    """The grids one below the other, padded white to the widest."""
    width = max(g.shape[1] for g in grids)
    return cv2.vconcat([cv2.copyMakeBorder(g, 0, 0, 0, width - g.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255))
                        for g in grids])


if __name__ == "__main__":
    run_stage(main)
