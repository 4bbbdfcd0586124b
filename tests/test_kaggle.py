"""segpipe.kaggle offline: only the `KaggleApi` object is fake, files and zips are real."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import types
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from segpipe import kaggle
from segpipe.core.errors import InputError
from segpipe.datasets.tree import Tree
from segpipe.submission.message import default_message

SLUG = "carvana-image-masking-challenge"
REPO = Path(__file__).resolve().parents[1]


def http_error(status: int) -> requests.exceptions.HTTPError:
    """What kagglesdk raises for an error answer (kaggle_http_client._prepare_response)."""
    response = requests.Response()
    response.status_code = status
    return requests.exceptions.HTTPError(f"{status} Client Error", response=response)


class OldApiException(IOError):
    """kaggle < 1.6 raised kaggle.rest.ApiException, an IOError with `.status`."""

    def __init__(self, status: int):
        super().__init__(f"({status}) Reason: Not Found")
        self.status = status


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def install_kaggle(monkeypatch, module: types.ModuleType) -> None:
    for name, mod in [("kaggle", types.ModuleType("kaggle")), ("kaggle.api", types.ModuleType("kaggle.api")),
                      ("kaggle.api.kaggle_api_extended", module)]:
        monkeypatch.setitem(sys.modules, name, mod)


@pytest.fixture
def fake(monkeypatch):
    """A fake kaggle package whose KaggleApi records calls and runs `state.serve(tmp, name)`."""
    state = SimpleNamespace(calls=[], serve=lambda folder, name: None, auth_error=None)

    class KaggleApi:  # the real signatures, so a wrong keyword fails here as it would there
        def authenticate(self):
            if state.auth_error:
                print("Authentication required to call the Kaggle API. ...")
                raise state.auth_error

        def competition_download_files(self, competition, path=None, force=False, quiet=True):
            state.calls.append(("files", competition, quiet))
            state.serve(Path(path), competition)

        def competition_download_file(self, competition, file_name, path=None, force=False, quiet=False):
            state.calls.append(("file", competition, file_name))
            state.serve(Path(path), file_name)

        def dataset_download_files(self, dataset, path=None, force=False, quiet=True, unzip=False, licenses=[]):
            state.calls.append(("dataset", dataset, unzip))
            state.serve(Path(path), dataset)

        def competition_submit(self, file_name, message, competition, quiet=False, sandbox=False):
            state.calls.append(("submit", file_name, message, competition))
            state.serve(Path(file_name), competition)

    module = types.ModuleType("kaggle.api.kaggle_api_extended")
    module.KaggleApi = KaggleApi
    install_kaggle(monkeypatch, module)
    return state


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".tmp-" in p.name]


def assert_credentials_help(message: str) -> None:
    for way in ("KAGGLE_API_TOKEN", "access_token", "KAGGLE_USERNAME", "KAGGLE_KEY", "kaggle.json",
                "KAGGLE_CONFIG_DIR", "https://www.kaggle.com/settings"):
        assert way in message


def test_no_credentials_at_import_is_one_input_error(monkeypatch, capsys):
    module = types.ModuleType("kaggle.api.kaggle_api_extended")

    def exit_on_import(name):  # kaggle 2.2.x: prints a page of help, then exit(1)
        print("Authentication required to call the Kaggle API.")
        raise SystemExit(1)

    module.__getattr__ = exit_on_import
    install_kaggle(monkeypatch, module)
    with pytest.raises(InputError) as err:
        kaggle.client()
    assert_credentials_help(str(err.value))
    assert "Authentication required" not in capsys.readouterr().out


@pytest.mark.parametrize("error", [SystemExit(1), OSError("Could not find kaggle.json")])
def test_failing_authenticate_is_the_same_input_error(fake, error, capsys):
    fake.auth_error = error
    with pytest.raises(InputError) as err:
        kaggle.client()
    assert_credentials_help(str(err.value))
    assert capsys.readouterr().out == ""


def serve_carvana(folder: Path, name: str) -> None:
    """The competition zip holds a zip per part plus a loose sample image."""
    train = zip_bytes({"train/car1_01.jpg": b"jpg1", "train/car1_02.jpg": b"jpg2"})
    masks_csv = zip_bytes({"train_masks.csv": b"img,rle_mask\n"})
    (folder / f"{name}.zip").write_bytes(zip_bytes({"train.zip": train, "train_masks.csv.zip": masks_csv,
                                                    "29bb3ece3180_11.jpg": b"sample"}))


def test_competition_download_keeps_the_zips_and_their_members_read_in_place(fake, tmp_path):
    fake.serve = serve_carvana
    dest = tmp_path / "sources" / "carvana"
    kaggle.download_competition(SLUG, dest)
    assert sorted(p.name for p in dest.iterdir()) == [".complete", f"{SLUG}.zip"]  # nothing extracted
    assert (dest / ".complete").read_text().split() == [f"{SLUG}.zip"]
    tree = Tree.scan(dest)
    assert sorted(tree.entries) == ["29bb3ece3180_11.jpg", "train/car1_01.jpg", "train/car1_02.jpg", "train_masks.csv"]
    assert tree.read_bytes("train/car1_02.jpg") == b"jpg2"  # a member of train.zip inside the competition zip
    assert fake.calls == [("files", SLUG, False)] and leftovers(dest.parent) == []

    kaggle.download_competition(SLUG, dest)  # complete: no API call at all
    assert fake.calls == [("files", SLUG, False)]


def test_chosen_files_arrive_as_name_or_name_zip(fake, tmp_path):
    def serve(folder, name):
        if name == "train.zip":
            (folder / name).write_bytes(zip_bytes({"train/a.jpg": b"a"}))
        else:  # Kaggle zips single files on the way: sample_submission.csv.zip
            (folder / f"{name}.zip").write_bytes(zip_bytes({name: b"img,rle_mask\n"}))

    fake.serve = serve
    dest = tmp_path / "carvana"
    kaggle.download_competition(SLUG, dest, files=["train.zip", "sample_submission.csv"])
    assert fake.calls == [("file", SLUG, "train.zip"), ("file", SLUG, "sample_submission.csv")]
    assert (dest / ".complete").read_text().split() == ["sample_submission.csv.zip", "train.zip"]
    assert sorted(Tree.scan(dest).entries) == ["sample_submission.csv", "train/a.jpg"]


def test_dataset_download(fake, tmp_path):
    fake.serve = lambda folder, name: (folder / "lgg-mri-segmentation.zip").write_bytes(
        zip_bytes({"kaggle_3m/p1/p1_1.tif": b"tif"}))
    dest = tmp_path / "lgg"
    kaggle.download_dataset("mateuszbuda/lgg-mri-segmentation", dest)
    assert fake.calls == [("dataset", "mateuszbuda/lgg-mri-segmentation", False)]
    assert Tree.scan(dest).read_bytes("kaggle_3m/p1/p1_1.tif") == b"tif"


def test_the_placeholder_that_keeps_the_folder_in_git_survives(fake, tmp_path):
    fake.serve = lambda folder, name: (folder / "data.zip").write_bytes(zip_bytes({"kaggle_3m/a.tif": b"tif"}))
    dest = tmp_path / "lgg"
    dest.mkdir()
    (dest / ".gitkeep").touch()
    kaggle.download_dataset("mateuszbuda/lgg-mri-segmentation", dest)
    assert sorted(p.name for p in dest.iterdir()) == [".complete", ".gitkeep", "data.zip"]


def partial_then(error: BaseException):
    """A download that writes half a file, then fails with `error`."""
    def serve(folder, name):
        (folder / "part.zip").write_bytes(b"PK\x03\x04 half")
        raise error
    return serve


def failing(error: BaseException):
    def serve(path, name):
        raise error
    return serve


def test_rules_not_accepted_names_the_rules_page_and_keeps_dest(fake, tmp_path):
    fake.serve = partial_then(http_error(403))
    dest = tmp_path / "carvana"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep")  # an earlier, incomplete attempt
    with pytest.raises(InputError) as err:
        kaggle.download_competition(SLUG, dest)
    assert f"https://www.kaggle.com/competitions/{SLUG}/rules" in str(err.value)
    assert "I Understand and Accept" in str(err.value)
    assert [p.name for p in dest.iterdir()] == ["mine.txt"] and leftovers(tmp_path) == []


@pytest.mark.parametrize("error, words", [
    (http_error(403), "https://www.kaggle.com/datasets/someone/private"),
    (http_error(401), "KAGGLE_API_TOKEN"),
    (OldApiException(404), "HTTP 404"),
])
def test_dataset_http_errors(fake, tmp_path, error, words):
    fake.serve = partial_then(error)
    with pytest.raises(InputError, match="someone/private") as err:
        kaggle.download_dataset("someone/private", tmp_path / "data")
    assert words in str(err.value) and list(tmp_path.iterdir()) == []


def test_no_network_leaves_nothing_behind(fake, tmp_path):
    fake.serve = partial_then(requests.exceptions.ConnectionError("Failed to resolve 'www.kaggle.com'"))
    dest = tmp_path / "carvana"
    with pytest.raises(InputError, match="no network") as err:
        kaggle.download_competition(SLUG, dest)
    assert str(dest) in str(err.value) and list(tmp_path.iterdir()) == []


def test_interrupted_download_leaves_nothing_behind(fake, tmp_path):
    fake.serve = partial_then(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        kaggle.download_competition(SLUG, tmp_path / "carvana")
    assert list(tmp_path.iterdir()) == []


def test_zip_entry_escaping_the_folder_is_refused(fake, tmp_path):
    fake.serve = lambda folder, name: (folder / "evil.zip").write_bytes(zip_bytes({"../../escaped.txt": b"x"}))
    kaggle.download_competition(SLUG, tmp_path / "sources" / "carvana")  # kept zipped: nothing is written out
    with pytest.raises(InputError, match="outside"):
        Tree.scan(tmp_path / "sources" / "carvana")
    assert not list(tmp_path.rglob("escaped.txt"))


def test_submit_passes_file_message_and_slug(fake, tmp_path):
    kaggle.submit(SLUG, tmp_path / "submit.csv.gz", "first try")
    assert fake.calls == [("submit", str(tmp_path / "submit.csv.gz"), "first try", SLUG)]
    fake.serve = failing(http_error(403))
    with pytest.raises(InputError, match="/rules"):
        kaggle.submit(SLUG, tmp_path / "submit.csv.gz", "again")


def test_default_message(tmp_path):
    cv = tmp_path / "cv.json"
    rule = {"threshold": 0.45, "gate_threshold": 0.45, "gate_area": 5, "min_component": 0, "keep_largest": 0}
    cv.write_text(json.dumps({"dice": 0.8991595, "rule": rule}))
    assert default_message(cv, tmp_path) == "segpipe no-git CV dice 0.8992 (threshold 0.45, gate 5 px >= 0.45)"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "cv.json"], check=True)
    subprocess.run(git + ["commit", "-qm", "cv"], check=True)
    commit = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert default_message(cv, tmp_path).startswith(f"segpipe {commit} CV dice 0.8992")
    (tmp_path / "new.txt").write_text("uncommitted")
    assert default_message(cv, tmp_path).startswith(f"segpipe {commit}-dirty CV")


def test_submit_stage_refuses_a_dataset_that_is_not_a_competition(raw_dir, tmp_path):
    (tmp_path / "params.yaml").write_text("base:\n  dataset: synthetic\n")
    (tmp_path / "data" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "synthetic").symlink_to(raw_dir)
    done = subprocess.run([sys.executable, str(REPO / "stages" / "kaggle_submit.py")], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "synthetic is not a Kaggle competition" in done.stderr and "metrics/holdout.json" in done.stderr


def test_a_killed_downloads_leftovers_are_removed(fake, tmp_path):
    fake.serve = lambda folder, name: (folder / "data.zip").write_bytes(zip_bytes({"kaggle_3m/a.tif": b"tif"}))
    dest = tmp_path / "raw" / "lgg"
    dead = dest.parent / ".lgg.tmp-999999999"  # no such process
    (dead / "half").mkdir(parents=True)
    kaggle.download_dataset("mateuszbuda/lgg-mri-segmentation", dest)
    assert not dead.exists() and (dest / ".complete").is_file()
