"""DVC stage `download`: the synthetic files, or the manifest of a real dataset's source.

The synthetic default is generated offline into data/raw/synthetic. A real dataset is read
in place from `<dataset>.source` (a folder or zip that already holds it, or the Kaggle
input folder of a Kaggle Notebook) and indexed into data/raw/<dataset>/manifest.csv; only
when its source is segpipe's own, still empty folder under data/sources is it downloaded
with the Kaggle API (credentials and network needed), once.
"""
from pathlib import Path

from segpipe import datasets
from segpipe.config.data import load_data_params
from segpipe.core.cli import parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "sources", "out")
    params = load_data_params()
    datasets.download(params.base.dataset, args.out, sources=args.sources, kaggle_input=Path(params.base.kaggle_input),
                      seed=params.base.seed, **params.dataset.adapter_options())


if __name__ == "__main__":
    run_stage(main)
