"""segpipe-infer: a bundle's submission for the test images in a competition's input folder, offline.

    python -m segpipe.infer --bundle /kaggle/input/segpipe-bundle \\
        --input /kaggle/input/<competition> --out /kaggle/working/submission.csv --limit 9h

The test images are found as the pipeline's source stage finds them (read only); each
model of the bundle predicts them with its folds, TTA views and, in tile mode, sliding
windows; the maps are blended and post-processed with the tuned weights and rules, and the
competition's CSV is written (gzip when `--out` ends in .gz). The same functions as the
pipeline's predict and submit stages do all of it (`segpipe.bundle.run`), with no DVC,
dvclive, albumentations or params.yaml. It says which Python, torch and numpy it runs on (warning
when one is outside segpipe's supported ranges). Before the first image it prints the projected run
time from the speed the bundle measured, and refuses to start when that is far over
`--limit` on the same kind of device; after the first batches it prints the projection
measured here.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from segpipe.core.errors import InputError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segpipe-infer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True, help="the bundle folder (a Kaggle dataset input)")
    parser.add_argument("--input", type=Path, required=True, help="the competition's input folder (or zip)")
    parser.add_argument("--out", type=Path, required=True, help="the submission to write (.csv, or .csv.gz)")
    parser.add_argument("--limit", default=None, help="the run-time limit, e.g. 9h or 90m")
    parser.add_argument("--batch-size", type=int, default=None, help="images (tile mode: windows) per batch")
    parser.add_argument("--workers", type=int, default=2, help="processes decoding test images")
    parser.add_argument("--work", type=Path, default=None, help="where the test maps go (default: a temp folder)")
    parser.add_argument("--holdout", action="store_true",
                        help="predict the pipeline's held-out patients instead of the input's test set")
    args = parser.parse_args(argv)
    try:
        run(args)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> None:
    from segpipe.bundle import environment
    from segpipe.bundle.manifest import Manifest
    from segpipe.bundle.run import infer, parse_limit

    try:
        limit = parse_limit(args.limit) if args.limit else None
    except ValueError as err:
        raise InputError(f"--limit: {err}") from None
    manifest = Manifest.read(args.bundle)
    print(environment.describe(manifest.record.built_with), flush=True)
    for line in environment.outside_ranges():
        print(f"warning: {line}: the submission was not proven on it", file=sys.stderr, flush=True)
    batch_size = args.batch_size or manifest.record.batch_size or 64
    with tempfile.TemporaryDirectory(prefix="segpipe-infer-", dir=args.work) as work:
        images = infer(manifest, args.input, args.out, Path(work), batch_size=batch_size, workers=args.workers,
                       holdout=args.holdout, limit=limit)
    print(f"wrote {args.out}: {images} test images")


if __name__ == "__main__":
    sys.exit(main())
