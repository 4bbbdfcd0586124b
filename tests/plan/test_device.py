import json
import types

import pytest
import torch

from segpipe.core.errors import InputError
from segpipe.core.runtime import write_json
from segpipe.plan import device as device_module
from segpipe.plan.device import Device, probe_device

H100 = Device("cuda", 16, name="NVIDIA H100 80GB HBM3", memory_gib=79.1, count=1, bf16=True)


def test_a_description_round_trips_through_its_file(tmp_path):
    write_json(tmp_path / "device.json", H100.to_dict())
    assert Device.read(tmp_path / "device.json") == H100
    assert H100.describe() == "cuda: 1 x NVIDIA H100 80GB HBM3, 79.1 GiB, bf16, 16 cores"
    assert Device("cpu", 2).describe() == "cpu, 2 cores" and not Device("cpu", 2).cuda


@pytest.mark.parametrize("stored", ['{"kind": "tpu", "cpu_cores": 8}', '{"kind": "cuda", "cpu_cores": 4}',
                                    '{"kind": "cpu"}', "not json"])
def test_a_bad_description_names_its_file_and_the_stage_that_rewrites_it(tmp_path, stored):
    (tmp_path / "device.json").write_text(stored)
    with pytest.raises(InputError, match=r"device\.json: not a device description .*dvc repro device"):
        Device.read(tmp_path / "device.json")


def test_this_machine_and_base_device_cpu_describe_a_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert probe_device("auto") == probe_device("cpu") == Device("cpu", device_module.cpu_cores())


def test_a_cuda_device_is_read_from_torch(monkeypatch):
    """What torch reports for two T4s (no native bf16: compute capability 7.5), without a GPU."""
    t4 = types.SimpleNamespace(name="Tesla T4", total_memory=15_828_320_256, major=7, minor=5)
    monkeypatch.setattr(device_module.os.path, "exists", lambda path: path == "/dev/nvidiactl")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: t4)
    monkeypatch.setattr(device_module, "cpu_cores", lambda: 4)
    assert probe_device("auto") == Device("cuda", 4, name="Tesla T4", memory_gib=14.7, count=2, bf16=False)
    assert probe_device("cpu") == Device("cpu", 4)  # base.device: cpu plans for the CPU on a GPU machine
    assert json.loads(json.dumps(probe_device().to_dict()))["bf16"] is False
