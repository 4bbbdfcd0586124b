"""The GPU pass: segpipe's CUDA paths run for real, in one command on a lent CUDA machine.

On the machine, from the repository root, with the wheels of `python bench/gpu_wheels.py` in .whl/:

    python3 bench/gpu_pass.py --wheels .whl --out "$OUT"

On a CPU, `python bench/gpu_pass.py --smoke` runs the same steps small, to check the script
(the CUDA-only benchmarks print "skipped"). The steps run in a copy of the repository
(`--work`), in this order, each within the time left of `--budget` seconds. Their output goes
to <out>/pass.log and their figures to <out>/summary.json, rewritten as each step ends:

1. install: the wheels this Python lacks (or has outside segpipe's ranges), into <work>/site.
2. pipeline: the synthetic set at `--size`, folds 0 and 1, planned for this device (resnet34 on
   a GPU). `dvc repro train@unet-0` is killed (SIGKILL) after its second epoch, then `dvc repro`
   resumes it and runs the rest; OOF Dice, the plan, each epoch's img/s, data and step time.
3. bench_gpu.py: autocast, channels_last and pinned uint8 against fp32 NCHW; sliding windows.
4. torchrun: fold 0 under `torch.distributed.run --nproc_per_node=1`.
5. bundle: the bundle's offline inference (`python -m segpipe.infer`) on this device.
6. compile: fold 0 trained eager and with `train.compile`, outside DVC; first epoch and steady img/s.
7. bench_train_step.py at 256x256 and 512x512: the loader on the memmap cache with augmentation
   on the device, against the bare step on tensors already there.
A step that fails is recorded and the next one runs; `--only` reruns some of them.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import yaml
from gpu_wheels import choose_wheels, installed_version

ROOT = Path(__file__).resolve().parents[1]
EPOCH_LINE = re.compile(r"fold (\d+) epoch (\d+)/(\d+): .*\| data ([\d.]+)s step ([\d.]+)s (\d+) img/s")


class Pass:
    """The work copy, the log, the summary and the clock of one pass."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.work, self.out = args, Path(args.work), Path(args.out)
        self.deadline = time.monotonic() + args.budget
        self.summary: dict = {"smoke": args.smoke, "steps": {}}
        self.out.mkdir(parents=True, exist_ok=True)
        self.log = (self.out / "pass.log").open("a")
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def note(self, text: str) -> None:
        print(text, flush=True)
        self.log.write(text + "\n")
        self.log.flush()

    def save(self) -> None:
        (self.out / "summary.json").write_text(json.dumps(self.summary, indent=1))

    def run(self, name: str, command: list[str], timeout: float, **kwargs) -> tuple[int, str]:
        """`command` in the work copy, its output logged; rc 124 when it ran past `timeout`."""
        shown = " ".join(command)
        self.note(f"\n== {name}: {shown if len(shown) < 400 else shown[:400] + ' ...'}")
        start = time.monotonic()
        process = subprocess.Popen(command, cwd=self.work, env=self.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True, **kwargs)
        try:
            output, _ = process.communicate(timeout=max(min(timeout, self.left()), 1))
            rc = process.returncode
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, rc = process.communicate()[0], 124
        self.log.write(output)
        self.note(f"-- {name}: rc {rc}, {time.monotonic() - start:.1f} s")
        return rc, output

    def python(self, name: str, script: list[str], timeout: float) -> tuple[int, str]:
        return self.run(name, [sys.executable, *script], timeout)


def copy_repo(work: Path) -> None:
    """The repository without .git, .venv, .whl, DVC's cache and caches: a DVC repo without git."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {"__pycache__", ".pytest_cache", ".hypothesis"}
        if Path(folder) == ROOT:
            skip |= {".git", ".venv", ".whl"}
        if Path(folder) == ROOT / ".dvc":
            skip |= {"cache", "tmp", "config.local"}
        return skip & set(names) | {n for n in names if n.endswith(".egg-info")}
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(ROOT, work, ignore=ignore)
    (work / ".dvc/config.local").write_text("[core]\n    no_scm = true\n")


def step_install(p: Pass) -> dict:
    """Wheels into <work>/site, a `python` on PATH for dvc.yaml's commands, segpipe importable."""
    shims = p.work / "bin"
    shims.mkdir(exist_ok=True)
    (shims / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # a link would leave a venv
    (shims / "python").chmod(0o755)
    p.env["PATH"] = f"{shims}{os.pathsep}{p.env['PATH']}"
    p.env["PYTHONPATH"] = str(p.work / "src")
    result: dict = {"python": sys.version.split()[0]}
    if p.args.wheels:
        site = p.work / "site"
        ranges = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        chosen = choose_wheels(sorted(Path(p.args.wheels).resolve().glob("*.whl")), installed_version, ranges)
        result["wheels_installed"] = [w.name.split("-")[0] for w in chosen]
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
               "--upgrade", "--target", str(site)]
        rc = p.run("install wheels", [*pip, *map(str, chosen)], 240)[0] if chosen else 0
        p.env["PYTHONPATH"] = f"{p.work / 'src'}{os.pathsep}{site}"  # setuptools, where it came as a wheel
        rc = rc or p.run("install segpipe", [*pip, "--no-build-isolation", "."], 120)[0]
        if rc:
            raise RuntimeError("the wheels did not install")
        result["pip_check"] = p.run("pip check", [sys.executable, "-m", "pip", "check"], 60)[1].strip()[-2000:]
    probe = ("import json, torch, segmentation_models_pytorch as smp, albumentations, dvc, dvclive, segpipe\n"
             "from importlib.metadata import version as v\n"
             "cuda = torch.cuda.is_available()\n"
             "print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda, 'gpu': cuda and "
             "torch.cuda.get_device_name(), 'bf16': cuda and torch.cuda.is_bf16_supported(), "
             "**{n: v(n) for n in ('segmentation_models_pytorch', 'albumentations', 'timm', 'dvc', 'dvclive', "
             "'numpy', 'opencv-python-headless')}}))")
    rc, output = p.python("versions", ["-c", probe], 120)
    if rc:
        raise RuntimeError("segpipe's packages do not import")
    result.update(json.loads(output.strip().splitlines()[-1]))
    return result


def epoch_lines(text: str) -> list[dict]:
    return [{"fold": int(f), "epoch": int(e), "of": int(n), "data_s": float(d), "step_s": float(s),
             "img_s": int(r)} for f, e, n, d, s, r in EPOCH_LINE.findall(text)]


def set_params(work: Path, changes: dict[str, object]) -> None:
    params = yaml.safe_load((work / "params.yaml").read_text())
    for key, value in changes.items():
        section, name = key.split(".", 1)
        params[section][name] = value
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def planned(p: Pass) -> dict:
    """The plan of fold training, the stages before it run first where they have not."""
    plan = p.work / "data/plan/models/unet.json"
    if not plan.is_file():
        p.run("dvc repro folds", [sys.executable, "-m", "dvc", "repro", "folds"], 300)
    return json.loads(plan.read_text())


def step_pipeline(p: Pass) -> dict:
    dvc = [sys.executable, "-m", "dvc"]
    # train@unet-0 killed once its second epoch is logged
    p.note("\n== dvc repro train@unet-0, killed after epoch 2")
    killed = subprocess.Popen([*dvc, "repro", "train@unet-0"], cwd=p.work, env=p.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = []
    for line in killed.stdout:
        seen.append(line)
        if re.match(r"fold 0 epoch 2/", line) or p.left() < 60:
            break
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    p.log.write("".join(seen))
    last = p.work / "checkpoints/unet/fold0/last.pt"
    result = {"killed_after": epoch_lines("".join(seen))[-1:], "resume_state_left": last.is_file()}
    rc, output = p.run("dvc repro", [*dvc, "repro"], 600)
    resumed = re.search(r"resuming after epoch (\d+)", output)
    result |= {"repro_rc": rc, "resumed_after_epoch": resumed and int(resumed.group(1)),
               "epochs": epoch_lines(output)}
    result["status"] = p.run("dvc status", [*dvc, "status"], 60)[1].strip().splitlines()[-3:]
    plan = planned(p)
    result["plan"] = {k: plan.get(k) for k in ("encoder_name", "encoder_weights", "batch_size", "steps",
                                               "num_workers", "amp", "channels_last", "lr")}
    for fold in (0, 1):
        path = p.work / f"metrics/unet/fold{fold}.json"
        if path.is_file():
            metrics = json.loads(path.read_text())
            result[f"fold{fold}"] = {k: metrics.get(k) for k in ("oof_dice", "val_dice", "epoch")}
    return result


def step_bench_gpu(p: Pass) -> dict:
    rc, output = p.python("bench_gpu", ["bench/bench_gpu.py"], 240)
    return {"rc": rc, "table": output.strip().splitlines()[-12:]}


def fold0(p: Pass, name: str, changes: dict, launcher: list[str] | None = None, timeout: float = 240) -> tuple:
    """Fold 0 trained outside DVC from the plan with `changes`, into scratch/<name>."""
    folder = p.work / "scratch" / name
    folder.mkdir(parents=True, exist_ok=True)
    plan = planned(p) | changes
    (folder / "unet.json").write_text(json.dumps(plan))
    paths = ["--plan", folder, "--prepared", "data/prepared", "--folds", "data/folds.csv",
             "--checkpoint", folder / "fold0.pt", "--oof", folder / "oof", "--live", folder / "live",
             "--metrics", folder / "metrics.json", "--last", folder / "last.pt"]
    start = time.monotonic()
    rc, output = p.run(name, [*(launcher or [sys.executable]), "stages/train.py", "--model", "unet", "--fold", "0",
                              *map(str, paths)], timeout)
    return rc, time.monotonic() - start, epoch_lines(output)


def step_torchrun(p: Pass) -> dict:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
    rc, seconds, epochs = fold0(p, "torchrun", {"steps": 40 if p.args.smoke else 200, "epochs": 2}, launcher)
    return {"rc": rc, "seconds": round(seconds, 1), "epochs": epochs}


def step_bundle(p: Pass) -> dict:
    out = p.work / "scratch/bundle-submission.csv.gz"
    rc, _ = p.python("segpipe.infer", ["-m", "segpipe.infer", "--bundle", "bundle", "--input", "data/raw/synthetic",
                                       "--out", str(out), "--limit", "9h"], 240)
    same = out.is_file() and out.read_bytes() == (p.work / "submissions/submit.csv.gz").read_bytes()
    return {"rc": rc, "same_bytes_as_submit": same}  # its time is the step's


def step_train_step(p: Pass) -> dict:
    images = "64" if p.args.smoke else "1024"
    planned(p)
    result = {}
    for size in (("64", "64"),) if p.args.smoke else (("256", "256"), ("512", "512")):
        rc, output = p.python(f"bench_train_step {size[0]}", ["bench/bench_train_step.py", "--images", images,
                                                             "--size", *size], 240)
        result[size[0]] = {"rc": rc, "table": output.strip().splitlines()[-8:]}
    return result


def step_compile(p: Pass) -> dict:
    steps, epochs = (24, 3) if p.args.smoke else (300, 6)
    result = {}
    for name, compile_ in (("eager", False), ("compiled", True)):
        rc, seconds, lines = fold0(p, name, {"steps": steps, "epochs": epochs, "compile": compile_}, timeout=300)
        steady = [line["img_s"] for line in lines[2:]]
        result[name] = {"rc": rc, "seconds": round(seconds, 1), "first_epoch_s": lines and round(
            lines[0]["data_s"] + lines[0]["step_s"], 1), "steady_img_s": steady and statistics.median(steady)}
    return result


STEPS = {"install": step_install, "pipeline": step_pipeline, "bench_gpu": step_bench_gpu,
         "torchrun": step_torchrun, "bundle": step_bundle, "compile": step_compile, "train_step": step_train_step}


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "/tmp/gpu-pass-out"), help="log and summary.json")
    parser.add_argument("--work", default="/tmp/gpu-pass", help="the repository's copy the pass runs in")
    parser.add_argument("--wheels", help="a folder of wheels to install from (bench/gpu_wheels.py)")
    parser.add_argument("--budget", type=float, default=480, help="seconds for the whole pass")
    parser.add_argument("--size", type=int, default=256, help="the synthetic images' side")
    parser.add_argument("--smoke", action="store_true", help="small and quick, to check the script on a CPU")
    parser.add_argument("--only", nargs="*", choices=list(STEPS),
                        help="these steps, in the last pass's copy where there is one (install always runs)")
    return parser


def main() -> None:
    args = arguments().parse_args()
    p = Pass(args)
    if not (args.only and (p.work / "dvc.yaml").is_file()):  # --only goes on in the last pass's copy
        copy_repo(p.work)
    changes = {"synthetic.height": args.size, "synthetic.width": args.size, "folds.train": [0, 1]}
    set_params(p.work, changes | ({"train.steps": 48, "train.epochs": 4} if args.smoke else {}))
    for name, step in STEPS.items():
        if args.only and name != "install" and name not in args.only:
            continue
        if p.left() < 20:
            p.summary["steps"][name] = "skipped: out of time"
            continue
        start = time.monotonic()
        try:
            p.summary["steps"][name] = step(p) | {"step_s": round(time.monotonic() - start, 1)}
        except Exception as error:  # one broken step must not cost the others their device time
            p.summary["steps"][name] = {"error": f"{type(error).__name__}: {error}"}
            p.note(f"!! {name}: {type(error).__name__}: {error}")
            if name == "install":
                break
        p.save()
    p.save()
    brief = {name: {k: v for k, v in step.items() if k != "epochs"} if isinstance(step, dict) else step
             for name, step in p.summary["steps"].items()}  # the epochs are in summary.json
    p.note(json.dumps(brief, indent=1))


if __name__ == "__main__":
    main()
