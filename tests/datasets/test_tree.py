"""A source's files, wherever they lie: folders, zips, zips in zips, read in place."""
from __future__ import annotations

import io
import multiprocessing
import os
import zipfile
from pathlib import Path

import pytest

from segpipe.core.errors import InputError
from segpipe.datasets.tree import Tree, open_file, read_bytes


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def competition_zip(tmp_path: Path) -> Path:
    """Kaggle's layout: a zip of per-part zips, one stored (read in place), one deflated (extracted once)."""
    path = tmp_path / "comp.zip"
    with zipfile.ZipFile(path, "w") as outer:
        outer.writestr(zipfile.ZipInfo("train.zip"), zip_bytes({"train/a.jpg": b"A" * 100, "train/b.jpg": b"B"}))
        outer.writestr("test.zip", zip_bytes({"test/c.jpg": b"C" * 50}), compress_type=zipfile.ZIP_DEFLATED)
        outer.writestr("sample_submission.csv", b"img,rle_mask\nc.jpg,1 1\n")
        outer.writestr("__MACOSX/._a.jpg", b"")  # hidden entries are skipped
    return path


def test_members_of_zips_in_a_zip_are_named_as_if_extracted(competition_zip: Path, tmp_path: Path) -> None:
    unzipped = tmp_path / "unzipped"
    tree = Tree.scan(competition_zip, unzip_dir=unzipped)
    assert sorted(tree.entries) == ["sample_submission.csv", "test/c.jpg", "train/a.jpg", "train/b.jpg"]
    assert tree.read_bytes("train/a.jpg") == b"A" * 100 and tree.read_bytes("test/c.jpg") == b"C" * 50
    assert str(tree.locate("train/a.jpg")).endswith("comp.zip!train.zip!train/a.jpg")  # in place, no copy
    assert [p.name for p in unzipped.iterdir()] == [f"{zipfile.ZipFile(competition_zip).getinfo('test.zip').CRC:08x}"
                                                    "-test.zip"]
    assert tree.read_csv("sample_submission.csv").img.tolist() == ["c.jpg"]
    assert tree.fingerprint("train/b.jpg") == f"crc32:{zipfile.crc32(b'B'):08x}"
    with open_file(tree.locate("train/a.jpg")) as handle:
        assert handle.read(3) == b"AAA"


def test_a_compressed_inner_zip_without_a_folder_for_it_is_a_clear_error(competition_zip: Path) -> None:
    with pytest.raises(InputError, match="holds the compressed zip test.zip"):
        Tree.scan(competition_zip)


def _read_in_child(locator: str, queue) -> None:
    queue.put(read_bytes(locator))


def test_forked_workers_read_members_the_parent_opened(competition_zip: Path, tmp_path: Path) -> None:
    tree = Tree.scan(competition_zip, unzip_dir=tmp_path / "u")
    assert tree.read_bytes("train/b.jpg") == b"B"  # the parent opens the zip first
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_read_in_child, args=(str(tree.locate(name)), queue))
                for name in ("train/a.jpg", "test/c.jpg", "train/a.jpg")]
    for child in children:
        child.start()
    results = sorted(queue.get(timeout=30) for _ in children)
    for child in children:
        child.join()
    assert results == sorted([b"A" * 100, b"C" * 50, b"A" * 100])


def test_glob_follows_pathlib(tmp_path: Path) -> None:
    for name in ("a/x1.png", "a/x2.png", "a/b/x3.png", "x4.png", "a/x1_mask.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    tree = Tree.scan(tmp_path)
    for pattern in ("a/*.png", "**/*.png", "a/x?.png", "a/x[12].png", "*/*/*.png", "a/*_mask.png"):
        assert tree.glob(pattern) == sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob(pattern)
                                            if p.is_file()), pattern


def test_rooted_picks_the_shallowest_top_and_the_newest_kagglehub_version(tmp_path: Path) -> None:
    cache = tmp_path / "kagglehub" / "datasets" / "mateuszbuda" / "lgg-mri-segmentation"
    for version in ("1", "2", "10"):
        (cache / "versions" / version / "kaggle_3m" / "p").mkdir(parents=True)
        (cache / "versions" / version / "kaggle_3m" / "p" / "p_1.tif").write_bytes(version.encode())
    (cache / "versions" / "10" / "lgg-mri-segmentation" / "kaggle_3m" / "p").mkdir(parents=True)
    (cache / "versions" / "10" / "lgg-mri-segmentation" / "kaggle_3m" / "p" / "p_1.tif").write_bytes(b"copy")
    rooted = Tree.scan(cache).rooted("kaggle_3m/")
    assert rooted.where.endswith("versions/10") and rooted.read_bytes("kaggle_3m/p/p_1.tif") == b"10"
    assert Tree.scan(cache).rooted("nothing.csv").where == str(cache)  # no marker: the tree as it is


def test_a_zip_entry_outside_its_folder_and_a_missing_source_are_refused(tmp_path: Path) -> None:
    (tmp_path / "evil.zip").write_bytes(zip_bytes({"../escaped.txt": b"x"}))
    with pytest.raises(InputError, match="outside"):
        Tree.scan(tmp_path / "evil.zip")
    with pytest.raises(InputError, match="no such file or folder"):
        Tree.scan(tmp_path / "missing")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(InputError, match="broken.zip: not a readable zip"):
        Tree.scan(tmp_path / "broken.zip")


@pytest.mark.parametrize("target", ["/dev/zero", "gone.png"])
def test_a_file_that_is_no_regular_file_is_named_at_the_scan(tmp_path, target):
    """A link to /dev/zero would be read forever by the source stage's fingerprint; a dangling one fail on stat."""
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.png").write_bytes(b"A")
    odd = tmp_path / "train" / "b.png"
    odd.symlink_to(target)
    with pytest.raises(InputError, match=rf"^{odd}: (not a regular file|a link to nothing)"):
        Tree.scan(tmp_path)
    os.remove(odd)
    (tmp_path / "train" / "c.png").symlink_to(tmp_path / "train" / "a.png")  # a link to a file is read as the file
    assert Tree.scan(tmp_path).read_bytes("train/c.png") == b"A"
