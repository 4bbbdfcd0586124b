"""2.5D stacks: neighbours of the same patient, edges repeated, never across patients."""
import numpy as np
import pandas as pd
import pytest

from segpipe.cache.stacks import gather, neighbour_rows
from segpipe.core.errors import InputError


def shuffled_index():
    """Two patients of 4 and 2 slices, rows in no particular order (slice numbers 1-based, gapped)."""
    rows = [("b", 7), ("a", 2), ("a", 1), ("b", 3), ("a", 4), ("a", 3)]
    return pd.DataFrame({"id": [f"{g}_{z}" for g, z in rows], "group": [g for g, _ in rows],
                         "slice": [z for _, z in rows]})


def stack_ids(index, table):
    return [[index.id[r] for r in row] for row in table]


def test_stacks_are_ordered_by_slice_and_repeat_the_edges():
    index = shuffled_index()
    stacks = dict(zip(index.id, stack_ids(index, neighbour_rows(index, 1, "train.csv"))))
    assert stacks["a_1"] == ["a_1", "a_1", "a_2"]  # first slice: repeated below
    assert stacks["a_3"] == ["a_2", "a_3", "a_4"]
    assert stacks["a_4"] == ["a_3", "a_4", "a_4"]  # last slice: repeated above
    assert stacks["b_3"] == ["b_3", "b_3", "b_7"] and stacks["b_7"] == ["b_3", "b_7", "b_7"]  # by order, not number


def test_stacks_never_cross_patients():
    index = shuffled_index()
    table = neighbour_rows(index, 2, "train.csv")
    assert table.shape == (6, 5)
    for row, stack in enumerate(table):
        assert set(index.group[stack]) == {index.group[row]} and stack[2] == row


def test_no_context_is_2d_and_a_dataset_without_slices_is_refused():
    index = shuffled_index()
    assert neighbour_rows(index, 0, "x") is None
    with pytest.raises(InputError, match=r"train.csv: train.context=1 needs slices in order.*train.context: 0"):
        neighbour_rows(index.drop(columns="slice"), 1, "train.csv")


def test_gather_stacks_the_slices_as_channels_slice_major():
    images = np.arange(6)[:, None, None, None] * 10 + np.arange(3)[None, None, None, :]  # (6,1,1,3): row*10 + c
    images = np.broadcast_to(images, (6, 2, 2, 3)).astype(np.uint8)
    index = shuffled_index()
    table = neighbour_rows(index, 1, "x")
    out = gather(images, np.array([5, 2]), table)  # a_3 and a_1
    assert out.shape == (2, 2, 2, 9)
    assert out[0, 0, 0].tolist() == [10, 11, 12, 50, 51, 52, 40, 41, 42]  # a_2, a_3, a_4: each slice's 3 channels
    assert out[1, 0, 0].tolist() == [20, 21, 22, 20, 21, 22, 10, 11, 12]  # a_1 twice, then a_2
    np.testing.assert_array_equal(gather(images, np.array([3]), None), images[[3]])
