"""The device a plan is made for: the CPU's cores, or the CUDA devices' name, memory, count and bf16 support.

The `device` stage describes the machine once (`probe_device`, the one place that asks torch about
CUDA) into data/device.json; the plan stage reads it back (`Device.read`) and hands it to the rules
(`segpipe.plan.device_rules`). A plan is then a function of its files: the fingerprint, the device
and the params, and a new device is a new data/device.json, which DVC sees.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from segpipe.core.errors import InputError

KINDS = ("cpu", "cuda")
BF16_CAPABILITY = 8  # compute capability from which bfloat16 is native (Ampere: A100, A10, L4; Hopper: H100)
# Device files of an NVIDIA driver (native Linux and containers; WSL2's GPU): on a Linux machine with neither,
# torch cannot see CUDA, and the stage that runs at every repro skips importing it (2-4 s on 2 cores)
NVIDIA_NODES = ("/dev/nvidiactl", "/dev/dxg")


@dataclass(frozen=True)
class Device:
    kind: str  # "cpu" or "cuda": where the train stages will run
    cpu_cores: int  # cores this process may use (the DataLoader workers' share)
    name: str = ""  # the CUDA device's name, e.g. "Tesla T4"
    memory_gib: float = 0.0  # memory of one CUDA device, GiB
    count: int = 0  # CUDA devices of that kind
    bf16: bool = False  # native bfloat16; without it autocast runs in fp16 (the same memory, a gradient scaler)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"device kind {self.kind!r}: one of {list(KINDS)}")
        if self.cpu_cores < 1 or (self.kind == "cuda" and (self.count < 1 or self.memory_gib <= 0)):
            raise ValueError(f"device {self}: a CPU core at least, and a CUDA device's count and memory")

    @property
    def cuda(self) -> bool:
        return self.kind == "cuda"

    def describe(self) -> str:
        """One line: "cpu, 2 cores" or "cuda: 1 x NVIDIA H100 80GB HBM3, 79.1 GiB, bf16, 16 cores"."""
        if not self.cuda:
            return f"cpu, {self.cpu_cores} cores"
        return (f"cuda: {self.count} x {self.name}, {self.memory_gib} GiB{', bf16' if self.bf16 else ''}, "
                f"{self.cpu_cores} cores")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def read(cls, path: Path) -> Device:
        """The device `to_dict` wrote to `path`; InputError naming the file and the stage that rewrites it."""
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as err:
            raise InputError(f"{path}: not a device description ({type(err).__name__}: {err}); "
                             "rewrite it with `dvc repro device`") from None


def cpu_cores() -> int:
    """Cores this process may run on (its affinity, as a container or `taskset` limits it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def probe_device(setting: str = "auto") -> Device:
    """This machine's device, as the train stages will use it: the first CUDA device (and how many there
    are) when torch sees one, else the CPU. `setting` "cpu" (`base.device`) describes the CPU whatever is here."""
    if setting == "cpu" or (sys.platform == "linux" and not any(map(os.path.exists, NVIDIA_NODES))):
        return Device("cpu", cpu_cores())
    import torch  # here only: the plan reads the description, never the hardware

    if not torch.cuda.is_available():
        return Device("cpu", cpu_cores())
    props = torch.cuda.get_device_properties(0)
    return Device("cuda", cpu_cores(), name=props.name, memory_gib=round(props.total_memory / 2**30, 1),
                  count=torch.cuda.device_count(), bf16=props.major >= BF16_CAPABILITY)
