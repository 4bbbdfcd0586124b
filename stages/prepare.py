"""DVC stage `prepare`: decode, resize and cache train/test as uint8 .npy arrays."""
from segpipe.cli import parse_paths, run_stage
from segpipe.config import load_params
from segpipe.datasets import load_chosen
from segpipe.prepare import prepare_competition


def main() -> None:
    args = parse_paths(__doc__, "raw", "sources", "out")
    params = load_params()
    competition = load_chosen(params, args.raw, args.sources)
    prepare_competition(competition, args.out, tuple(params.prepare.size), params.prepare.workers)


if __name__ == "__main__":
    run_stage(main)
