"""DVC stage `download`: fill data/raw/<dataset> with a Kaggle-style download."""
from segpipe import datasets
from segpipe.cli import parse_paths, run_stage
from segpipe.config import load_params
from segpipe.runtime import atomic_path


def main() -> None:
    args = parse_paths(__doc__, "out")
    params = load_params()
    options = params.synthetic.model_dump() if params.base.dataset == "synthetic" else {}
    with atomic_path(args.out) as tmp:
        datasets.download(params.base.dataset, tmp, seed=params.base.seed, **options)


if __name__ == "__main__":
    run_stage(main)
