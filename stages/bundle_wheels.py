"""`make bundle`'s second step (not a DVC stage: it needs the package index): bundle/wheels/.

segpipe's own wheel and, pinned to the versions installed here, every package
`segpipe.infer` needs that the notebook image (`bundle.preinstalled`) lacks, as binary
wheels for each of `bundle.pythons` and `bundle.platforms` (`segpipe.bundle.wheels`).
"""
import argparse
import shutil
from pathlib import Path

from segpipe.bundle import wheels
from segpipe.bundle.export import folder_mb
from segpipe.config.bundle import load_bundle_params
from segpipe.core.cli import run_stage
from segpipe.core.errors import InputError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", type=Path, default=Path("bundle"))
    parser.add_argument("--project", type=Path, default=Path("."), help="segpipe's source tree, for its wheel")
    args = parser.parse_args()
    if not (args.bundle / "bundle.json").is_file():
        raise InputError(f"{args.bundle}/bundle.json: missing; run `dvc repro bundle` first")
    params = load_bundle_params().bundle
    out = args.bundle / "wheels"
    if out.exists():
        shutil.rmtree(out)  # a wheel of another version must not stay beside the new one
    names = wheels.needed(params.preinstalled)
    pinned = wheels.download(out, names, params.pythons, params.platforms, args.project)
    print(f"wrote {out}: {len(pinned)} packages, {len(list(out.glob('*.whl')))} wheels for Python "
          f"{', '.join(params.pythons)} ({folder_mb(out):.1f} MB); "
          f"the bundle is {folder_mb(args.bundle):.1f} MB in all")


if __name__ == "__main__":
    run_stage(main)
