"""DVC stage `submit`: resize back, post-process (the rule tuned out of fold), RLE-encode and validate submit.csv.gz.

When the test set is a labelled holdout (LGG, or `holdout_patients` > 0), the submission
is also scored into metrics/holdout.json: a private leaderboard you can read locally.
"""
import pandas as pd

from segpipe.cli import parse_paths, run_stage
from segpipe.config import load_params
from segpipe.datasets import load_chosen
from segpipe.cache_files import TEST_INDEX
from segpipe.postprocess import Rule
from segpipe.runtime import write_json
from segpipe.submit import score_holdout, write_submission


def main() -> None:
    args = parse_paths(__doc__, "raw", "sources", "prepared", "probs", "rule", "out", "holdout")
    params = load_params()
    competition = load_chosen(params, args.raw, args.sources)
    rule = Rule.read(args.rule)  # the post-processing chosen out of fold, applied exactly as tuned
    test_index = pd.read_csv(args.prepared / TEST_INDEX, dtype={"id": str, "group": str})
    write_submission(args.probs, test_index, competition.submission, rule, args.out)
    print(f"wrote {args.out}: {len(test_index)} rows, {rule.describe()}")
    labelled = "mask" in competition.test
    holdout = score_holdout(args.out, competition) if labelled else {"images": 0}
    write_json(args.holdout, holdout)
    if labelled:
        print(f"holdout dice {holdout['dice']:.4f} (patient {holdout['patient_dice']:.4f}) on {holdout['images']} images")


if __name__ == "__main__":
    run_stage(main)
