import dataclasses
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from segpipe.cache.images import resize_mask
from segpipe.cache.prepare import prepare_competition
from segpipe.core.errors import InputError
from tests.conftest import TINY, TINY_SIZE


def test_cache_has_training_size_uint8_arrays_and_an_index(prepared_dir, competition):
    images = np.load(prepared_dir / "train_images.npy", mmap_mode="r")
    masks = np.load(prepared_dir / "train_masks.npy", mmap_mode="r")
    n_train = TINY["train_patients"] * TINY["slices_per_patient"]
    assert images.shape == (n_train, *TINY_SIZE, 3) and images.dtype == np.uint8
    assert masks.shape == (n_train, *TINY_SIZE) and set(np.unique(masks)) <= {0, 1}
    assert not (prepared_dir / "test_images.npy").exists()  # test images are read by predict, not cached
    index = pd.read_csv(prepared_dir / "train.csv", dtype={"id": str, "group": str})
    assert list(index.columns) == ["id", "group", "slice", "height", "width", "mask_area"]
    assert index.id.tolist() == competition.train.id.tolist()
    assert (index.height == TINY["height"]).all() and (index.width == TINY["width"]).all()
    assert (index.mask_area == masks.reshape(len(masks), -1).sum(1)).all()
    test = pd.read_csv(prepared_dir / "test.csv", dtype={"id": str})
    assert test.id.tolist() == competition.test.id.tolist()
    assert (test.height == TINY["height"]).all() and (test.width == TINY["width"]).all()  # from the headers


def test_rows_match_decoding_each_file_by_hand(prepared_dir, competition):
    images = np.load(prepared_dir / "train_images.npy", mmap_mode="r")
    row = competition.train.iloc[5]
    by_hand = cv2.resize(competition.read_image(row.image)[0], TINY_SIZE[::-1], interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(images[5], by_hand)


def test_mask_resize_keeps_shape_and_is_binary():
    mask = np.zeros((40, 48), bool)
    mask[10:30, 12:36] = True
    small = resize_mask(mask, (32, 32))
    assert small.dtype == np.uint8 and set(np.unique(small)) == {0, 1}
    assert abs(small.sum() / 32**2 - mask.mean()) < 0.02


def test_a_mask_of_the_wrong_size_names_the_file_and_leaves_no_output(competition, tmp_path):
    bad_mask = tmp_path / "bad_mask.png"
    cv2.imwrite(str(bad_mask), np.zeros((10, 10), np.uint8))
    train = competition.train.copy()
    train.loc[3, "mask"] = bad_mask
    broken = type(competition)(**{**competition.__dict__, "train": train})
    with pytest.raises(InputError, match="bad_mask.png"):
        prepare_competition(broken, tmp_path / "prepared", TINY_SIZE, workers=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad_mask.png"]


def test_duplicate_ids_are_refused(competition, tmp_path):
    train = pd.concat([competition.train, competition.train.iloc[:1]], ignore_index=True)
    broken = type(competition)(**{**competition.__dict__, "train": train})
    with pytest.raises(InputError, match="duplicate train ids"):
        prepare_competition(broken, tmp_path / "prepared", TINY_SIZE)


@pytest.mark.parametrize("column", ["image", "mask"])
def test_a_truncated_file_names_the_file_and_keeps_the_old_output(competition, tmp_path, column):
    source = Path(competition.train.loc[7, column])
    victim = tmp_path / source.name
    victim.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    train = competition.train.copy()
    train.loc[7, column] = victim
    old = tmp_path / "prepared"
    old.mkdir()
    (old / "train.csv").write_text("the earlier cache\n")
    with pytest.raises(InputError, match=re.escape(str(victim)) + ": cannot decode"):
        prepare_competition(dataclasses.replace(competition, train=train), old, TINY_SIZE, workers=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([victim.name, "prepared"])  # no temp left
    assert [p.name for p in old.iterdir()] == ["train.csv"] and (old / "train.csv").read_text() == "the earlier cache\n"


@pytest.mark.parametrize("split", ["train", "test"])
def test_an_empty_split_or_duplicate_ids_are_refused(competition, tmp_path, split):
    frame = getattr(competition, split)
    empty = dataclasses.replace(competition, **{split: frame.iloc[:0]})
    with pytest.raises(InputError, match=f"the {split} set is empty"):
        prepare_competition(empty, tmp_path / "prepared", TINY_SIZE)
    twice = pd.concat([frame, frame.iloc[[3]]], ignore_index=True)
    with pytest.raises(InputError, match=rf"duplicate {split} ids \['{frame.id[3]}'\]"):
        prepare_competition(dataclasses.replace(competition, **{split: twice}), tmp_path / "prepared", TINY_SIZE)
    assert not list(tmp_path.iterdir())
