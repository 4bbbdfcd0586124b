"""DVC stage `download`: fill data/raw/<dataset> with a Kaggle-style download.

The synthetic default is generated offline; Kaggle datasets need credentials and network.
A complete earlier download is kept (the output is `persist`ed) and not fetched again.
"""
from segpipe import datasets
from segpipe.cli import parse_paths, run_stage
from segpipe.config import load_params


def main() -> None:
    args = parse_paths(__doc__, "out")
    params = load_params()
    datasets.download(params.base.dataset, args.out, seed=params.base.seed, **params.dataset.adapter_options())


if __name__ == "__main__":
    run_stage(main)
