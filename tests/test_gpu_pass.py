"""bench/gpu_pass.py: the wheels it installs on a CUDA machine and the training lines it reads.

The pass itself needs a GPU to mean anything; its steps were run small on a CPU with
`python bench/gpu_pass.py --smoke` (docs/gpu.md#the-gpu-pass).
"""
import sys
from pathlib import Path

from test_docs import of

from segpipe.training.loop import _Scores

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from gpu_pass import arguments, epoch_lines  # noqa: E402
from gpu_wheels import choose_wheels  # noqa: E402

WHEELS = [Path(name) for name in ("dvc-3.67.1-py3-none-any.whl", "flufl_lock-9.2.0-py3-none-any.whl",
                                  "huggingface_hub-2.4.0-py3-none-any.whl", "pydantic-2.14.4-py3-none-any.whl",
                                  "ruamel_yaml-0.19.1-py3-none-any.whl")]


def test_a_wheel_is_installed_only_where_the_machine_lacks_its_project_or_has_it_outside_our_range():
    image = {"huggingface-hub": "0.20.0", "pydantic": "2.9.0", "ruamel-yaml": "0.18.0"}  # canonical names
    ranges = ["huggingface_hub>=0.24", "pydantic>=2.6,<3", "dvc>=3.50,<4"]
    chosen = choose_wheels(WHEELS, image.get, ranges)
    # dvc and flufl.lock are missing; huggingface_hub is too old for segpipe; pydantic fits and
    # ruamel.yaml is not one of segpipe's own: the image's stay
    assert [wheel.name.split("-")[0] for wheel in chosen] == ["dvc", "flufl_lock", "huggingface_hub"]


def test_the_pass_reads_the_training_loops_own_epoch_lines():
    scores = _Scores({"train/loss": 0.5, "val/loss": 0.4, "val/dice": 0.81, "lr": 1e-3})
    scores.seen, scores.data_time, scores.step_time = 4096, 0.5, 3.5
    line = f"fold 1 epoch 3/12: {scores.describe()}"
    assert epoch_lines(f"noise\n{line}\nmore noise\n") == [
        {"fold": 1, "epoch": 3, "of": 12, "data_s": 0.5, "step_s": 3.5, "img_s": 1024}]


def test_the_documented_pass_commands_parse_with_its_own_parser():
    commands = [c for c in of("python") if c.argv[0] == "bench/gpu_pass.py"]
    assert len(commands) >= 2  # docs/gpu.md: with the machine's packages, and with wheels
    for command in commands:
        args = arguments().parse_args(list(command.argv[1:]))
        assert args.out, command
