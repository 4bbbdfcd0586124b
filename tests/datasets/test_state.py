"""Source fingerprints are remembered by file stat: an unchanged file is not read again, a changed one is."""
from __future__ import annotations

import os
from pathlib import Path

from segpipe.datasets import state
from segpipe.datasets.tree import Tree


def source_with(tmp_path: Path, files: dict[str, bytes]) -> Path:
    root = tmp_path / "source"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def counting(tree: Tree, monkeypatch) -> list[str]:
    """The names `tree.fingerprint` reads from now on."""
    read, real = [], tree.fingerprint
    monkeypatch.setattr(tree, "fingerprint", lambda name: read.append(name) or real(name))
    return read


def test_an_unchanged_file_is_not_read_again_and_an_edited_one_is(tmp_path, monkeypatch):
    root = source_with(tmp_path, {"a.png": b"aaa", "b.png": b"bbb"})
    memory = tmp_path / "state.json"
    first, changes = state.fingerprints(Tree.scan(root), ["a.png", "b.png"], memory)
    assert changes is None and first[0] != first[1]
    tree = Tree.scan(root)
    read = counting(tree, monkeypatch)
    again, changes = state.fingerprints(tree, ["a.png", "b.png"], memory)
    assert again == first and read == [] and str(changes) == "no file changed"
    (root / "b.png").write_bytes(b"BBB")  # same size; the mtime moves
    stamp = (root / "b.png").stat()
    os.utime(root / "b.png", ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
    tree = Tree.scan(root)
    read = counting(tree, monkeypatch)
    edited, changes = state.fingerprints(tree, ["a.png", "b.png"], memory)
    assert read == ["b.png"] and edited[0] == first[0] and edited[1] != first[1]
    assert changes.edited == ["b.png"] and not changes.added and not changes.removed


def test_added_and_removed_files_are_reported(tmp_path):
    root = source_with(tmp_path, {"a.png": b"a", "b.png": b"b", "c.png": b"c"})
    memory = tmp_path / "state.json"
    state.fingerprints(Tree.scan(root), ["a.png", "b.png"], memory)
    _, changes = state.fingerprints(Tree.scan(root), ["b.png", "c.png"], memory)
    assert (changes.edited, changes.added, changes.removed) == ([], ["c.png"], ["a.png"])
    assert str(changes) == "1 added (c.png), 1 removed (a.png)"


def test_a_damaged_state_costs_only_a_full_read(tmp_path):
    root = source_with(tmp_path, {"a.png": b"a"})
    memory = tmp_path / "state.json"
    memory.write_text("{not json")
    expected = Tree.scan(root).fingerprint("a.png")
    assert state.fingerprints(Tree.scan(root), ["a.png"], memory) == ([expected], None)
    assert state.fingerprints(Tree.scan(root), ["a.png"], memory)[0] == [expected]
