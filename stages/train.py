"""DVC stage `train@<fold>`: train one fold's U-Net, write its checkpoint, OOF and metrics."""
import pandas as pd

from segpipe.cli import parse_paths, run_stage
from segpipe.config import load_params
from segpipe.prepare import TRAIN_IMAGES, TRAIN_MASKS
from segpipe.runtime import write_json
from segpipe.train import FoldPaths, train_fold


def main() -> None:
    args = parse_paths(__doc__, "prepared", "folds", "model", "oof", "live", "metrics", fold=True)
    params = load_params()
    folds = pd.read_csv(args.folds, dtype={"id": str, "group": str})
    paths = FoldPaths(args.prepared / TRAIN_IMAGES, args.prepared / TRAIN_MASKS, args.model, args.oof, args.live)
    metrics = train_fold(params.train, folds, args.fold, paths, params.base.seed)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    run_stage(main)
