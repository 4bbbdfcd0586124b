"""DVC stage `submit`: threshold, resize back, RLE-encode and validate submit.csv.gz."""
import json

import pandas as pd

from segpipe import datasets
from segpipe.cli import parse_paths, run_stage
from segpipe.config import load_params
from segpipe.prepare import TEST_INDEX
from segpipe.submit import write_submission


def main() -> None:
    args = parse_paths(__doc__, "raw", "prepared", "probs", "cv", "out")
    params = load_params()
    competition = datasets.load(params.base.dataset, args.raw)
    cv = json.loads(args.cv.read_text())
    test_index = pd.read_csv(args.prepared / TEST_INDEX, dtype={"id": str})
    write_submission(args.probs, test_index, competition.submission, cv["threshold"], cv["min_area"], args.out)
    print(f"wrote {args.out}: {len(test_index)} rows, threshold {cv['threshold']}, min area {cv['min_area']}")


if __name__ == "__main__":
    run_stage(main)
