"""The Kaggle side of a bundle: the dataset's metadata, the kernel's metadata and its script.

`kaggle datasets create -p bundle` uploads the bundle as the dataset `<owner>/<dataset>`;
`kaggle kernels push -p bundle/kernel` pushes a script kernel with the internet off, the GPU
on, and the competition and the bundle as its inputs. The script installs the wheels the image lacks
with `--no-index`, the image's own packages pinned as they are, and runs `python -m segpipe.infer`, which writes `/kaggle/working/submission.csv`.
"""
from __future__ import annotations

KERNEL_FILE = "infer.py"
INPUT = "/kaggle/input"
WORKING = "/kaggle/working"


def dataset_metadata(owner: str, slug: str, title: str) -> dict:
    return {"title": title, "id": f"{owner}/{slug}", "licenses": [{"name": "other"}]}


def kernel_metadata(owner: str, kernel: str, dataset: str, competition: str | None) -> dict:
    return {
        "id": f"{owner}/{kernel}",
        "title": kernel,
        "code_file": KERNEL_FILE,
        "language": "python",
        "kernel_type": "script",
        "is_private": True,
        "enable_gpu": True,
        "enable_tpu": False,
        "enable_internet": False,  # a code competition scores only a kernel run offline
        "dataset_sources": [f"{owner}/{dataset}"],
        "competition_sources": [competition] if competition else [],
        "kernel_sources": [],
        "model_sources": [],
    }


def kernel_script(owner: str, dataset: str, competition: str | None, limit: str, data: str = "data") -> str:
    """The kernel: install the wheels offline (naming a missing one), then infer into submission.csv.

    Kaggle mounts an input at /kaggle/input/<slug>, or in newer images under
    /kaggle/input/datasets/<owner>/<slug> and /kaggle/input/competitions/<slug>: the first that exists is used.
    Without a competition, the data is looked for in /kaggle/input/<data> (add it as a dataset input).
    """
    bundles = [dataset, f"datasets/{owner}/{dataset}"]
    inputs = [competition, f"competitions/{competition}"] if competition else [data]
    return f'''"""segpipe inference kernel: written by the bundle stage; runs with the internet off.

SEGPIPE_KAGGLE_INPUT and SEGPIPE_KAGGLE_WORKING move {INPUT} and {WORKING} (segpipe's tests run it so).
"""
import os
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

INPUT = Path(os.environ.get("SEGPIPE_KAGGLE_INPUT", "{INPUT}"))
WORKING = Path(os.environ.get("SEGPIPE_KAGGLE_WORKING", "{WORKING}"))


def first(*candidates: str) -> Path:
    found = [INPUT / c for c in candidates if (INPUT / c).is_dir()]
    if not found:
        sys.exit(f"none of {{[str(INPUT / c) for c in candidates]}} is mounted: add it to the kernel's inputs")
    return found[0]


BUNDLE = first({", ".join(repr(b) for b in bundles)})
COMPETITION = first({", ".join(repr(i) for i in inputs)})
OUT = WORKING / "submission.csv"

wheels = BUNDLE / "wheels"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# Install only what the image lacks, its own packages pinned as they are: a newer wheel in the
# bundle never replaces the image's torch, numpy or PyYAML; a conflict stops here, named by pip.
PLAIN_VERSION = r"[0-9]+(\\.[0-9]+)*((a|b|rc)[0-9]+)?(\\.post[0-9]+)?(\\.dev[0-9]+)?(\\+[a-z0-9.]+)?"
image = {{}}
for dist in metadata.distributions():
    if dist.metadata["Name"]:
        image.setdefault(canonical(dist.metadata["Name"]), dist.version)
own, *shipped = (wheels / "requirements.txt").read_text().split()
missing = [pin for pin in shipped if canonical(pin.split("==")[0]) not in image]


def install(*args: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as pins:  # pip reads constraints from a file only
        pins.write("".join(f"{{name}}=={{version}}\\n" for name, version in sorted(image.items())
                           if re.fullmatch(PLAIN_VERSION, version, re.IGNORECASE)))
        pins.flush()
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheels),
                               "--constraint", pins.name, *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit("installing the bundle's wheels failed (a wheel is missing from its wheels/, was built for another "
                 "Python or platform, or needs another version of a package the image has):\\n"
                 + done.stdout[-2000:] + done.stderr[-4000:])


if missing:
    install(*missing)
install("--no-deps", own)  # segpipe's inference needs only what is now installed, not its training packages
print(f"installed from the bundle: {{', '.join(missing) or 'nothing'}} (the image had the rest) and {{own}}",
      flush=True)
# infer's own `error:` line says what failed; its status fails the kernel, with no traceback of ours under it
sys.exit(subprocess.run([sys.executable, "-m", "segpipe.infer", "--bundle", str(BUNDLE), "--input", str(COMPETITION),
                         "--out", str(OUT), "--limit", "{limit}"]).returncode)
'''
