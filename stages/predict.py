"""DVC stage `predict`: ensemble the fold models (hflip TTA) on the test images, read from the raw files."""
import numpy as np
import pandas as pd

from segpipe.cli import parse_paths, run_stage
from segpipe.config import load_params
from segpipe.datasets import load_chosen
from segpipe.errors import InputError
from segpipe.predict import ImagesToPredict, predict_test
from segpipe.cache_files import TEST_INDEX, TRAIN_IMAGES


def main() -> None:
    args = parse_paths(__doc__, "models", "raw", "sources", "prepared", "out")
    params = load_params()
    competition = load_chosen(params, args.raw, args.sources)
    index = pd.read_csv(args.prepared / TEST_INDEX, dtype={"id": str})
    if index.id.tolist() != competition.test.id.astype(str).tolist():
        raise InputError(f"{args.prepared / TEST_INDEX}: its ids are not the test set's; rerun `dvc repro prepare`")
    channels = np.load(args.prepared / TRAIN_IMAGES, mmap_mode="r").shape[-1]
    images = ImagesToPredict(competition.test.image, competition.read_image, tuple(params.prepare.size), channels)
    model_paths = {fold: args.models / f"fold{fold}.pt" for fold in params.folds.train}
    predict_test(model_paths, images, args.out, params.predict.batch_size, params.predict.workers)


if __name__ == "__main__":
    run_stage(main)
