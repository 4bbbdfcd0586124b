"""DVC stage `submit`: blend, resize back, post-process (all tuned out of fold), RLE-encode and validate submit.csv.gz.

When the test set is a labelled holdout (LGG, or `holdout_patients` > 0), the submission
is also scored into metrics/holdout.json: a private leaderboard you can read locally.
"""
import json
import sys

import pandas as pd

from segpipe.cache.tiles import Layout
from segpipe.config.data import load_data_params
from segpipe.core.cli import parse_paths, run_stage
from segpipe.core.errors import InputError
from segpipe.core.runtime import write_json
from segpipe.datasets import load_chosen
from segpipe.evaluation.baselines import warning
from segpipe.evaluation.holdout import score_holdout
from segpipe.evaluation.postprocess import describe_rules
from segpipe.paths import artifacts
from segpipe.paths.cache_files import TEST_INDEX
from segpipe.submission.submit import write_tuned


def main() -> None:
    args = parse_paths(__doc__, "raw", "sources", "prepared", "preds", "blend", "rule", "cv", "out", "holdout")
    params = load_data_params()
    competition = load_chosen(params, args.raw, args.sources)
    layout = Layout.read(args.prepared)
    labels = layout.labels
    test_index = pd.read_csv(args.prepared / TEST_INDEX, dtype={"id": str, "group": str})
    counts = json.loads(args.blend.read_text())["counts"]  # summed over the classes' bags with blend.per_class
    unknown = sorted(set(counts) - set(params.models))
    if unknown:
        raise InputError(f"{args.blend}: weights for models {unknown} that params.yaml does not list; "
                         "rerun `dvc repro blend`")
    probs = {name: artifacts.test_probs(args.preds, name) for name in params.models}
    _, rules, force_top = write_tuned(probs, args.blend, args.rule, labels, test_index, competition.submission,
                                      args.out)
    weights = ", ".join(f"{n} {c / sum(counts.values()):.2f}" for n, c in sorted(counts.items()))
    rows = len(test_index) * labels.channels
    print(f"wrote {args.out}: {rows} rows, blend {weights}, {describe_rules(rules, labels)}"
          f"{'; the top class forced on where no class is left' if force_top else ''}")
    cv = json.loads(args.cv.read_text())
    line = warning("its CV dice", cv["dice"], cv["baselines"])
    if line:
        print(f"{line}; think twice before submitting", file=sys.stderr)
    labelled = "mask" in competition.test
    holdout = score_holdout(args.out, competition) if labelled else {"images": 0}
    write_json(args.holdout, holdout)
    if labelled:
        print(f"holdout {holdout['metric']} {holdout['score']:.4f} (dice {holdout['dice']:.4f}, patient "
              f"{holdout['patient_dice']:.4f}) on {holdout['images']} images")


if __name__ == "__main__":
    run_stage(main)
