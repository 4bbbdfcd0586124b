"""The folder adapter with `classes`: index PNG masks, a bit per class, a row per (image, class)."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from segpipe import rle
from segpipe.core.errors import InputError
from segpipe.datasets.adapters import folder
from segpipe.datasets.readers import read_index_mask

CLASSES = ["liver", "tumour"]


def index_mask(i: int) -> np.ndarray:
    """(40, 48) index values: a liver square with a tumour inside (every other image), 0 elsewhere."""
    index = np.zeros((40, 48), np.uint8)
    index[8 + i % 5:30, 10:34] = 1
    if i % 2 == 0:
        index[14:22, 16 + i % 4:26] = 2
    return index


def make_source(base: Path, patients: int = 6, slices: int = 3, palette: bool = True) -> Path:
    rng = np.random.default_rng(0)
    for p in range(patients):
        for s in range(slices):
            i = p * slices + s
            stem = f"case{p}_{s}"
            (base / "images").mkdir(parents=True, exist_ok=True)
            (base / "masks").mkdir(exist_ok=True)
            image = rng.integers(0, 60, (40, 48, 3), dtype=np.uint8)
            index = index_mask(i)
            image[index > 0] += 120  # the classes are visible, so the tiny network has something to learn
            cv2.imwrite(str(base / "images" / f"{stem}.png"), image)
            if palette:
                mask = Image.fromarray(index, mode="P")
                mask.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 - 3) * 3)
                mask.save(base / "masks" / f"{stem}.png")
            else:
                cv2.imwrite(str(base / "masks" / f"{stem}.png"), index)
    return base


OPTIONS = dict(train_images="images/*.png", mask="../masks/{stem}.png", group_regex=r"^(case\d+)_", classes=CLASSES)


@pytest.mark.parametrize("palette", [True, False], ids=["palette", "one-channel"])
def test_index_masks_read_as_a_bit_per_class(tmp_path: Path, palette: bool) -> None:
    source = make_source(tmp_path / "data", palette=palette)
    competition = folder.load(source, **OPTIONS)
    assert competition.classes == tuple(CLASSES) and competition.labels.kind == "multilabel"
    assert competition.submission.class_column == "class"
    mask = competition.read_mask(competition.train["mask"].iloc[0])  # case0_0: i = 0 has a tumour
    index = index_mask(0)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask & 1 > 0, index == 1)
    np.testing.assert_array_equal(mask & 2 > 0, index == 2)
    assert set(np.unique(mask)) == {0, 1, 2}


def test_bad_index_masks_name_the_file(tmp_path: Path) -> None:
    too_high = tmp_path / "high.png"
    cv2.imwrite(str(too_high), np.full((4, 4), 3, np.uint8))
    with pytest.raises(InputError, match=r"high.png: index mask values \(3\) above 2"):
        read_index_mask(too_high, 2)
    colours = tmp_path / "rgb.png"
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = (0, 0, 255)
    cv2.imwrite(str(colours), rgb)
    with pytest.raises(InputError, match="rgb.png: an index mask must hold one value a pixel"):
        read_index_mask(colours, 2)
    with pytest.raises(InputError, match="distinct"):
        folder.load(make_source(tmp_path / "data", patients=1), **{**OPTIONS, "classes": ["a", "a"]})


def test_dvc_exp_run_writes_a_row_per_image_and_class(tmp_path: Path) -> None:
    """`dvc exp run -S base.dataset=folder -S folder.classes=[liver,tumour] ...` to a per-class submission."""
    from dvc_repo import make_repo, run

    source = make_source(tmp_path / "data")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.rglob("*") if p.is_file()}
    repo = make_repo(tmp_path / "repo", {})
    run(["dvc", "exp", "run", "-S", "base.dataset=folder", "-S", f"folder.source={source}",
         "-S", "folder.train_images=images/*.png", "-S", "folder.mask='../masks/{stem}.png'",
         "-S", r"folder.group_regex='^(case\d+)_'", "-S", "folder.classes=[liver,tumour]"], repo)
    rows = [line.split(",") for line in gzip.decompress((repo / "submissions/submit.csv.gz").read_bytes())
            .decode().splitlines()]
    assert rows[0] == ["id", "rle_mask", "class"]
    assert [r[2] for r in rows[1:]] == CLASSES * ((len(rows) - 1) // 2) and len(rows) > 1
    for row in rows[1:]:
        rle.validate(row[1], 40 * 48)
    assert (repo / "metrics/holdout.json").is_file()
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.rglob("*") if p.is_file()} == before


def make_class_files(base: Path, patients: int = 4, slices: int = 2) -> Path:
    """images/<stem>.png with masks/<stem>_liver.png and masks/<stem>_tumour.png, {0, 255} each; the two overlap."""
    (base / "images").mkdir(parents=True)
    (base / "masks").mkdir()
    for i in range(patients * slices):
        stem = f"case{i // slices}_{i % slices}"
        cv2.imwrite(str(base / "images" / f"{stem}.png"), np.full((40, 48, 3), 30, np.uint8))
        index = index_mask(i)
        cv2.imwrite(str(base / "masks" / f"{stem}_liver.png"), (index > 0).astype(np.uint8) * 255)  # under the tumour too
        cv2.imwrite(str(base / "masks" / f"{stem}_tumour.png"), (index == 2).astype(np.uint8) * 255)
    return base


FILES = dict(OPTIONS, mask="../masks/{stem}_{class}.png")


def test_one_file_per_class_reads_as_overlapping_bits(tmp_path: Path) -> None:
    from segpipe.datasets import source as sources
    from segpipe.datasets.tree import as_tree

    root = make_class_files(tmp_path / "data")
    competition = folder.load(root, **FILES)
    assert competition.classes == tuple(CLASSES) and len(competition.train) == 8
    mask = competition.read_mask(competition.train["mask"].iloc[0])  # case0_0: i = 0 has a tumour
    index = index_mask(0)
    assert np.array_equal(mask & 1, (index > 0).astype(np.uint8))  # the liver bit set under the tumour as well
    assert np.array_equal(mask >> 1, (index == 2).astype(np.uint8))
    used = sources.used_files(competition, as_tree(root))  # the source index lists every class file
    assert len(used) == 8 * 3 and "masks/case3_1_tumour.png" in used


def test_a_missing_class_file_or_a_class_rule_without_classes_is_named(tmp_path: Path) -> None:
    root = make_class_files(tmp_path / "data")
    (root / "masks" / "case2_1_tumour.png").unlink()
    with pytest.raises(InputError, match=r"without a class mask \(1; one file per class.*case2_1_tumour\.png"):
        folder.load(root, **FILES)
    with pytest.raises(InputError, match=r"has \{class\} but folder\.classes is empty"):
        folder.load(root, **{**FILES, "classes": []})
    cv2.imwrite(str(root / "masks" / "case2_1_tumour.png"), np.zeros((20, 48), np.uint8))
    competition = folder.load(root, **FILES)
    with pytest.raises(InputError, match=r"case2_1_tumour\.png: class mask is 48x20 but .*case2_1_liver\.png is 48x40"):
        competition.read_mask(competition.train.set_index("id").loc["case2_1", "mask"])


def test_index_masks_may_train_as_exclusive_classes_and_class_files_may_not(tmp_path: Path) -> None:
    competition = folder.load(make_source(tmp_path / "index"), **OPTIONS, exclusive=True)
    assert competition.labels.kind == "multiclass" and competition.exclusive
    with pytest.raises(InputError, match=r"folder\.exclusive is for index PNG masks"):
        folder.load(make_class_files(tmp_path / "files"), **FILES, exclusive=True)
