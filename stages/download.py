"""DVC stage `download`: the synthetic files, or the manifest of a real dataset's source.

The synthetic default is generated offline into data/raw/synthetic. A real dataset's
manifest (data/raw/<dataset>/manifest.csv) is the source stage's index of it, which
prepare and submit read the source through; its source is fetched, when at all, by the
source stage.
"""
from segpipe import datasets
from segpipe.config.data import load_data_params
from segpipe.core.cli import parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "index", "out")
    params = load_data_params()
    datasets.download(params.base.dataset, args.out, index_file=args.index, seed=params.base.seed,
                      **datasets.section_of(params).adapter_options())


if __name__ == "__main__":
    run_stage(main)
