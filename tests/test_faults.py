"""Faults across stages: bad params at start-up, a killed stage, a full disk, and no hidden inputs.

Stages run here as subprocesses with their command from dvc.yaml, in a scratch folder that
links to this repo's `stages/` and to the session's tiny synthetic data; no `dvc` needed.
The rule for each fault: exit status 1 and one `error:` line naming the file or key, no
output half-written, no temporary file left behind, and nothing that was there before lost.
"""
from __future__ import annotations

import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import yaml

from segpipe.core.runtime import write_json
from segpipe.plan.fingerprint import measure
from tests.conftest import TINY, TINY_SIZE

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {"synthetic": {k: v for k, v in TINY.items() if k != "seed"}, "base": {"seed": TINY["seed"]},
          "prepare": {"size": list(TINY_SIZE), "workers": 2}, "folds": {"n_splits": 2, "train": [0, 1]}}


def stage_command(name: str) -> list[str]:
    """The stage's command as dvc.yaml writes it (model unet, fold 0 of a matrix or foreach), for synthetic."""
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][name]
    cmd = stage["do"]["cmd"] if "foreach" in stage else stage["cmd"]
    for variable, value in {"${item.model}": "unet", "${item.fold}": "0", "${key}": "unet",
                            "${base.dataset}": "synthetic"}.items():
        cmd = cmd.replace(variable, value)
    return [sys.executable if word == "python" else word for word in shlex.split(cmd)]


def workspace(path: Path, params: dict, raw: Path | None = None, prepared: Path | None = None) -> Path:
    """A scratch stage folder: params.yaml, `stages/` and the data it needs, as links."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "params.yaml").write_text(yaml.safe_dump(params))
    (path / "stages").symlink_to(ROOT / "stages")
    (path / "data" / "raw").mkdir(parents=True)
    (path / "data" / "plan").mkdir()  # what the plan stage would give prepare for PARAMS
    write_json(path / "data" / "plan" / "prepare.json",
               {"mode": "resize", "size": list(TINY_SIZE), "scale": 1.0, "tile": list(TINY_SIZE)})
    write_json(path / "data" / "device.json", {"kind": "cpu", "cpu_cores": 2})  # what the device stage would write
    if raw is not None:
        (path / "data" / "raw" / "synthetic").symlink_to(raw)
    if prepared is not None:
        (path / "data" / "prepared").symlink_to(prepared)
    return path


def run_stage(cwd: Path, cmd: list[str], timeout: float = 120, **popen) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, **popen)


def assert_one_error_line(done: subprocess.CompletedProcess, *named: str) -> str:
    """Exit status 1; stderr ends with one `error:` line naming each of `named`; no traceback."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), done.stderr
    for name in named:
        assert name in line, line
    return line


def files_under(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def temps_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob(".*.tmp-*"))


# --- bad params: stopped at start-up, before any data is read or output touched --------------

@pytest.mark.parametrize("stage, change, named", [
    ("prepare", {"prepare": {"size": [100, 64]}}, "multiples of 32"),
    ("prepare", {"prepare": {"sise": [64, 64]}}, "prepare.sise"),  # misspelt key
    ("folds", {"folds": {"n_splits": "five"}}, "folds.n_splits"),  # wrong type
    ("threshold", {"threshold": {"gate_area": [0, 5]}}, "threshold.gate_area"),  # gate_areas, singular
])
def test_bad_params_stop_a_stage_at_start_naming_the_key(tmp_path, stage, change, named):
    cwd = workspace(tmp_path, {**PARAMS, **change})
    before = {"data/prepared/train.csv": "old cache\n", "data/folds.csv": "old folds\n", "metrics/cv.json": "{}\n"}
    for name, text in before.items():
        (cwd / name).parent.mkdir(parents=True, exist_ok=True)
        (cwd / name).write_text(text)
    done = run_stage(cwd, stage_command(stage))
    assert assert_one_error_line(done, named).startswith("error: params.yaml: ")
    assert {name: (cwd / name).read_text() for name in before} == before
    assert not temps_under(cwd)


@pytest.mark.parametrize("models, named", [
    ({"unet": {"encoder_name": "resnet19"}}, "resnet19"),
    ({"unet": {}, "x": {"arch": "Nope"}}, "models.x: params.yaml: train.arch"),
])
def test_a_bad_model_spec_stops_the_plan_before_prepare_and_training(tmp_path, competition, models, named):
    """The plan builds each network (random weights): a bad arch or encoder fails before any data is cached."""
    params = {**PARAMS, "train": {"encoder_depth": 3, "decoder_channels": [16, 8, 8]}, "models": models}
    cwd = workspace(tmp_path, params)
    write_json(cwd / "data" / "fingerprint.json", measure(competition, seed=0, workers=1, sample=10))
    done = run_stage(cwd, stage_command("plan"))
    assert_one_error_line(done, named)
    assert sorted(p.name for p in (cwd / "data" / "plan").iterdir()) == ["prepare.json"]  # only the workspace's own
    assert not (cwd / "data" / "plan.json").exists()


# --- a stage killed mid-way, then rerun ------------------------------------------------------

PAUSED_PREPARE = textwrap.dedent("""
    # stages/prepare.py, paused (as if slow) once the train arrays are cached, until it is killed
    import runpy, sys, time
    import segpipe.cache.prepare as prepare
    real = prepare.cache_split
    def cache_then_pause(*args, **kwargs):
        real(*args, **kwargs)
        print("paused", flush=True)
        time.sleep(600)
    prepare.cache_split = cache_then_pause
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
""")


def test_a_killed_prepare_publishes_nothing_and_a_rerun_gives_the_same_bytes(tmp_path, raw_dir, prepared_dir):
    cwd = workspace(tmp_path, PARAMS, raw=raw_dir)
    out = cwd / "data" / "prepared"
    out.mkdir()
    (out / "train.csv").write_text("the cache before this run\n")
    cmd = stage_command("prepare")
    killed = subprocess.Popen([cmd[0], "-c", PAUSED_PREPARE, *cmd[1:]], cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    watchdog = threading.Timer(60, killed.kill)  # should it hang before pausing
    watchdog.start()
    try:
        assert killed.stdout.readline() == "paused\n"
        temp = out.with_name(f".prepared.tmp-{killed.pid}")
        assert (temp / "train_images.npy").is_file()  # half-way: train cached, test not yet
    finally:
        watchdog.cancel()
        killed.kill()  # SIGKILL: no handler, no finally, no cleanup
        killed.wait()
        killed.stdout.close()
    assert killed.returncode == -signal.SIGKILL
    assert files_under(out) == {"train.csv": b"the cache before this run\n"}  # not published, not lost
    assert temps_under(cwd) == [f"data/{temp.name}"]  # a killed process cannot clean up after itself

    rerun = run_stage(cwd, cmd)
    assert rerun.returncode == 0, rerun.stderr
    assert not temps_under(cwd)  # the rerun removed the dead run's temp
    assert files_under(out) == files_under(prepared_dir)  # as an uninterrupted run, byte for byte


# --- a full disk -----------------------------------------------------------------------------

def _small_file_limit() -> None:
    """In the child: files may not grow past 16 KiB, and that fails the write (EFBIG), not the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def test_a_full_disk_during_prepare_is_one_line_and_leaves_the_old_cache(tmp_path, raw_dir):
    cwd = workspace(tmp_path, PARAMS, raw=raw_dir)
    old = cwd / "data" / "prepared"
    old.mkdir()
    (old / "train.csv").write_text("the cache before this run\n")
    done = run_stage(cwd, stage_command("prepare"), preexec_fn=_small_file_limit)
    assert_one_error_line(done, "data/prepared: no room to write it (File too large", "free space")
    assert files_under(old) == {"train.csv": b"the cache before this run\n"} and not temps_under(cwd)


def _can_mount_tmpfs(where: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", f"mount -t tmpfs tmpfs {where}"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def test_a_really_full_disk_during_prepare_fails_instead_of_hanging(tmp_path, raw_dir):
    """On a full file system a write into a sparse memory map is SIGBUS, which hung the worker pool."""
    cwd = workspace(tmp_path, PARAMS, raw=raw_dir)
    small = cwd / "data" / "prepared_on_small_disk"
    small.mkdir()
    if not _can_mount_tmpfs(small):
        pytest.skip("cannot mount a small tmpfs here (needs unprivileged user namespaces)")
    cmd = [a.replace("data/prepared", f"{small.relative_to(cwd)}/prepared") for a in stage_command("prepare")]
    script = f"mount -t tmpfs -o size=150k tmpfs {small} && exec {shlex.join(cmd)}"
    done = run_stage(cwd, ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script], timeout=60)
    assert_one_error_line(done, "prepared: no room to write it (No space left on device")


# --- same inputs, same bytes: nothing reads the clock, the host or an unseeded RNG ------------

HIDDEN_INPUTS = {
    r"\btime\.time\(|\btime\.time_ns\(|\bdatetime\.(now|today|utcnow)\(|\bdate\.today\(": "the clock",
    r"gethostname|platform\.node|getfqdn|\buuid\.uuid[14]\(|os\.urandom|\bsecrets\.": "the host or entropy",
    r"np\.random\.(?!seed\(|[gs]et_state\(|default_rng\(\S|SeedSequence\(\S)\w+\(": "numpy's global or unseeded RNG",
    r"default_rng\(\)|SeedSequence\(\)": "an unseeded numpy generator",
    r"(?<![\w.])random\.(?!seed\(|[gs]etstate\()\w+\(": "python's global RNG",
    r"torch\.seed\(\)|torch\.(rand|randn|randint|randperm)\((?![^)]*generator=)": "torch's global RNG",
}


def test_no_stage_reads_the_clock_the_host_or_an_unseeded_rng():
    """time.perf_counter for throughput logs is fine: it never reaches an output."""
    found = []
    for path in sorted([*(ROOT / "src").rglob("*.py"), *(ROOT / "stages").glob("*.py")]):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#", 1)[0]
            found += [f"{path.relative_to(ROOT)}:{number}: {what}: {line.strip()}"
                      for pattern, what in HIDDEN_INPUTS.items() if re.search(pattern, code)]
    assert not found, "\n".join(found)


def test_the_grep_catches_what_it_should():
    bad = ["t = time.time()", "stamp = datetime.now()", "host = socket.gethostname()", "x = np.random.rand(3)",
           "rng = np.random.default_rng()", "k = random.randint(0, 9)", "noise = torch.randn(3)"]
    good = ["np.random.seed(seed)", "rng = np.random.default_rng(seed)", "random.seed(seed)",
            "state = (random.getstate(), np.random.get_state())", "np.random.set_state(state)",
            "tick = time.perf_counter()", "np.random.SeedSequence(seed).spawn(3)", "rng.random()",
            "torch.randn(3, generator=gen)"]
    hits = lambda code: [w for p, w in HIDDEN_INPUTS.items() if re.search(p, code)]  # noqa: E731
    assert all(hits(code) for code in bad), [code for code in bad if not hits(code)]
    assert not any(hits(code) for code in good), [code for code in good if hits(code)]
