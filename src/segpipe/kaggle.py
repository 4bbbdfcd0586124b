"""Talk to Kaggle: download a competition or dataset into a raw folder, submit a file.

The `kaggle` package is imported here only, and only when called: without credentials its
import prints a page of help (2.2.x; older releases raise OSError) and `authenticate()`
calls exit(1). Both become one InputError that says how to log in.

Downloads are all-or-nothing: files go to a temporary sibling of the destination
(`runtime.atomic_path`), `.complete` lists them, and only then is the folder renamed onto
the destination. Zips are kept as Kaggle serves them: the datasets' Tree reads their
members in place, which saves extracting ~17 GB for Carvana. A failure or Ctrl-C removes
the temporary folder and leaves the destination as it was; a destination with
`.complete` is never downloaded again.
"""
from __future__ import annotations

import contextlib
import errno
import io
import socket
from pathlib import Path
from typing import Callable, Sequence

from segpipe.core.errors import InputError
from segpipe.core.runtime import atomic_path

COMPLETE = ".complete"  # written last: lists the downloaded files, relative to the folder
KEEP = ".gitkeep"

CREDENTIALS_HELP = (
    "create an API token at https://www.kaggle.com/settings (API section) and give it in "
    "one of these ways: KAGGLE_API_TOKEN=<token or path to a "
    "file holding it>; the token in ~/.kaggle/access_token; KAGGLE_USERNAME and KAGGLE_KEY "
    "from a legacy kaggle.json; or that kaggle.json in ~/.kaggle/kaggle.json "
    "(or $KAGGLE_CONFIG_DIR/kaggle.json)"
)
# errno values meaning "the network is not there", as opposed to a local file problem.
NETWORK_ERRNOS = {errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTUNREACH, errno.EHOSTDOWN,
                  errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT}


def client():
    """An authenticated `KaggleApi`; InputError naming the ways to log in if there are none."""
    chatter = io.StringIO()  # the package's own help text: replaced by our one-line message
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            from kaggle.api.kaggle_api_extended import KaggleApi

            api = KaggleApi()
            api.authenticate()
    except ModuleNotFoundError as err:
        raise InputError(f"the kaggle package is not installed ({err}); run `make install`") from None
    except (SystemExit, OSError) as err:
        # An access token is checked online, so a missing network surfaces here too.
        raise InputError(explain(err, what="log in") or f"no Kaggle credentials found: {CREDENTIALS_HELP}") from None
    return api


def download_competition(slug: str, dest: Path, files: Sequence[str] | None = None) -> None:
    """Fill `dest` with competition `slug`'s files (all of them, or just `files`), extracted."""
    def fetch(api, tmp: Path) -> None:
        if files is None:
            api.competition_download_files(slug, path=str(tmp), quiet=False)
        for name in files or ():  # a file may arrive as NAME or NAME.zip; both end up extracted
            api.competition_download_file(slug, name, path=str(tmp), quiet=False)

    rules = f"https://www.kaggle.com/competitions/{slug}/rules"
    forbidden = (f"Kaggle refused competition {slug!r} (HTTP 403): you must accept the competition's rules: "
                 f"open {rules}, click 'I Understand and Accept', then rerun")
    _download(Path(dest), fetch, f"competition {slug!r}", forbidden)


def download_dataset(handle: str, dest: Path) -> None:
    """Fill `dest` with the files of dataset `handle` ("owner/name"), extracted."""
    def fetch(api, tmp: Path) -> None:
        api.dataset_download_files(handle, path=str(tmp), unzip=False, quiet=False)

    forbidden = (f"Kaggle refused dataset {handle!r} (HTTP 403): it is private, or its terms must be "
                 f"accepted first at https://www.kaggle.com/datasets/{handle}; then rerun")
    _download(Path(dest), fetch, f"dataset {handle!r}", forbidden)


def submit(slug: str, file: Path, message: str) -> None:
    """Upload `file` to competition `slug` with `message` as its description."""
    forbidden = (f"Kaggle refused the submission to {slug!r} (HTTP 403): accept the rules at "
                 f"https://www.kaggle.com/competitions/{slug}/rules, or the daily submission limit is used up")
    api = client()
    try:
        api.competition_submit(file_name=str(file), message=message, competition=slug)
    except Exception as err:
        problem = explain(err, what=f"submit to competition {slug!r}", forbidden=forbidden)
        if problem is None:
            raise
        raise InputError(problem) from err


def is_complete(dest: Path) -> bool:
    """Whether `dest` holds a finished download."""
    return (Path(dest) / COMPLETE).is_file()


def _download(dest: Path, fetch: Callable, what: str, forbidden: str) -> None:
    if is_complete(dest):
        return
    with atomic_path(dest) as tmp:  # a killed download's leftovers (gigabytes) go on the next run
        api = client()
        tmp.mkdir()
        try:
            fetch(api, tmp)
        except Exception as err:
            problem = explain(err, what=f"download {what}", forbidden=forbidden)
            if problem is None:
                raise
            raise InputError(f"{problem}; the folder {dest} was left as it was") from err
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        if not files:
            raise InputError(f"Kaggle sent no files for {what}; the folder {dest} was left as it was")
        if (dest / KEEP).is_file():  # the placeholder that keeps the empty folder in git
            (tmp / KEEP).touch()
        (tmp / COMPLETE).write_text("\n".join(files) + "\n")


def explain(err: BaseException, what: str, forbidden: str = "") -> str | None:
    """The user-facing message for a known failure of `what`; None for anything else (a bug)."""
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", None) or getattr(err, "status", None)  # requests / old ApiException
    if isinstance(status, int):
        if status == 403 and forbidden:
            return forbidden
        if status == 401:
            return f"Kaggle rejected the credentials (HTTP 401) when trying to {what}: {CREDENTIALS_HELP}"
        if status == 404:
            return f"cannot {what}: Kaggle does not know it (HTTP 404); check its spelling"
        return f"cannot {what}: kaggle.com answered HTTP {status} ({err}); try again later"
    if _is_network_error(err):
        return f"cannot reach kaggle.com (no network?) to {what}: {type(err).__name__}: {err}"
    return None


def _is_network_error(err: BaseException) -> bool:
    kinds: list[type] = [socket.gaierror, TimeoutError]
    with contextlib.suppress(ImportError):
        import requests
        import urllib3

        kinds += [requests.exceptions.ConnectionError, requests.exceptions.Timeout, urllib3.exceptions.HTTPError]
    return isinstance(err, tuple(kinds)) or (isinstance(err, OSError) and err.errno in NETWORK_ERRNOS)
