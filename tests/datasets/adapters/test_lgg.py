"""The LGG adapter on a tiny tree in the real layout, then through prepare, folds and submit."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from indexing import index_then_download

from segpipe import datasets, rle
from segpipe.cache.folds import stratified_group_folds
from segpipe.cache.prepare import prepare_competition
from segpipe.core.errors import InputError
from segpipe.datasets.adapters import lgg
from segpipe.evaluation.postprocess import Rule
from segpipe.inference.probmaps import write_maps
from segpipe.submission.submit import write_submission

# Slices per patient: 10..12 so that lexicographic order ("1", "10", "11", "12", "2") is wrong.
PATIENTS = {"TCGA_CS_4941_19960909": 12, "TCGA_CS_4942_19970222": 10,
            "TCGA_DU_5849_19950405": 11, "TCGA_HT_7602_19951103": 12}
HELD_OUT = "TCGA_CS_4942_19970222"


def expected_mask(patient: int, number: int) -> np.ndarray:
    """A lopsided bar per slice (so row- and column-major RLE differ); every third slice empty."""
    mask = np.zeros((16, 16), bool)
    if number % 3:
        mask[1 + number, 2 + patient: 7 + patient] = True
    return mask


def expected_image(patient: int, number: int) -> np.ndarray:
    image = np.zeros((16, 16, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10 * number, 20 * patient + 5, 7
    return image


def build(base: Path) -> Path:
    """`base`/kaggle_3m/ with data.csv and a stray file, plus the byte-identical duplicate tree."""
    tree = base / "kaggle_3m"
    for p, (patient, slices) in enumerate(PATIENTS.items()):
        (tree / patient).mkdir(parents=True)
        for number in range(1, slices + 1):
            stem = tree / patient / f"{patient}_{number}"
            assert cv2.imwrite(f"{stem}.tif", cv2.cvtColor(expected_image(p, number), cv2.COLOR_RGB2BGR))
            assert cv2.imwrite(f"{stem}_mask.tif", expected_mask(p, number).astype(np.uint8) * 255)
    (tree / "data.csv").write_text("Patient,RNASeqCluster\nTCGA_CS_4941,2\nTCGA_CS_4942,1\n")
    (tree / HELD_OUT / "notes.txt").write_text("not a slice")
    copy = base / "lgg-mri-segmentation" / "kaggle_3m"
    shutil.copytree(tree, copy)
    (copy / "data.csv").write_bytes(b"Patient;RNASeqCluster\r\nTCGA_CS_4941;2\r\n")
    return base


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return build(tmp_path / "lgg")


def test_each_slice_once_in_numeric_order(root: Path) -> None:
    train = lgg.load(root).train
    assert len(train) == sum(PATIENTS.values()) and train.id.is_unique
    assert all(Path(path).is_relative_to(root / "kaggle_3m") for path in train.image)
    assert list(train.group.unique()) == list(PATIENTS)
    for patient, slices in PATIENTS.items():
        rows = train[train.group == patient]
        assert rows.id.tolist() == [f"{patient}_{n}" for n in range(1, slices + 1)]
        assert [Path(m).name for m in rows["mask"]] == [f"{i}_mask.tif" for i in rows.id]


def test_duplicate_tree_used_when_top_level_is_missing(root: Path) -> None:
    ids = lgg.load(root).train.id.tolist()
    shutil.rmtree(root / "kaggle_3m")
    train = lgg.load(root).train
    assert train.id.tolist() == ids
    assert all(Path(path).is_relative_to(root / "lgg-mri-segmentation") for path in train.image)


def test_readers_and_submission(root: Path) -> None:
    competition = lgg.load(root)
    row = competition.train.iloc[13]  # second patient, slice 2
    image, original = competition.read_image(Path(row.image))
    assert original == (16, 16) and np.array_equal(image, expected_image(1, 2))
    assert np.array_equal(competition.read_mask(Path(row["mask"])), expected_mask(1, 2))
    assert competition.test.empty and list(competition.test.columns) == ["id", "image"]
    assert competition.submission == lgg.SUBMISSION
    assert (competition.submission.rle_order, competition.submission.sample_submission) == ("F", None)


def test_image_without_mask_is_named(root: Path) -> None:
    (root / "kaggle_3m" / HELD_OUT / f"{HELD_OUT}_7_mask.tif").unlink()
    with pytest.raises(InputError, match=f"{HELD_OUT}_7_mask.tif"):
        lgg.load(root)


def test_mask_without_image_is_named(root: Path) -> None:
    (root / "kaggle_3m" / HELD_OUT / f"{HELD_OUT}_7.tif").unlink()
    with pytest.raises(InputError, match=f"{HELD_OUT}_7_mask.tif"):
        lgg.load(root)


def test_no_patient_dirs_names_both_folders(tmp_path: Path) -> None:
    (tmp_path / "kaggle_3m").mkdir()
    with pytest.raises(InputError, match="no LGG slices found in .*kaggle_3m/<patient>/<patient>_<slice>.tif"):
        lgg.load(tmp_path)


def test_download_delegates_to_kaggle(root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = []

    def fake_download(handle: str, dest: Path) -> None:
        calls.append((handle, dest))
        shutil.copytree(root, dest)
        (dest / ".complete").touch()

    monkeypatch.setattr("segpipe.kaggle.download_dataset", fake_download, raising=False)
    sources = tmp_path / "sources"
    index_then_download("lgg", tmp_path / "raw" / "lgg", sources=sources, kaggle_input=tmp_path / "none",
                        source=str(sources / "lgg"))
    assert calls == [("mateuszbuda/lgg-mri-segmentation", sources / "lgg")]


def test_prepare_folds_and_submit(root: Path, tmp_path: Path) -> None:
    competition = lgg.load(root)
    held = competition.train.group == HELD_OUT
    competition = dataclasses.replace(competition, train=competition.train[~held].reset_index(drop=True),
                                      test=competition.train[held].reset_index(drop=True))
    out = tmp_path / "prepared"
    prepare_competition(competition, out, size=(32, 32), workers=1)

    train = pd.read_csv(out / "train.csv", dtype={"id": str, "group": str})
    assert train.id.tolist() == competition.train.id.tolist()
    assert np.load(out / "train_images.npy").shape == (len(train), 32, 32, 3)
    numbers = train.id.str.rsplit("_", n=1).str[1].astype(int)
    assert ((train.mask_area > 0) == (numbers % 3 > 0)).all()
    folds = stratified_group_folds(train, n_splits=2, seed=0)
    assert (folds.groupby("group").fold.nunique() == 1).all() and set(folds.fold) == {0, 1}

    test_index = pd.read_csv(out / "test.csv", dtype={"id": str})
    assert (test_index.height == 16).all() and (test_index.width == 16).all()
    p = list(PATIENTS).index(HELD_OUT)
    masks = [expected_mask(p, n) for n in range(1, PATIENTS[HELD_OUT] + 1)]
    probs = np.stack([np.kron(m, np.ones((2, 2))) * 255 for m in masks]).astype(np.uint8)
    write_maps(tmp_path / "probs.npz", probs)
    write_submission(tmp_path / "probs.npz", test_index, competition.submission, Rule(0.5, 0.5, 0),
                     tmp_path / "submission.csv.gz", workers=1)
    submission = pd.read_csv(tmp_path / "submission.csv.gz", dtype=str, keep_default_na=False)
    assert list(submission.columns) == ["id", "rle_mask"]
    assert submission.id.tolist() == [f"{HELD_OUT}_{n}" for n in range(1, PATIENTS[HELD_OUT] + 1)]
    for encoded, mask in zip(submission.rle_mask, masks):
        assert np.array_equal(rle.decode(encoded, (16, 16), order="F"), mask)
