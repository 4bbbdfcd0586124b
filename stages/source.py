"""DVC stage `source`: index the chosen dataset's source (rerun first by `make run`).

A real dataset is read in place from `<dataset>.source` (a folder or zip that already holds
it, or the Kaggle input folder of a Kaggle Notebook); only when its source is segpipe's own,
still empty folder under data/sources is it downloaded with the Kaggle API (credentials and
network needed), once. The index (name, size and content fingerprint of every file the
dataset uses) is written to `--out`; the synthetic default has an empty one. The source is a
param, not a DVC dependency (docs/sources.md#when-the-source-changes); an unchanged source gives
the same index, so nothing after it reruns.
"""
from segpipe import datasets
from segpipe.config.data import load_data_params
from segpipe.core.cli import parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "sources", "raw", "out")
    params = load_data_params()
    datasets.index(params.base.dataset, args.out, sources=args.sources, kaggle_input=params.base.kaggle_input,
                   owned=args.raw, **datasets.section_of(params).adapter_options())


if __name__ == "__main__":
    run_stage(main)
