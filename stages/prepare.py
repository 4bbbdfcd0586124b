"""DVC stage `prepare`: decode and resize (or scale, in tile mode) the training images into uint8 .npy caches; index the test set.

Mode, size, scale and tile come from the plan (data/plan/prepare.json), not from params.yaml.
"""
import json

from segpipe.cache.prepare import prepare_competition
from segpipe.config.data import load_data_params
from segpipe.core.cli import parse_paths, run_stage
from segpipe.datasets import load_chosen


def main() -> None:
    args = parse_paths(__doc__, "raw", "sources", "plan", "out")
    params = load_data_params()
    competition = load_chosen(params, args.raw, args.sources)
    plan = json.loads(args.plan.read_text())
    prepare_competition(competition, args.out, tuple(plan["size"]), params.prepare.workers, mode=plan["mode"],
                        scale=plan["scale"], tile=tuple(plan["tile"]))


if __name__ == "__main__":
    run_stage(main)
