"""Tests for segpipe.rle: worked examples, agreement with the usual numpy codec, and rejection
of malformed strings."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from segpipe import rle

ORDERS = ["C", "F"]
SHAPES = [(1, 1), (1, 13), (13, 1), (7, 13), (101, 37), (64, 64), (3, 200), (130, 203)]


def numpy_encode(mask: np.ndarray, order: str) -> str:
    """The encoder found in most Kaggle kernels: the reference for byte-identical output."""
    pixels = (mask.T if order == "F" else mask).flatten()
    pixels = np.concatenate([[0], pixels, [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


def numpy_decode(text: str, shape: tuple[int, int], order: str) -> np.ndarray:
    """The decoder found in most Kaggle kernels."""
    s = text.split()
    starts, lengths = (np.asarray(x, dtype=int) for x in (s[0::2], s[1::2]))
    starts -= 1
    img = np.zeros(shape[0] * shape[1], dtype=bool)
    for lo, hi in zip(starts, starts + lengths):
        img[lo:hi] = 1
    return img.reshape(shape) if order == "C" else img.reshape(shape[::-1]).T


def canonical(text: str) -> str:
    """`text` rewritten as the encoder would: runs that touch merged into one."""
    values = [int(token) for token in text.split()]
    runs: list[list[int]] = []
    for start, length in zip(values[0::2], values[1::2]):
        if runs and sum(runs[-1]) == start:
            runs[-1][1] += length
        else:
            runs.append([start, length])
    return " ".join(f"{start} {length}" for start, length in runs)


def random_mask(shape: tuple[int, int], kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "blob":  # long runs, so most of the mask is skipped in whole blocks
        y, x = np.ogrid[: shape[0], : shape[1]]
        return ((y - shape[0] / 2) / (0.4 * shape[0])) ** 2 + ((x - shape[1] / 3) / (0.5 * shape[1])) ** 2 < 1
    return rng.random(shape) < {"sparse": 0.03, "noisy": 0.5, "dense": 0.97}[kind]


@pytest.mark.parametrize("order, expected", [("C", "7 2 11 2"), ("F", "10 2 14 2")])
def test_worked_example(order: str, expected: str) -> None:
    mask = np.zeros((4, 4), bool)
    mask[1, 2] = mask[1, 3] = mask[2, 2] = mask[2, 3] = True
    assert rle.encode(mask, order) == expected
    np.testing.assert_array_equal(rle.decode(expected, (4, 4), order), mask)


@pytest.mark.parametrize("order", ORDERS)
def test_full_frame_carvana(order: str) -> None:
    mask = np.ones((1280, 1918), bool)
    assert rle.encode(mask, order) == "1 2455040"
    assert rle.decode("1 2455040", mask.shape, order).all()


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("kind", ["sparse", "noisy", "dense", "blob"])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_numpy_and_round_trips(shape: tuple[int, int], kind: str, order: str) -> None:
    mask = random_mask(shape, kind)
    text = rle.encode(mask, order)
    assert text == numpy_encode(mask, order)
    decoded = rle.decode(text, shape, order)
    assert decoded.dtype == np.bool_ and decoded.flags.c_contiguous
    np.testing.assert_array_equal(decoded, mask)
    np.testing.assert_array_equal(numpy_decode(text, shape, order), mask)
    rle.validate(text, mask.size)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(
    "convert",
    [
        lambda m: m.astype(np.uint8) * 255,
        lambda m: m.astype(np.int32) * -7,
        lambda m: np.asfortranarray(m),  # read in place by the other scan
        lambda m: np.pad(m, 2)[2:-2, 2:-2],  # neither C- nor F-contiguous
        lambda m: np.concatenate([np.zeros(3, bool), m.ravel()])[3:].reshape(m.shape),  # unaligned
    ],
    ids=["uint8", "int32", "fortran", "strided", "unaligned"],
)
def test_dtypes_and_layouts(convert, order: str) -> None:
    mask = random_mask((101, 37), "blob") ^ random_mask((101, 37), "sparse")
    assert rle.encode(convert(mask), order) == numpy_encode(mask, order)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("shape", SHAPES)
def test_empty_and_full(shape: tuple[int, int], order: str) -> None:
    n = shape[0] * shape[1]
    assert rle.encode(np.zeros(shape, bool), order) == ""
    assert rle.encode(np.ones(shape, bool), order) == f"1 {n}"
    for blank in ["", "   ", " \t\n "]:
        assert not rle.decode(blank, shape, order).any()
    assert rle.decode(f"1 {n}", shape, order).all()


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("row, col", [(0, 0), (0, 6), (4, 0), (4, 6)])
def test_single_pixel_in_each_corner(row: int, col: int, order: str) -> None:
    mask = np.zeros((5, 7), bool)
    mask[row, col] = True
    pixel = row * 7 + col + 1 if order == "C" else col * 5 + row + 1
    assert rle.encode(mask, order) == f"{pixel} 1"
    np.testing.assert_array_equal(rle.decode(f"{pixel} 1", (5, 7), order), mask)


@pytest.mark.parametrize("order", ORDERS)
def test_touching_runs_are_accepted_and_merge_on_reencode(order: str) -> None:
    mask = rle.decode("1 2 3 2 10 1", (4, 4), order)
    assert rle.encode(mask, order) == "1 4 10 1"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("1 2 3", "odd number of values"),
        ("1 x", "token 'x' at character 2"),
        ("1 2.5", "token '2.5' at character 2"),
        ("3 2 7 1e2", "token '1e2' at character 6"),
        ("-3 2", "token '-3' at character 0"),
        ("1 2 9 é", "token 'é' at character 6"),
        ("0 2", "run 1 '0 2': start 0 is below 1"),
        ("3 2 8 0", "run 2 '8 0': length 0 is below 1"),
        ("5 1 3 1", "run 2 '3 1': start 3 is not after the previous run's start 5"),
        ("5 1 5 1", "start 5 is not after the previous run's start 5"),
        ("1 3 2 1", "run 2 '2 1': it overlaps the previous run '1 3'"),
        ("15 3", "run 1 '15 3': it runs past the end of the mask \\(16 pixels\\)"),
        ("1 99999999999999999999999", "it runs past the end"),
        ("+1 2", "token '\\+1' at character 0"),
        ("1,2", "token '1,2' at character 0"),
        ("1 2\x00", "token " + re.escape(repr("2\x00")) + " at character 2"),  # quoted escaped
        ("\u0661 2", "token '\u0661' at character 0"),  # an Arabic-Indic digit: str.isdigit() says yes
        ("1\xa02", "token " + re.escape(repr("1\xa02")) + " at character 0"),  # str.split() says space
    ],
)
def test_malformed_rle_raises(text: str, problem: str) -> None:
    for order in ORDERS:
        with pytest.raises(ValueError, match=problem):
            rle.decode(text, (4, 4), order)
    with pytest.raises(ValueError, match=problem):
        rle.validate(text, 16)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="2-D"):
        rle.encode(np.zeros(5, bool))
    with pytest.raises(ValueError, match="order"):
        rle.encode(np.zeros((2, 2), bool), "A")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="order"):
        rle.decode("", (2, 2), "A")  # type: ignore[arg-type]


@settings(deadline=None, max_examples=300)  # no deadline: the first call may compile
@given(
    mask=hnp.arrays(np.bool_, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=70)),
    order=st.sampled_from(ORDERS),
)
def test_property_round_trip(mask: np.ndarray, order: str) -> None:
    text = rle.encode(mask, order)
    assert text == numpy_encode(mask, order)
    np.testing.assert_array_equal(rle.decode(text, mask.shape, order), mask)


SHAPE = (6, 7)
rle_like = st.lists(st.integers(-2, 45), max_size=14).map(lambda values: " ".join(map(str, values)))
junk = st.text(alphabet="0123456789   \t\n-+.xé", max_size=30)


@settings(deadline=None, max_examples=500)
@given(text=st.one_of(rle_like, junk, st.text(max_size=30)), order=st.sampled_from(ORDERS))
def test_property_decode_accepts_only_what_it_can_reencode(text: str, order: str) -> None:
    try:
        mask = rle.decode(text, SHAPE, order)
    except ValueError:
        with pytest.raises(ValueError):
            rle.validate(text, SHAPE[0] * SHAPE[1])
        return
    rle.validate(text, SHAPE[0] * SHAPE[1])
    assert mask.shape == SHAPE and mask.dtype == np.bool_
    assert rle.encode(mask, order) == canonical(text)
    np.testing.assert_array_equal(mask, numpy_decode(text, SHAPE, order))
