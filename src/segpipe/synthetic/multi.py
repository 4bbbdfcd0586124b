"""The multi-label kind of the synthetic competition: three lesion classes that overlap.

With it the multi-class path (a channel, a threshold and a minimum area per class,
per-class submission rows) runs offline as the binary one does; the kind "exclusive" is the
same with one class a pixel (`exclusive_bits`). The slices are the "brain" kind's:
`patient_slices` draws them from the same patient rng, so a seed gives the same heads,
distractors and lesions, and adds to them. The classes, in channel (bit) order:

    core   an enhancing centre in most lesions: very bright after contrast, darker before it
           and in FLAIR, mottled; the lesion's deepest part, with an outline that wobbles
    edema  the brain kind's FLAIR-bright lesion, core included: a halo around the core, so
           the classes overlap (as BraTS's whole tumour holds its core)
    spot   small dots (5-7 px across) bright in all three channels, on short runs of slices
           in some patients: rare (a sixth of the slices of 16-slice stacks) and small, so
           their best threshold and minimum area are not the others'. The brain kind's
           distractor spots, never bright in FLAIR, look much like them.

About half the slices show no class. `segpipe.synthetic.write` lays the files out.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import cv2
import numpy as np

from . import brain

CLASSES = ("core", "edema", "spot")
CORE, EDEMA, SPOT = (np.uint8(1 << k) for k in range(len(CLASSES)))

CORE_RATE = 0.8  # lesions with an enhancing core
CORE_DEPTH = (0.45, 0.65)  # the core: lesion pixels deeper than this share of its deepest one
CORE_WOBBLE = 0.3  # how far that share swings across the lesion: an irregular outline
MIN_CORE_PIXELS = 12  # a smaller core is left out: a lesion's thin ends have none
CORE_CHANNELS = np.float32([-0.3, -0.3, 1.0])  # enhancing after contrast, darker before it and in FLAIR
CORE_GAIN = (0.3, 0.5)  # of the full scale, on the post-contrast channel
MOTTLE = 0.4  # relative amplitude of the core's speckle, drawn anew on each slice
SPOT_PATIENTS = 0.5  # patients with spots at all
SPOT_EXTRA = 1.0  # mean number of spot runs beyond the first, per patient with spots
SPOT_RUN = (2, 4)  # slices a spot spans: it persists through neighbours, as a real one would
SPOT_RADIUS = (2.5, 3.5)  # px on a 100 px image, scaled with the smaller side (at least 1 px)
SPOT_GAIN = (0.4, 0.6)  # of the full scale, equal in all channels: white, unlike the distractors
TISSUE_LEVEL = 50  # channel mean (blurred) above which a pixel is head, not background
SPOT_MARGIN = 6  # px a spot's centre keeps from the head's outline (the bright scalp) and the lesion


@dataclasses.dataclass(frozen=True)
class _Core:
    depth: float
    wobble: np.ndarray  # (h, w) factor on `depth`, the same on every slice: one shape along the stack
    gain: np.ndarray  # per channel, in 8-bit units


@dataclasses.dataclass(frozen=True)
class _SpotRun:
    start: int
    stop: int
    radius: float
    gain: float


def patient_slices(rng: np.random.Generator, slices: int, h: int, w: int,
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (RGB uint8 image, (H, W) uint8 bit mask) for each slice of one patient, top to bottom.

    The brain kind's slices for the same rng (its lesion is the edema), with cores and spots added.
    """
    own = rng.spawn(1)[0]  # spawning draws nothing: the brain slices stay those of the brain kind
    core = _core_style(own, h, w)
    runs = _spot_runs(own, slices, h, w)
    centres: dict[int, tuple[float, float] | None] = {}  # run -> centre, placed on the run's first slice
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for z, (image, lesion) in enumerate(brain.patient_slices(rng, slices, h, w)):
        out, mask = image.astype(np.float32), lesion.astype(np.uint8) * EDEMA
        if core is not None and lesion.any():
            inner = _core_mask(lesion, core)
            out += _core_signal(own, inner, core)
            mask |= inner.astype(np.uint8) * CORE
        for k, run in enumerate(runs):
            if not run.start <= z < run.stop:
                continue
            if k not in centres:
                centres[k] = _spot_centre(own, image, lesion)
            if centres[k] is not None:
                d = np.hypot(yy - centres[k][0], xx - centres[k][1])
                out += np.clip(run.radius + 0.5 - d, 0, 1)[..., None] * run.gain  # antialiased disc
                mask |= (d <= run.radius).astype(np.uint8) * SPOT
        yield np.clip(np.rint(out), 0, 255).astype(np.uint8), mask


def _core_style(rng: np.random.Generator, h: int, w: int) -> _Core | None:
    """This patient's core (its depth, outline and contrast), or None for a lesion without one."""
    if rng.random() >= CORE_RATE:
        return None
    low = rng.standard_normal((4, 4)).astype(np.float32)
    wobble = np.clip(1 + CORE_WOBBLE * cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC), 0.5, 1.5)
    return _Core(rng.uniform(*CORE_DEPTH), wobble, np.float32(255 * rng.uniform(*CORE_GAIN)) * CORE_CHANNELS)


def _core_mask(lesion: np.ndarray, core: _Core) -> np.ndarray:
    """The lesion's pixels deeper than the core's share of its depth: it grows and shrinks with the lesion."""
    depth = cv2.distanceTransform(lesion.astype(np.uint8), cv2.DIST_L2, 5)
    inner = lesion & (depth > core.depth * float(depth.max()) * core.wobble)
    return inner if np.count_nonzero(inner) >= MIN_CORE_PIXELS else np.zeros_like(inner)


def _core_signal(rng: np.random.Generator, inner: np.ndarray, core: _Core) -> np.ndarray:
    """(h, w, 3) float32 brightness change of the core: soft-edged and speckled."""
    h, w = inner.shape
    speckle = rng.standard_normal((h // 3 + 1, w // 3 + 1)).astype(np.float32)  # grains ~3 px across
    mottle = 1 + MOTTLE * cv2.resize(speckle, (w, h), interpolation=cv2.INTER_LINEAR)
    soft = cv2.GaussianBlur(inner.astype(np.float32), (0, 0), 0.8)
    return (soft * mottle)[..., None] * core.gain


def _spot_runs(rng: np.random.Generator, slices: int, h: int, w: int) -> list[_SpotRun]:
    """This patient's spots: which slices each spans, its radius in px and its brightness."""
    if rng.random() >= SPOT_PATIENTS:
        return []
    runs = []
    for _ in range(1 + rng.poisson(SPOT_EXTRA)):
        length = min(int(rng.integers(SPOT_RUN[0], SPOT_RUN[1] + 1)), slices)
        start = int(rng.integers(0, slices - length + 1))
        radius = max(1.0, rng.uniform(*SPOT_RADIUS) * min(h, w) / 100)
        runs.append(_SpotRun(start, start + length, radius, 255 * rng.uniform(*SPOT_GAIN)))
    return runs


def _spot_centre(rng: np.random.Generator, image: np.ndarray, lesion: np.ndarray) -> tuple[float, float] | None:
    """(y, x) inside the head, clear of its outline and of the lesion; None when there is no room."""
    head = cv2.blur(image.mean(axis=2, dtype=np.float32), (5, 5)) > TISSUE_LEVEL
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * SPOT_MARGIN + 1,) * 2)
    room = cv2.erode(head.astype(np.uint8), disc) & ~cv2.dilate(lesion.astype(np.uint8), disc).astype(bool)
    candidates = np.flatnonzero(room)
    if not candidates.size:
        return None
    y, x = divmod(int(candidates[rng.integers(candidates.size)]), image.shape[1])
    dy, dx = rng.uniform(-0.5, 0.5, 2)  # off the pixel grid, so the discs differ in shape
    return y + float(dy), x + float(dx)


def exclusive_bits(mask: np.ndarray) -> np.ndarray:
    """One class a pixel: a spot over a core over an edema (the one drawn last, on top, wins)."""
    return np.where(mask & SPOT, SPOT, np.where(mask & CORE, CORE, mask & EDEMA)).astype(np.uint8)
