"""DVC stage `prepare`: decode and resize (or scale, in tile mode) the training images into uint8 .npy caches; index the test set."""
from segpipe.cache.prepare import prepare_competition
from segpipe.config.data import load_data_params
from segpipe.core.cli import parse_paths, run_stage
from segpipe.datasets import load_chosen


def main() -> None:
    args = parse_paths(__doc__, "raw", "sources", "out")
    params = load_data_params()
    competition = load_chosen(params, args.raw, args.sources)
    prepare = params.prepare
    prepare_competition(competition, args.out, tuple(prepare.size), prepare.workers, mode=prepare.mode,
                        scale=prepare.scale, tile=tuple(prepare.tile))


if __name__ == "__main__":
    run_stage(main)
