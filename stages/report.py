"""DVC stage `report`: pictures of the OOF results (best/median/worst cases, Dice per fold)
and of the training and threshold curves (PNGs, which show offline unlike vega plots)."""
import json

import numpy as np
import pandas as pd

from segpipe.config.evaluation import load_evaluation_params
from segpipe.core.cli import parse_paths, run_stage
from segpipe.evaluation.cv import covered_rows, oof_maps
from segpipe.evaluation.postprocess import Rule
from segpipe.paths import artifacts
from segpipe.paths.cache_files import TRAIN_IMAGES, TRAIN_MASKS
from segpipe.report.cases import case_grid, image_scores, oof_rows, pick_cases, write_png
from segpipe.report.charts import fold_bar_chart, fold_curves, read_table, threshold_chart, training_curves_chart


def main() -> None:
    args = parse_paths(__doc__, "folds", "prepared", "oof", "cv", "rule", "cases", "bars", "live", "threshold_csv",
                       "curves", "threshold_png")
    params = load_evaluation_params()
    cv = json.loads(args.cv.read_text())
    rule = Rule.read(args.rule)
    # the small inputs first, so a missing one fails before the slow drawing
    runs = {f"{name} fold{k}" if len(params.models) > 1 else f"fold{k}": artifacts.fold_dir(args.live / name, k)
            for name in params.models for k in params.folds.train}
    curves = fold_curves(runs)
    sweep = read_table(args.threshold_csv, ["threshold", "dice"])
    folds = pd.read_csv(args.folds, dtype={"id": str, "group": str})
    oof_paths = {k: artifacts.fold_dir(args.oof, k) for k in params.folds.train}  # the blend's
    rows = covered_rows(folds, oof_paths)
    maps = oof_maps(folds, oof_paths, args.prepared / TRAIN_MASKS)
    dice, truth_area, pred_area = image_scores(maps, rule)
    cases = pick_cases(dice, truth_area, pred_area)
    picked = np.concatenate(list(cases.values()))
    shown = rows[picked]  # folds.csv rows, which are also rows of the prepared arrays
    images = np.load(args.prepared / TRAIN_IMAGES, mmap_mode="r")[shown]
    masks = np.load(args.prepared / TRAIN_MASKS, mmap_mode="r")[shown]
    probs = oof_rows(folds, oof_paths, shown)
    # positions into the loaded arrays, group by group
    bounds = np.cumsum([0] + [len(c) for c in cases.values()])
    local = {name: np.arange(bounds[i], bounds[i + 1]) for i, name in enumerate(cases)}
    grid = case_grid(images, masks, probs, folds.id.to_numpy()[shown], folds.group.to_numpy()[shown],
                     dice[picked], local, rule)
    write_png(args.cases, grid)
    fold_dice = {name: score["dice"] for name, score in cv["folds"].items()}
    counts = {f"fold{k}": int((folds.fold == k).sum()) for k in params.folds.train}
    fold_bar_chart(fold_dice, cv["dice"], args.bars, images=counts)
    training_curves_chart(curves, args.curves)
    # the curve is the first search step's: thresholds at that step's gate area
    threshold_chart(sweep, rule.threshold, cv["search"][0]["gate_area"], args.threshold_png)
    picked_counts = ", ".join(f"{len(c)} {name}" for name, c in cases.items())
    print(f"wrote {args.cases} ({picked_counts}), {args.bars}, {args.curves} and {args.threshold_png}")


if __name__ == "__main__":
    run_stage(main)
