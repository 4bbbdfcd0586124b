"""DVC stage `device`: describe the device the train stages will run on (data/device.json), for the plan.

The CPU's cores, or the first CUDA device's name, memory and bf16 support and the number of them
(`segpipe.plan.device`). DVC cannot see a machine's hardware, so `make run` reruns this stage first
(`dvc repro -f -s source device`); the file changes only when the device does, and only then does the
plan rerun.
`base.device: cpu` describes the CPU wherever it runs (the CPU plan on a GPU machine).
"""
from segpipe.config.sections import load_base
from segpipe.core.cli import parse_paths, run_stage
from segpipe.core.runtime import write_json
from segpipe.plan.device import probe_device


def main() -> None:
    args = parse_paths(__doc__, "out")
    device = probe_device(load_base().device)
    write_json(args.out, device.to_dict())
    print(f"device: {device.describe()}")


if __name__ == "__main__":
    run_stage(main)
