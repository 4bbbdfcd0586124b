"""The code-competition bundle: its size, and inference from it against the pipeline's own stages.

1. Size. The weights of a 2-model x 5-fold ResNet34 ensemble (U-Net and FPN, 3 channels in,
   1 class) as the bundle stores them (safetensors state dicts, float32), and the bundle of
   this workspace as it is (`make bundle` first: its weights, its json, its wheels).
2. Speed. `python -m segpipe.infer` from this workspace's bundle against the usual way inside
   the pipeline, `stages/predict.py` for each model then `stages/submit.py`, on the same test
   images, each as the command a user runs (interpreter start and imports included), rounds
   interleaved; outputs go to a temporary folder, the workspace's are not touched. Target:
   infer images/s >= 0.95x the pipeline's.
Run as `python bench/bench_bundle.py` in a workspace after `dvc repro` and `make bundle`.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from side_by_side import median_seconds, print_table

from segpipe.bundle.export import folder_mb
from segpipe.network.model import ModelSpec, build_model

REPEATS = 3
ROOT = Path.cwd()


def ensemble_mb(folder: Path) -> float:
    """Megabytes of 5 folds each of a ResNet34 U-Net and FPN, saved as the bundle saves them."""
    from safetensors.torch import save_file

    for arch in ("Unet", "FPN"):
        spec = ModelSpec(arch, "resnet34", 5, (256, 128, 64, 32, 16), 3, 1)
        state = {k: v.contiguous() for k, v in sorted(build_model(spec).state_dict().items())}
        for fold in range(5):
            save_file(state, str(folder / f"{arch}-{fold}.safetensors"))
    return folder_mb(folder)


def commands(params: dict, out: Path) -> dict[str, list[list[str]]]:
    dataset = params["base"]["dataset"]
    raw = f"data/raw/{dataset}"
    predict = [[sys.executable, "stages/predict.py", "--model", name, "--models", "models", "--raw", raw, "--sources",
                "data/sources", "--prepared", "data/prepared", "--out", str(out / name / "test.npz")]
               for name in params["models"]]
    submit = [sys.executable, "stages/submit.py", "--raw", raw, "--sources", "data/sources", "--prepared",
              "data/prepared", "--preds", str(out), "--blend", "metrics/blend.json", "--rule",
              "metrics/postprocess.json", "--cv", "metrics/cv.json", "--out", str(out / "submit.csv.gz"),
              "--holdout", str(out / "holdout.json")]
    infer = [sys.executable, "-m", "segpipe.infer", "--bundle", "bundle", "--input", raw, "--out",
             str(out / "infer.csv")]
    return {"usual": [*predict, submit], "ours": [infer]}


def runner(steps: list[list[str]]):
    def run() -> None:
        for step in steps:
            subprocess.run(step, cwd=ROOT, check=True, capture_output=True)
    return run


def main() -> None:
    if not (ROOT / "bundle/wheels/requirements.txt").is_file():
        sys.exit("run `dvc repro` and `make bundle` first: this times the workspace's bundle")
    with tempfile.TemporaryDirectory() as tmp:
        big = ensemble_mb(Path(tmp))
    manifest = json.loads((ROOT / "bundle/bundle.json").read_text())
    weights, wheels = folder_mb(ROOT / "bundle/models"), folder_mb(ROOT / "bundle/wheels")
    print(f"bundle of this workspace: {folder_mb(ROOT / 'bundle'):.1f} MB ({weights:.1f} MB of weights, "
          f"{wheels:.1f} MB of wheels, models {list(manifest['models'])})")
    print(f"a 2-model x 5-fold ResNet34 ensemble (U-Net, FPN): {big:.1f} MB of weights, "
          f"{big + wheels:.1f} MB with these wheels\n")

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    test = sum(1 for _ in open(ROOT / "data/prepared/test.csv")) - 1
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for name in params["models"]:
            (out / name).mkdir()
        runs = commands(params, out)
        seconds = median_seconds({name: runner(steps) for name, steps in runs.items()}, REPEATS)
        same = (out / "infer.csv").read_bytes() == subprocess.run(["zcat", str(out / "submit.csv.gz")],
                                                                 capture_output=True, check=True).stdout
    usual, ours = test / seconds["usual"].wall, test / seconds["ours"].wall
    print_table(f"inference from the bundle against predict + submit in the pipeline: {test} test images, "
                f"{REPEATS} interleaved rounds", "test images per second, whole commands; ratio = ours / usual",
                [("test images/s", usual, ours, ours / usual, ">= 0.95x", ours / usual >= 0.95)])
    print(f"same submission: {same}")


if __name__ == "__main__":
    main()
