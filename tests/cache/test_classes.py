"""Exclusive classes: the argmax before the rules, and masks resized so that they stay one class a pixel."""
from __future__ import annotations

import numpy as np

from segpipe.cache.classes import argmax_first
from segpipe.cache.images import resize_bits, resize_mask


def test_argmax_first_keeps_the_winner_and_lets_the_background_win():
    # pixels: class 0 wins; the background (255 - 150 = 105) beats every class; a tie of two classes
    probs = np.array([[200, 60, 100], [30, 50, 100], [10, 40, 20]], np.uint8)[:, None, :]  # (C=3, H=1, W=3)
    out = argmax_first(probs)[:, 0]
    np.testing.assert_array_equal(out, [[200, 0, 100], [0, 0, 0], [0, 0, 0]])
    assert (np.count_nonzero(argmax_first(np.random.default_rng(0).integers(0, 90, (5, 3, 8, 8), dtype=np.uint8)),
                             axis=1) <= 1).all()  # at most one class a pixel, whatever the maps


def test_resize_bits_is_the_binary_rule_per_class_and_keeps_exclusive_classes_apart():
    rng = np.random.default_rng(2)
    overlapping = (rng.random((50, 60)) < 0.4).astype(np.uint8) | ((rng.random((50, 60)) < 0.4).astype(np.uint8) << 1)
    per_class = sum((resize_mask((overlapping >> k) & 1 > 0, (20, 30)) << k for k in range(2)),
                    np.zeros((20, 30), np.uint8))
    np.testing.assert_array_equal(resize_bits(overlapping, (20, 30), 2), per_class)
    exclusive = np.zeros((40, 40), np.uint8)
    exclusive[:, :20], exclusive[:, 20:] = 1, 2  # two classes meeting at a column: their weights tie there
    for size in [(17, 17), (13, 27)]:
        resized = resize_bits(exclusive, size, 2, exclusive=True)
        assert not np.any(resized & (resized - 1))  # one class a pixel
        assert np.count_nonzero(resized == 1) and np.count_nonzero(resized == 2)
