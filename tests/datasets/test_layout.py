"""The checks shared by the real-download adapters: the test set against sample_submission.csv."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from segpipe.core.errors import InputError
from segpipe.datasets.layout import sample_ordered_test
from segpipe.datasets.tree import Tree


def load_test(root: Path):
    tree = Tree.scan(root)
    return sample_ordered_test(tree, "sample_submission.csv", "img", tree.glob("test/*.tif"),
                               lambda image_id: f"test/{image_id}.tif", f"{root}/test")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "test").mkdir()
    for image_id in ("3", "1", "2"):
        (tmp_path / "test" / f"{image_id}.tif").write_bytes(b"")
    return tmp_path


@pytest.mark.parametrize("sample, problem", [
    ("img,pixels\n3,1 1\n1,1 1\n2,1 1\n1,1 1\n", "ids listed twice: 1"),
    ("img,pixels\n3,1 1\n1,1 1\n2,1 1\n9,1 1\n", "ids with no image in .*test: 9"),
    ("img,pixels\n3,1 1\n1,1 1\n", "images in .*test not in the sample: 2.tif"),
    ("id,pixels\n3,1 1\n1,1 1\n2,1 1\n", "no column 'img'"),
])
def test_test_ids_that_differ_from_the_sample_are_named(root: Path, sample: str, problem: str) -> None:
    (root / "sample_submission.csv").write_text(sample)
    with pytest.raises(InputError, match=re.escape(str(root / "sample_submission.csv")) + ".*" + problem):
        load_test(root)


def test_a_missing_sample_and_the_sample_order(root: Path) -> None:
    with pytest.raises(InputError, match="sample_submission.csv: missing"):
        load_test(root)
    (root / "sample_submission.csv").write_text("img,pixels\n3,1 1\n1,1 1\n2,1 1\n")
    assert load_test(root).id.tolist() == ["3", "1", "2"]  # sample order, ids as written
