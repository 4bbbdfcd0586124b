"""DVC stage `threshold`: tune threshold and min area on OOF probabilities; CV metrics."""
import pandas as pd

from segpipe.cli import parse_paths, run_stage
from segpipe.config import load_params
from segpipe.oof import cross_validate
from segpipe.runtime import atomic_path, write_json


def main() -> None:
    args = parse_paths(__doc__, "folds", "masks", "oof", "metrics", "plot")
    params = load_params()
    folds = pd.read_csv(args.folds, dtype={"id": str, "group": str})
    oof_paths = {k: args.oof / f"fold{k}.npy" for k in params.folds.train}
    cut = params.threshold
    metrics, curve = cross_validate(folds, oof_paths, args.masks, cut.grid, list(cut.min_areas))
    write_json(args.metrics, metrics)
    with atomic_path(args.plot) as tmp:
        pd.DataFrame(curve).to_csv(tmp, index=False)
    print(f"CV dice {metrics['dice']:.4f} (patient {metrics['patient_dice']:.4f}) at threshold "
          f"{metrics['threshold']} min area {metrics['min_area']}")


if __name__ == "__main__":
    run_stage(main)
