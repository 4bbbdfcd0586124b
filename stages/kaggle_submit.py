"""Submit to the Kaggle competition (`make submit MESSAGE=...`; not a DVC stage).

A competition that takes CSV uploads gets the validated submissions/submit.csv.gz. A code
competition (Kaggle scores only a notebook's output) gets the bundle: uploaded as a dataset,
its kernel pushed and run, that run's submission.csv submitted (`segpipe.submission.code`).
"""
import argparse
from pathlib import Path

import pandas as pd

from segpipe import kaggle
from segpipe.config.params import load_params
from segpipe.core.cli import run_stage
from segpipe.core.errors import InputError
from segpipe.datasets import load_chosen
from segpipe.paths.cache_files import TEST_INDEX
from segpipe.submission.code import submit_code
from segpipe.submission.message import default_message
from segpipe.submission.validate import check_uploadable, row_labels, validate_submission


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path, default=Path("submissions/submit.csv.gz"))
    parser.add_argument("--message", help="submission description (default: commit and CV score)")
    parser.add_argument("--cv", type=Path, default=Path("metrics/cv.json"))
    parser.add_argument("--raw", type=Path, default=Path("data/raw"))
    parser.add_argument("--sources", type=Path, default=Path("data/sources"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))  # original test image sizes
    parser.add_argument("--bundle", type=Path, default=Path("bundle"))  # a code competition's (make bundle)
    args = parser.parse_args()
    params = load_params()
    name = params.base.dataset
    competition = load_chosen(params, args.raw / name, args.sources)
    spec = competition.submission
    if spec.code_competition and spec.competition:
        message = args.message or default_message(args.cv, Path.cwd())
        bundle = params.bundle
        where = submit_code(spec.competition, args.bundle, bundle.owner, bundle.dataset, bundle.kernel, message)
        print(f"submitted the output of kernel {where} to {spec.competition}: {message}")
        return
    slug = check_uploadable(name, spec)
    for needed in (args.file, args.prepared / TEST_INDEX, args.cv):
        if not needed.is_file():
            raise InputError(f"{needed} does not exist: run `dvc repro` first")
    test_index = pd.read_csv(args.prepared / TEST_INDEX, dtype={"id": str})
    sizes = dict(zip(test_index.id, test_index.height * test_index.width))
    rows = validate_submission(args.file, spec, sizes, row_labels(spec, competition.labels.classes))
    message = args.message or default_message(args.cv, Path.cwd())
    kaggle.submit(slug, args.file, message)
    print(f"submitted {args.file} ({rows} rows) to {slug}: {message}")


if __name__ == "__main__":
    run_stage(main)
