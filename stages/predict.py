"""DVC stage `predict`: ensemble the fold models (hflip TTA) on the test set."""
from segpipe.cli import parse_paths, run_stage
from segpipe.config import load_params
from segpipe.predict import predict_test
from segpipe.prepare import TEST_IMAGES


def main() -> None:
    args = parse_paths(__doc__, "models", "prepared", "out")
    params = load_params()
    model_paths = {fold: args.models / f"fold{fold}.pt" for fold in params.folds.train}
    predict_test(model_paths, args.prepared / TEST_IMAGES, args.out, params.predict.batch_size)


if __name__ == "__main__":
    run_stage(main)
