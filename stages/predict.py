"""DVC stage `predict@<model>`: one model's folds averaged (hflip TTA) on the test images, read from the raw files.

In tile mode each image is predicted at prepare's scale by sliding windows of the tile.

Each model keeps its own test probabilities (preds/<model>/test.npz), so a new blend or
post-processing rule never runs a network again.
"""
import numpy as np
import pandas as pd

from segpipe.cache.tiles import Layout
from segpipe.config.data import load_data_params
from segpipe.core.cli import parse_paths, run_stage
from segpipe.core.errors import InputError
from segpipe.datasets import load_chosen
from segpipe.inference.predict import load_fold_models, predict_competition
from segpipe.paths import artifacts
from segpipe.paths.cache_files import TEST_INDEX, TRAIN_IMAGES


def main() -> None:
    args = parse_paths(__doc__, "models", "raw", "sources", "prepared", "out", model=True)
    params = load_data_params()
    competition = load_chosen(params, args.raw, args.sources)
    index = pd.read_csv(args.prepared / TEST_INDEX, dtype={"id": str, "group": str})
    if index.id.tolist() != competition.test.id.astype(str).tolist():
        raise InputError(f"{args.prepared / TEST_INDEX}: its ids are not the test set's; rerun `dvc repro prepare`")
    model_paths = {fold: artifacts.checkpoint(args.models, args.model, fold) for fold in params.folds.train}
    folds = load_fold_models(model_paths, args.model)  # the networks, and how their OOF maps were made
    channels = np.load(args.prepared / TRAIN_IMAGES, mmap_mode="r").shape[-1]
    layout = Layout.read(args.prepared)  # the size (resize mode) or scale and tile (tile mode) trained at
    predict_competition(folds, competition, index, layout, channels, args.out, params.predict.batch_size,
                        params.predict.workers, where=str(args.prepared / TEST_INDEX))

if __name__ == "__main__":
    run_stage(main)
