"""Submit to a Kaggle code competition: upload the bundle, push its kernel, wait for it, submit its output.

Kaggle scores a code competition only from a notebook it runs itself, offline, on the hidden
test set. `make submit` does what a competitor does by hand:

1. the bundle (`make bundle`) is uploaded as the private dataset `<owner>/<dataset>`, a new
   version when it exists (`kaggle datasets create / version -p bundle --dir-mode zip`), and
   waited for until Kaggle has processed it;
2. the kernel (`bundle/kernel`) is pushed (`kaggle kernels push`) and waited for: its run
   must finish, since Kaggle submits a kernel version's output file;
3. that version's `submission.csv` is submitted (`kaggle competitions submit -k ... -v ...`).

The owner is `bundle.owner`, or the logged-in user while it is left at KAGGLE_USERNAME. The
bundle's metadata files are written with it into a staging copy; the bundle itself is not
modified. The Kaggle client is `segpipe.kaggle.client()`, faked in the tests.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from segpipe import kaggle
from segpipe.core.errors import InputError

PLACEHOLDER = "KAGGLE_USERNAME"
OUTPUT = "submission.csv"


def owner_of(api, configured: str) -> str:
    if configured != PLACEHOLDER:
        return configured
    user = api.get_config_value("username")
    if not user:
        raise InputError("bundle.owner is not set and the Kaggle credentials name no user: set bundle.owner "
                         "in params.yaml to your Kaggle user name")
    return user


def staged(bundle: Path, folder: Path, owner: str) -> tuple[Path, Path]:
    """A copy of `bundle` (and its kernel folder) whose metadata name `owner`: (dataset folder, kernel folder)."""
    if not (bundle / "wheels" / "requirements.txt").is_file():
        raise InputError(f"{bundle}/wheels: missing: run `make bundle` (it downloads the wheels the kernel installs)")
    dataset = Path(shutil.copytree(bundle, folder / "dataset", ignore=shutil.ignore_patterns("kernel", ".*")))
    kernel = Path(shutil.copytree(bundle / "kernel", folder / "kernel"))
    for path in (dataset / "dataset-metadata.json", kernel / "kernel-metadata.json"):
        path.chmod(0o644)
        path.write_text(path.read_text().replace(PLACEHOLDER, owner))
    script = kernel / "infer.py"
    script.chmod(0o644)
    script.write_text(script.read_text().replace(PLACEHOLDER, owner))
    return dataset, kernel


def _call(what: str, call: Callable, forbidden: str = ""):
    try:
        return call()
    except Exception as err:
        problem = kaggle.explain(err, what=what, forbidden=forbidden)
        if problem is None:
            raise
        raise InputError(problem) from err


def upload_dataset(api, folder: Path, handle: str, notes: str, wait: Callable[[float], None], timeout: float) -> None:
    """Create or version the dataset `handle` from `folder`, then wait until Kaggle says it is ready."""
    if _exists(api, handle):
        response = _call(f"version the dataset {handle}",
                         lambda: api.dataset_create_version(str(folder), notes, quiet=True, dir_mode="zip"))
    else:
        response = _call(f"create the dataset {handle}",
                         lambda: api.dataset_create_new(str(folder), public=False, quiet=True, dir_mode="zip"))
    error = getattr(response, "error", None)
    if error:
        raise InputError(f"Kaggle refused the dataset {handle}: {error}")
    status = _until(lambda: str(api.dataset_status(handle)).lower(), {"ready"}, {"error", "failed"}, wait, timeout)
    if status != "ready":
        raise InputError(f"the dataset {handle} has no ready version ({status} after {timeout:.0f} s): the kernel "
                         f"would not find it; check https://www.kaggle.com/datasets/{handle}")


def _exists(api, handle: str) -> bool:
    try:
        api.dataset_status(handle)
        return True
    except Exception as err:
        if getattr(getattr(err, "response", None), "status_code", None) == 404:
            return False
        problem = kaggle.explain(err, what=f"look up the dataset {handle}")
        if problem is None:
            raise
        raise InputError(problem) from err


def push_kernel(api, folder: Path, handle: str, wait: Callable[[float], None], timeout: float) -> int:
    """Push the kernel in `folder`, wait for its run to finish; its version number."""
    response = _call(f"push the kernel {handle}", lambda: api.kernels_push(str(folder)))
    if getattr(response, "error", None):
        raise InputError(f"Kaggle refused the kernel {handle}: {response.error}")
    version = response.version_number

    def status() -> str:
        return str(getattr(api.kernels_status(handle), "status", "")).lower().rpartition(".")[2]

    final = _until(status, {"complete"}, {"error", "cancel_requested", "cancel_acknowledged"}, wait, timeout)
    if final != "complete":
        failure = getattr(api.kernels_status(handle), "failure_message", "") or "no message"
        raise InputError(f"the kernel {handle} version {version} did not finish ({final}: {failure}); read its log "
                         f"with `kaggle kernels output {handle} -p <folder>`, or at https://www.kaggle.com/code/{handle}")
    return version


def _until(status: Callable[[], str], done: set[str], failed: set[str], wait: Callable[[float], None],
           timeout: float, every: float = 30.0) -> str:
    """Poll `status` until it is in `done` or `failed`, or `timeout` seconds of waiting have passed; the last."""
    waited, last = 0.0, status()
    while last not in done | failed and waited < timeout:
        wait(every)
        waited += every
        last = status()
    return last


def submit_code(competition: str, bundle: Path, configured_owner: str, dataset: str, kernel: str, message: str,
                wait: Callable[[float], None] = time.sleep, timeout: float = 12 * 3600) -> str:
    """The whole of `make submit` for a code competition; the kernel `<owner>/<kernel>` submitted."""
    api = kaggle.client()
    owner = owner_of(api, configured_owner)
    with tempfile.TemporaryDirectory(prefix="segpipe-submit-") as tmp:
        data, code = staged(Path(bundle), Path(tmp), owner)
        meta = json.loads((code / "kernel-metadata.json").read_text())
        if meta.get("enable_internet"):
            raise InputError(f"{code}/kernel-metadata.json: enable_internet is on; a code competition runs offline")
        upload_dataset(api, data, f"{owner}/{dataset}", message, wait, timeout)
        handle = f"{owner}/{kernel}"
        version = push_kernel(api, code, handle, wait, timeout)
    forbidden = (f"Kaggle refused the submission to {competition!r} (HTTP 403): accept the rules at "
                 f"https://www.kaggle.com/competitions/{competition}/rules, or the daily submission limit is used up")
    _call(f"submit to competition {competition!r}",
          lambda: api.competition_submit_code(file_name=OUTPUT, message=message, competition=competition,
                                              kernel=handle, kernel_version=version), forbidden)
    return f"{handle} version {version}"
