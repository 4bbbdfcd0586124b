"""DVC stage `folds`: patient-level stratified folds into data/folds.csv."""
import pandas as pd

from segpipe.cache.folds import stratified_group_folds
from segpipe.config.data import load_data_params
from segpipe.core.cli import parse_paths, run_stage
from segpipe.core.runtime import atomic_path


def main() -> None:
    args = parse_paths(__doc__, "index", "out")
    params = load_data_params()
    index = pd.read_csv(args.index, dtype={"id": str, "group": str})
    folds = stratified_group_folds(index, params.folds.n_splits, params.base.seed)
    with atomic_path(args.out) as tmp:
        folds.to_csv(tmp, index=False)
    print(folds.groupby("fold").agg(images=("id", "size"), patients=("group", "nunique")).to_string())


if __name__ == "__main__":
    run_stage(main)
