"""The label spec: kinds, channels, the bits of each class, and exclusive classes (argmax first,
masks resized so that they stay one class a pixel)."""
from __future__ import annotations

import numpy as np
import pytest

from segpipe.cache.images import resize_labels, resize_mask
from segpipe.cache.tiles import Layout
from segpipe.core.labels import Labels, argmax_first
from segpipe.network.contract import InferenceContract

BINARY, MULTI, EXCLUSIVE = Labels(), Labels(("a", "b", "c")), Labels(("a", "b"), exclusive=True)


def test_each_kind_says_its_channels_outputs_and_loss_mode():
    assert [(s.kind, s.channels, s.outputs, s.names, s.indices()) for s in (BINARY, MULTI, EXCLUSIVE)] == [
        ("binary", 1, 1, ("mask",), [None]),
        ("multilabel", 3, 3, ("a", "b", "c"), [0, 1, 2]),
        ("multiclass", 2, 3, ("a", "b"), [0, 1]),  # a background output before the classes
    ]
    with pytest.raises(ValueError, match="exclusive classes need class names"):
        Labels(exclusive=True)
    with pytest.raises(ValueError, match="distinct non-empty"):
        Labels(("a", "a"))
    with pytest.raises(ValueError, match="up to 8"):
        Labels(tuple("abcdefghi"))


def test_bits_split_pack_and_areas_agree():
    masks = np.random.default_rng(1).integers(0, 8, (4, 6, 5), dtype=np.uint8)  # 3 classes' bits
    bits = MULTI.split(masks)
    assert bits.shape == (4, 3, 6, 5) and bits.dtype == bool
    for k in range(3):
        np.testing.assert_array_equal(bits[:, k], MULTI.bit(masks, k))
        np.testing.assert_array_equal(bits[:, k], (masks & (1 << k)) > 0)
    np.testing.assert_array_equal(MULTI.pack(bits), masks)
    np.testing.assert_array_equal(MULTI.areas(masks), bits.sum((2, 3)))
    binary = np.array([[0, 255], [3, 0]], np.uint8)  # a binary mask as read: non-zero is foreground
    np.testing.assert_array_equal(BINARY.packed(binary), [[0, 1], [1, 0]])
    assert BINARY.split(binary[None]).shape == (1, 1, 2, 2) and BINARY.areas(binary[None]).tolist() == [[2]]
    assert BINARY.map_shape((6, 5)) == (6, 5) and MULTI.map_shape((6, 5)) == (3, 6, 5)


def test_the_spec_survives_the_layout_file_and_the_checkpoint_contract(tmp_path):
    for labels in (BINARY, MULTI, EXCLUSIVE):
        Layout("resize", (32, 32), labels=labels).write(tmp_path)
        assert Layout.read(tmp_path).labels == labels
        contract = InferenceContract(3, 0, 0.5, False, False, labels=labels)
        assert InferenceContract.from_dict(contract.to_dict()) == contract
        assert contract.softmax == labels.exclusive
    Layout("resize", (32, 32)).write(tmp_path)
    assert "classes" not in (tmp_path / "layout.json").read_text()  # a binary competition's file has none


def test_argmax_first_keeps_the_winner_and_lets_the_background_win():
    # pixels: class 0 wins; the background (255 - 150 = 105) beats every class; a tie of two classes
    probs = np.array([[200, 60, 100], [30, 50, 100], [10, 40, 20]], np.uint8)[:, None, :]  # (C=3, H=1, W=3)
    out = argmax_first(probs)[:, 0]
    np.testing.assert_array_equal(out, [[200, 0, 100], [0, 0, 0], [0, 0, 0]])
    assert (np.count_nonzero(argmax_first(np.random.default_rng(0).integers(0, 90, (5, 3, 8, 8), dtype=np.uint8)),
                             axis=1) <= 1).all()  # at most one class a pixel, whatever the maps


def test_resize_labels_is_the_binary_rule_per_class_and_keeps_exclusive_classes_apart():
    rng = np.random.default_rng(2)
    overlapping = (rng.random((50, 60)) < 0.4).astype(np.uint8) | ((rng.random((50, 60)) < 0.4).astype(np.uint8) << 1)
    per_class = sum((resize_mask((overlapping >> k) & 1 > 0, (20, 30)) << k for k in range(2)),
                    np.zeros((20, 30), np.uint8))
    np.testing.assert_array_equal(resize_labels(overlapping, (20, 30), Labels(("a", "b"))), per_class)
    exclusive = np.zeros((40, 40), np.uint8)
    exclusive[:, :20], exclusive[:, 20:] = 1, 2  # two classes meeting at a column: their weights tie there
    for size in [(17, 17), (13, 27)]:
        resized = resize_labels(exclusive, size, EXCLUSIVE)
        assert not np.any(resized & (resized - 1))  # one class a pixel
        assert np.count_nonzero(resized == 1) and np.count_nonzero(resized == 2)
