"""DVC stage `threshold`: search the post-processing rule on the OOF probabilities; CV metrics."""
import pandas as pd

from segpipe.cli import parse_paths, run_stage
from segpipe.config import load_params
from segpipe.oof import cross_validate
from segpipe.runtime import atomic_path, write_json
from segpipe.tune import Grids


def main() -> None:
    args = parse_paths(__doc__, "folds", "masks", "oof", "metrics", "rule", "plot")
    params = load_params()
    folds = pd.read_csv(args.folds, dtype={"id": str, "group": str})
    oof_paths = {k: args.oof / f"fold{k}.npy" for k in params.folds.train}
    cut = params.threshold
    grids = Grids(cut.grid, list(cut.gate_areas), list(cut.gate_thresholds), list(cut.min_components),
                  list(cut.keep_largest))
    metrics, rule, curve = cross_validate(folds, oof_paths, args.masks, grids)
    write_json(args.metrics, metrics)
    rule.write(args.rule)
    with atomic_path(args.plot) as tmp:
        pd.DataFrame(curve).to_csv(tmp, index=False)
    steps = "; ".join(f"{s['step']} {s['dice']:.4f}{'' if s['kept'] else ' (not kept)'}" for s in metrics["search"])
    print(f"CV dice {metrics['dice']:.4f} (patient {metrics['patient_dice']:.4f}) with {rule.describe()}\n"
          f"search: {steps}")


if __name__ == "__main__":
    run_stage(main)
