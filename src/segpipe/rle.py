"""Run-length encoding of binary masks, in the form Kaggle segmentation competitions use.

A mask is flattened row-major ("C", e.g. Carvana) or column-major ("F", most others) and
written as space-separated `start length` pairs, one per run of foreground pixels, with
1-indexed, strictly ascending starts. The output is byte-identical to the usual numpy
encoder; the scans, the text formatting and the parsing run in numba, so a 1280x1918
mask costs about as much as reading it once. `decode` and `validate` reject malformed
strings with a ValueError that quotes the offending part.
"""
from __future__ import annotations

from typing import Literal

import numba
import numpy as np

Order = Literal["C", "F"]

_ONES = np.uint64(0x0101010101010101)
_HIGHS = np.uint64(0x8080808080808080)
_ZERO = np.uint64(0)
_POW10 = 10 ** np.arange(19, dtype=np.int64)
_SATURATE = 10**17  # parsed values stop growing here: larger than any mask, no overflow


@numba.njit(cache=True)
def _scan_bytes(flat, lo, hi, out, count, state):
    # Branch-free: a random mask would mispredict half the branches.
    for k in range(lo, hi):
        bit = np.int64(flat[k] != 0)
        out[count] = k
        count += bit ^ state
        state = bit
    return count, state


@numba.njit(cache=True)
def _row_major_transitions(flat, words, head):
    """Indices k in [0, n] where pixel k's flag differs from pixel k-1's (outside is 0).

    `words` is the 8-byte-aligned middle of `flat`, starting at byte `head`. A word with
    no foreground byte (outside a run) or no background byte (inside one) holds no
    transition, so a smooth mask is skipped 8 pixels at a time.
    """
    n = flat.size
    out = np.empty(n + 1, np.int64)  # the worst case; pages never written cost nothing
    count, state = _scan_bytes(flat, 0, head, out, 0, 0)
    for w in range(words.size):
        v = words[w]
        if v == _ZERO if state == 0 else ((v - _ONES) & ~v & _HIGHS) == _ZERO:
            continue
        count, state = _scan_bytes(flat, head + 8 * w, head + 8 * w + 8, out, count, state)
    count, state = _scan_bytes(flat, head + 8 * words.size, n, out, count, state)
    out[count] = n
    return out[: count + state]


@numba.njit(cache=True)
def _column_major_transitions(a):
    """The same for the column-major flattening of the C-contiguous (rows, cols) `a`.

    Transitions are found by comparing each row with the one above (the top row with the
    bottom of the previous column), then bucketed by column so they come out in order.
    """
    rows, cols = a.shape
    above_top = np.zeros(cols, np.uint8)
    above_top[1:] = a[rows - 1, : cols - 1]
    counts = np.zeros(cols + 1, np.int64)
    for r in range(rows):
        row, above = a[r], a[r - 1] if r else above_top
        for c in range(cols):
            counts[c + 1] += (row[c] != 0) != (above[c] != 0)
    nxt = np.cumsum(counts)
    last = np.int64(a[rows - 1, cols - 1] != 0)
    out = np.empty(nxt[cols] + 1, np.int64)
    out[nxt[cols]] = rows * cols
    diff = np.zeros((cols + 7) // 8 * 8, np.uint8)  # padded to read as whole words
    words = diff.view(np.uint64)
    for r in range(rows):
        row, above = a[r], a[r - 1] if r else above_top
        for c in range(cols):
            diff[c] = (row[c] != 0) != (above[c] != 0)
        for w in range(words.size):
            if words[w] != _ZERO:
                for c in range(8 * w, min(8 * w + 8, cols)):
                    if diff[c]:
                        out[nxt[c]] = c * rows + r
                        nxt[c] += 1
    return out[: out.size - 1 + last]


@numba.njit(cache=True)
def _format_runs(transitions):
    """ASCII `start length start length ...` for alternating run starts and ends."""
    width = 1
    while transitions[-1] >= _POW10[width]:
        width += 1
    buf = np.empty(transitions.size * (width + 1), np.uint8)
    pos = 0
    for i in range(transitions.size):
        value = transitions[i] + 1 if i % 2 == 0 else transitions[i] - transitions[i - 1]
        digits = 1
        while value >= _POW10[digits]:
            digits += 1
        pos += digits
        for p in range(pos - 1, pos - digits - 1, -1):
            buf[p] = 48 + value % 10
            value //= 10
        buf[pos] = 32
        pos += 1
    return buf[: pos - 1]


def encode(mask: np.ndarray, order: Order = "C") -> str:
    """RLE of the non-zero pixels of the 2-D `mask`, flattened in `order`; "" if none."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    if order not in ("C", "F"):
        raise ValueError(f"order must be 'C' or 'F', got {order!r}")
    if mask.size == 0:
        return ""
    flags = mask if mask.dtype.itemsize == 1 and mask.dtype.kind in "biu" else mask != 0
    # Row-major runs of `target` are wanted; read it in whichever layout it already has.
    target = flags.T if order == "F" else flags
    if not (target.flags.c_contiguous or target.flags.f_contiguous):
        target = np.ascontiguousarray(target)
    if target.flags.c_contiguous:
        flat = target.view(np.uint8).reshape(-1)
        head = min(-flat.ctypes.data % 8, flat.size)
        words = flat[head : head + (flat.size - head) // 8 * 8].view(np.uint64)
        transitions = _row_major_transitions(flat, words, head)
    else:
        transitions = _column_major_transitions(target.T.view(np.uint8))
    return str(_format_runs(transitions), "ascii") if transitions.size else ""


@numba.njit(cache=True)
def _is_space(ch):
    return ch == 32 or 9 <= ch <= 13


@numba.njit(cache=True)
def _tokenize(text):
    """The integers in ASCII `text`, and (-1, -1), or the span of its first bad token."""
    values = np.empty(text.size // 2 + 1, np.int64)
    count, i, n = 0, 0, text.size
    while i < n:
        if _is_space(text[i]):
            i += 1
            continue
        lo, sign = i, 1
        if text[i] == 43 or text[i] == 45:  # '+' or '-': int() accepts them, so do we
            sign = -1 if text[i] == 45 else 1
            i += 1
        value, digits = 0, 0
        while i < n and 48 <= text[i] <= 57:
            if value < _SATURATE:
                value = value * 10 + (text[i] - 48)
            i += 1
            digits += 1
        if digits == 0 or (i < n and not _is_space(text[i])):
            while i < n and not _is_space(text[i]):
                i += 1
            return values[:0], lo, i
        values[count] = sign * value
        count += 1
    return values[:count], -1, -1


@numba.njit(cache=True)
def _first_bad_run(values, n_pixels):
    """(problem code, run index) of the first invalid run, or (0, -1); see `_PROBLEMS`."""
    prev_start, prev_end = 0, 0  # 1-indexed, inclusive
    for i in range(0, values.size, 2):
        start, length = values[i], values[i + 1]
        if start < 1:
            return 1, i // 2
        if length < 1:
            return 2, i // 2
        if start <= prev_start:
            return 3, i // 2
        if start <= prev_end:
            return 4, i // 2
        if start - 1 > n_pixels - length:  # start + length - 1 > n_pixels, without overflow
            return 5, i // 2
        prev_start, prev_end = start, start + length - 1
    return 0, -1


_PROBLEMS = {
    1: "start {start} is below 1",
    2: "length {length} is below 1",
    3: "start {start} is not after the previous run's start {prev_start}",
    4: "it overlaps the previous run '{prev_start} {prev_length}'",
    5: "it runs past the last pixel {n_pixels}",
}


def _parse(rle: str, n_pixels: int) -> np.ndarray:
    """The start/length values of `rle`, checked against a mask of `n_pixels` pixels."""
    # "replace" turns each non-ASCII character into one '?', so offsets still match `rle`.
    text = np.frombuffer(rle.encode("ascii", "replace"), np.uint8)
    values, lo, hi = _tokenize(text)
    if lo >= 0:
        raise ValueError(f"RLE token {rle[lo:hi]!r} at character {lo} is not an integer")
    if values.size % 2:
        raise ValueError(f"RLE has an odd number of values ({values.size}); it must be start/length pairs")
    problem, run = _first_bad_run(values, n_pixels)
    if problem:
        # Quote the tokens as written: huge values were saturated while parsing.
        tokens = rle.split()
        start, length = tokens[2 * run], tokens[2 * run + 1]
        prev_start, prev_length = tokens[2 * run - 2 : 2 * run] or ("", "")
        detail = _PROBLEMS[problem].format(
            start=start, length=length, prev_start=prev_start, prev_length=prev_length, n_pixels=n_pixels
        )
        raise ValueError(f"RLE run {run + 1} '{start} {length}': {detail}")
    return values


@numba.njit(cache=True)
def _fill_row_major(values, flat):
    for i in range(0, values.size, 2):
        flat[values[i] - 1 : values[i] - 1 + values[i + 1]] = 1


@numba.njit(cache=True)
def _fill_column_major(values, a):
    """Paint column-major runs into the C-contiguous `a` without writing down columns.

    Each run only flips the pixel where it starts (or enters a column) and the one after
    it ends; a running XOR down the rows then fills it in, one vectorised row at a time.
    """
    rows, cols = a.shape
    for i in range(0, values.size, 2):
        lo = values[i] - 1
        hi = lo + values[i + 1]
        a[lo % rows, lo // rows] ^= 1
        for c in range(lo // rows + 1, (hi + rows - 1) // rows):
            a[0, c] ^= 1
        if hi % rows:
            a[hi % rows, hi // rows] ^= 1
    for r in range(1, rows):
        for c in range(cols):
            a[r, c] ^= a[r - 1, c]


def decode(rle: str, shape: tuple[int, int], order: Order = "C") -> np.ndarray:
    """The bool mask of `shape` that `rle` describes; ValueError if `rle` is malformed."""
    if order not in ("C", "F"):
        raise ValueError(f"order must be 'C' or 'F', got {order!r}")
    height, width = shape
    values = _parse(rle, height * width)
    mask = np.zeros((height, width), np.bool_)
    if order == "C":
        _fill_row_major(values, mask.view(np.uint8).reshape(-1))
    else:
        _fill_column_major(values, mask.view(np.uint8))
    return mask


def validate(rle: str, n_pixels: int) -> None:
    """Raise ValueError if `rle` is not a well-formed RLE of a mask with `n_pixels` pixels."""
    _parse(rle, n_pixels)
