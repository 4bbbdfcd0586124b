"""`make install VENV=`'s guard: `name==version` for each named distribution installed here, as pip
constraints, so that installing segpipe into an existing environment (a Kaggle Notebook) keeps its
torch, numpy, pandas and OpenCV exactly as they are: pip adds what is missing, and a version outside
segpipe's ranges stops the install with pip's message naming it instead of being replaced.

    python stages/installed_pins.py torch numpy ... > constraints.txt
"""
import sys
from importlib import metadata


def main() -> None:
    for name in sys.argv[1:]:
        try:
            print(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass  # not installed here: pip may add it


if __name__ == "__main__":
    main()
