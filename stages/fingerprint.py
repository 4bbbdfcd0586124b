"""DVC stage `fingerprint`: measure the training set (sizes, intensities, empty share, object sizes).

Writes data/fingerprint.json, which the plan stage derives the `auto` params from.
"""
from segpipe.config.data import load_data_params
from segpipe.core.cli import parse_paths, run_stage
from segpipe.core.runtime import write_json
from segpipe.datasets import load_chosen
from segpipe.plan.fingerprint import measure


def main() -> None:
    args = parse_paths(__doc__, "raw", "sources", "out")
    params = load_data_params()
    competition = load_chosen(params, args.raw, args.sources)
    fingerprint = measure(competition, params.base.seed, params.prepare.workers)
    write_json(args.out, fingerprint)
    print(f"{params.base.dataset}: {fingerprint['images']} training images in {fingerprint['groups']} groups, "
          f"{fingerprint['height']['median']}x{fingerprint['width']['median']}x{fingerprint['channels']}, "
          f"{fingerprint['empty_share']:.0%} empty (sample of {fingerprint['sampled']})")


if __name__ == "__main__":
    run_stage(main)
