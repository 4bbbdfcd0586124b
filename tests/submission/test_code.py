"""`make submit` for a code competition, offline: only the `KaggleApi` object is fake; the bundle is real files."""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from segpipe.bundle import kernel
from segpipe.core.errors import InputError
from segpipe.submission.code import submit_code

COMPETITION = "uw-madison-gi-tract-image-segmentation"


def http_error(status: int) -> requests.exceptions.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.exceptions.HTTPError(f"{status} Client Error", response=response)


def bundle(tmp_path: Path, wheels: bool = True) -> Path:
    """A bundle folder as the bundle stage and make bundle leave it (placeholder owner, read-only files)."""
    root = tmp_path / "bundle"
    (root / "models/unet").mkdir(parents=True)
    (root / "models/unet/fold0.safetensors").write_bytes(b"weights")
    (root / "bundle.json").write_text("{}")
    (root / "dataset-metadata.json").write_text(json.dumps(kernel.dataset_metadata("KAGGLE_USERNAME", "b", "t")))
    (root / "kernel").mkdir()
    (root / "kernel/kernel-metadata.json").write_text(
        json.dumps(kernel.kernel_metadata("KAGGLE_USERNAME", "k", "b", COMPETITION)))
    (root / "kernel/infer.py").write_text(kernel.kernel_script("KAGGLE_USERNAME", "b", COMPETITION, "9h"))
    if wheels:
        (root / "wheels").mkdir()
        (root / "wheels/requirements.txt").write_text("segpipe==0.1.0\n")
    for path in root.rglob("*"):
        if path.is_file():
            path.chmod(0o444)
    return root


@pytest.fixture
def api(monkeypatch):
    """A fake kaggle package; `state` scripts the server's answers and records the calls."""
    state = SimpleNamespace(calls=[], exists=False, dataset=["ready"], kernel=["KernelWorkerStatus.COMPLETE"],
                            failure="", user="alice", staged={})

    class KaggleApi:  # the real signatures (kaggle 2.2.4), so a wrong keyword fails here as it would there
        def authenticate(self):
            pass

        def get_config_value(self, name):
            return state.user if name == "username" else None

        def dataset_status(self, dataset, format=None):
            state.calls.append(("status", dataset))
            if not state.exists:
                raise http_error(404)
            return state.dataset.pop(0) if len(state.dataset) > 1 else state.dataset[0]

        def dataset_create_new(self, folder, public=False, quiet=False, convert_to_csv=True, dir_mode="skip",
                               ignore_patterns=None):
            state.calls.append(("create", public, dir_mode))
            state.staged["dataset"] = json.loads((Path(folder) / "dataset-metadata.json").read_text())
            state.staged["files"] = sorted(p.name for p in Path(folder).iterdir())
            state.exists = True
            return SimpleNamespace(error=None)

        def dataset_create_version(self, folder, version_notes, quiet=False, convert_to_csv=True,
                                   delete_old_versions=False, dir_mode="skip", ignore_patterns=None):
            state.calls.append(("version", version_notes, dir_mode))
            return SimpleNamespace(error=None)

        def kernels_push(self, folder, timeout=None, acc=None):
            state.calls.append(("push",))
            state.staged["kernel"] = json.loads((Path(folder) / "kernel-metadata.json").read_text())
            state.staged["script"] = (Path(folder) / "infer.py").read_text()
            return SimpleNamespace(error=None, version_number=7, url="https://www.kaggle.com/code/alice/k")

        def kernels_status(self, kernel):
            state.calls.append(("kernel", kernel))
            status = state.kernel.pop(0) if len(state.kernel) > 1 else state.kernel[0]
            return SimpleNamespace(status=status, failure_message=state.failure)

        def competition_submit_code(self, file_name, message, competition=None, kernel=None, kernel_version=None,
                                    quiet=False):
            state.calls.append(("submit", file_name, message, competition, kernel, kernel_version))

    module = types.ModuleType("kaggle.api.kaggle_api_extended")
    module.KaggleApi = KaggleApi
    for name, mod in [("kaggle", types.ModuleType("kaggle")), ("kaggle.api", types.ModuleType("kaggle.api")),
                      ("kaggle.api.kaggle_api_extended", module)]:
        monkeypatch.setitem(sys.modules, name, mod)
    return state


def no_wait(_seconds):
    pass


def test_a_new_dataset_then_the_kernel_run_then_its_output_submitted(api, tmp_path):
    root = bundle(tmp_path)
    api.kernel = ["KernelWorkerStatus.QUEUED", "KernelWorkerStatus.RUNNING", "KernelWorkerStatus.COMPLETE"]
    where = submit_code(COMPETITION, root, "KAGGLE_USERNAME", "b", "k", "resnet34 5 folds", wait=no_wait)
    assert where == "alice/k version 7"
    assert ("create", False, "zip") in api.calls  # private; folders (models/, wheels/) uploaded as zips
    assert api.staged["dataset"]["id"] == "alice/b" and "kernel" not in api.staged["files"]
    assert api.staged["kernel"]["id"] == "alice/k" and api.staged["kernel"]["dataset_sources"] == ["alice/b"]
    assert api.staged["kernel"]["enable_internet"] is False and "datasets/alice/b" in api.staged["script"]
    assert api.calls[-1] == ("submit", "submission.csv", "resnet34 5 folds", COMPETITION, "alice/k", 7)
    assert json.loads((root / "dataset-metadata.json").read_text())["id"] == "KAGGLE_USERNAME/b"  # bundle untouched


def test_an_existing_dataset_gets_a_new_version_and_a_set_owner_is_used(api, tmp_path):
    api.exists = True
    submit_code(COMPETITION, bundle(tmp_path), "bob", "b", "k", "again", wait=no_wait)
    assert ("version", "again", "zip") in api.calls and api.calls[-1][4] == "bob/k"


def test_a_kernel_that_failed_is_named_with_its_message_and_nothing_is_submitted(api, tmp_path):
    api.kernel, api.failure = ["KernelWorkerStatus.ERROR"], "CUDA out of memory"
    with pytest.raises(InputError, match=r"the kernel alice/k version 7 did not finish \(error: CUDA out of memory\); "
                                         r"read its log with `kaggle kernels output alice/k"):
        submit_code(COMPETITION, bundle(tmp_path), "KAGGLE_USERNAME", "b", "k", "m", wait=no_wait)
    assert not [c for c in api.calls if c[0] == "submit"]


def test_a_dataset_version_that_never_becomes_ready_stops_before_the_kernel(api, tmp_path):
    api.dataset = ["pending"]
    with pytest.raises(InputError, match=r"the dataset alice/b has no ready version \(pending after 60 s\)"):
        submit_code(COMPETITION, bundle(tmp_path), "KAGGLE_USERNAME", "b", "k", "m", wait=no_wait, timeout=60)
    assert not [c for c in api.calls if c[0] == "push"]


def test_a_bundle_without_wheels_is_refused_before_any_upload(api, tmp_path):
    with pytest.raises(InputError, match=r"bundle/wheels: missing: run `make bundle`"):
        submit_code(COMPETITION, bundle(tmp_path, wheels=False), "KAGGLE_USERNAME", "b", "k", "m", wait=no_wait)
    assert api.calls == []
