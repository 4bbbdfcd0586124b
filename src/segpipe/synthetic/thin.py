"""Synthetic thin structures: a competition that cannot be solved at a quarter of the resolution.

For developing large-image (tile-mode) segmentation. Each image is a textured, unevenly lit
background crossed by smooth curves 2-4 px wide (mostly near 2), like cracks, vessels or
wires, all darker or all lighter than the background. Targets carry a bright hairline
between dark flanks in their middle 2 px and a colour of their own (HUE: a shift between
channels at the same brightness, which a model learns fast); distractors have the same
width and mean brightness but a flat profile, or the inverted pattern (dark core, bright
flanks). The pattern has zero mean across the curve, so after a 4x area downscale only
a diluted colour cue is left to tell targets from distractors (about a tenth of the
pattern's contrast survives, its sign set by where the curve falls in the 4 px grid); and
the masks resized 4x down and back up score a Dice of about 0.4 with the originals, so a
model trained at a quarter of the resolution cannot draw them. A model that sees
native-resolution tiles can.

Widths are in pixels, whatever the image size, since what matters is their ratio to the
downscale factor; the number and length of the curves grow with the image. Slices of one
patient share the background and the curves, which drift a little from slice to slice;
about EMPTY_RATE of the slices show only the distractors. `patient_slices` has the contract
of `brain.patient_slices`.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import cv2
import numpy as np

REFERENCE = (1280, 1918)  # the size the counts and lengths are tuned for (Carvana's)
WIDTH = (2.0, 4.0)  # mask width in px at native size: never scaled with the image
WIDTH_SKEW = 3.0  # widths are WIDTH[0] + span * u**WIDTH_SKEW: mostly hairlines, a few 4 px
PATTERN = 2.0  # px: the core and flanks span the middle 2 px; wider, 4x averaging keeps more
EMPTY_RATE = 0.15  # slices whose targets are left out: empty masks, distractors only
STEP = 0.5  # px between spline samples: the distance field needs them denser than pixels
PAD = 6  # px of frame around the distance field, so curves leaving the image end cleanly
TEXTURE_CELL = 24  # px per background-texture grid cell: coarse enough to survive a downscale
DRIFT = 0.006  # waypoint speed per slice, as a share of the image's smaller side
HUE = 0.6  # targets' colour differs from the distractors' by up to this share of the ink, per channel
TARGET_HUE = np.float32([1.0, -0.5, -0.5])  # the same for every patient (redder): a cue to learn, not to infer


def patient_slices(rng: np.random.Generator, slices: int, h: int, w: int,
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (RGB uint8 image, bool mask) for each slice of one patient; same rng, same slices."""
    count = 1 + 3 * _scale(h, w)
    # 1 + Poisson: every patient has a target, so empty masks come from EMPTY_RATE alone
    targets = [_curve(rng, h, w, 1) for _ in range(1 + rng.poisson(count))]
    distractors = [_curve(rng, h, w, int(rng.choice([0, -1])))
                   for _ in range(1 + rng.poisson(count))]
    shade, base, tint, keys = _background(rng, h, w)
    mean = np.float32(rng.choice([-1, 1]) * rng.uniform(0.05, 0.12))  # dark cracks or bright wires
    fine = np.float32(rng.uniform(0.2, 0.35))
    ink = 255 * (1 + 0.15 * rng.standard_normal(3))  # the distractors' colour
    target_ink = ink * (1 + HUE * TARGET_HUE)
    noise = np.float32(rng.uniform(0.015, 0.04) * np.sqrt(12))  # uniform noise of that deviation
    for z in range(slices):
        shown = [] if rng.random() < EMPTY_RATE else targets
        target_line, mask = render(h, w, [c.at(z) for c in shown], mean, fine)
        line, _ = render(h, w, [c.at(z) for c in distractors], mean, fine)
        f = z / max(slices - 1, 1)
        texture = _upsample((1 - f) * keys[0] + f * keys[1], h, w)
        # uniform, not normal: a third of the cost at this size. In the ink's colour, so
        # that curves and noise take one pass per channel.
        line += noise * (rng.random((h, w), dtype=np.float32) - 0.5)
        yield _compose(shade, base, tint, texture, [(line, ink), (target_line, target_ink)]), mask


@dataclasses.dataclass(frozen=True)
class _Curve:
    """Waypoints of a Catmull-Rom spline that drift at a constant velocity over the slices."""

    points: np.ndarray
    velocity: np.ndarray
    width: float
    polarity: int  # +1 target, 0 flat distractor, -1 inverted distractor

    def at(self, z: int) -> tuple[np.ndarray, float, int]:
        return _spline(self.points + z * self.velocity), self.width, self.polarity


def _scale(h: int, w: int) -> float:
    """Linear size relative to REFERENCE: curves get longer and more numerous with it."""
    return float(np.sqrt(h * w / (REFERENCE[0] * REFERENCE[1])))


def _curve(rng: np.random.Generator, h: int, w: int, polarity: int) -> _Curve:
    """A random walk of waypoints with gentle turns, starting in the frame; it may leave it,
    as roads and cracks do (folding it back in makes hairpins)."""
    side = min(h, w)
    count = 3 + rng.poisson(2 * _scale(h, w))
    point, heading = rng.uniform([0, 0], [w - 1, h - 1]), rng.uniform(0, 2 * np.pi)
    points = [point]
    for _ in range(count - 1):
        heading += rng.normal(0, 0.7)
        step = rng.uniform(0.12, 0.3) * side
        point = point + step * np.array([np.cos(heading), np.sin(heading)])
        points.append(point)
    velocity = rng.normal(0, DRIFT * side, (count, 2))
    return _Curve(np.array(points), velocity, _width(rng), polarity)


def _width(rng: np.random.Generator) -> float:
    # a 4 px mask survives a 4x resize with a Dice near 0.9, a 2 px one not at all
    return WIDTH[0] + (WIDTH[1] - WIDTH[0]) * float(rng.random()) ** WIDTH_SKEW


def _spline(points: np.ndarray) -> np.ndarray:
    """Samples (n, 2) of (x, y), at most about STEP apart, of the Catmull-Rom spline through
    the points."""
    ext = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    parts = []
    for p0, p1, p2, p3 in zip(ext, ext[1:], ext[2:], ext[3:]):
        n = max(int(1.5 * np.hypot(*(p2 - p1)) / STEP), 2)  # the spline is longer than its chord
        t = np.linspace(0, 1, n, endpoint=False)[:, None]
        parts.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                            + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3))
    return np.vstack([*parts, points[-1:]])


def render(h: int, w: int, curves: list[tuple[np.ndarray, float, int]], mean: float,
           fine: float) -> tuple[np.ndarray, np.ndarray]:
    """Brightness change (h, w) float32 and target mask of curves given as (samples, width,
    polarity): +1 target, 0 flat distractor, -1 inverted distractor.

    Profiles are functions of the exact distance to the curve, so widths are sub-pixel
    accurate (OpenCV's thick lines come in steps of 2 px and 1.4 px too wide). The flanks
    are scaled per curve so that the pattern sums to zero: only the part that falls on
    different sides of a 4 px cell boundary survives an area average.
    """
    out, mask = np.zeros((h, w), np.float32), np.zeros((h, w), bool)
    if not curves:
        return out, mask
    d, c, ys, xs = _distances(h, w, [s for s, _, _ in curves])
    half = np.float32([width / 2 for _, width, _ in curves])[c]
    polarity = np.float32([p for _, _, p in curves])[c]
    cover = _box(d, half)  # the curve's width, with its edges
    inner = np.minimum(half, np.float32(PATTERN / 2))
    core, band = _box(d, inner / 2), _box(d, inner)
    ratio = np.bincount(c, core, len(curves)) / np.maximum(np.bincount(c, band, len(curves)), 1e-6)
    profile = core - ratio.astype(np.float32)[c] * band
    out[ys, xs] = mean * cover + fine * polarity * profile
    mask[ys, xs] = (d <= half) & (polarity > 0)
    return out, mask


def _box(d: np.ndarray, half: np.ndarray) -> np.ndarray:
    """1 within `half` of the curve, 0 beyond, with a 1 px ramp: antialiased edges."""
    return np.clip(half + 0.5 - d, 0, 1)


def _distances(h: int, w: int, paths: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Distance to the nearest curve and its index, for the pixels (ys, xs) near any curve.

    A distance transform with labels finds each pixel's nearest sampled curve pixel; the
    distance is then taken exactly, across that sample's tangent (and to the end point
    past either end of the curve).
    """
    samples = np.vstack(paths) + PAD
    tangents = np.vstack([np.gradient(p, axis=0) for p in paths])
    tangents /= np.maximum(np.hypot(tangents[:, 0], tangents[:, 1]), 1e-9)[:, None]
    owner = np.repeat(np.arange(len(paths)), [len(p) for p in paths])
    arcs = [np.concatenate([[0], np.cumsum(np.hypot(*np.diff(p, axis=0).T))]) for p in paths]
    arc, length = np.concatenate(arcs), np.concatenate([np.full(len(a), a[-1]) for a in arcs])
    hp, wp = h + 2 * PAD, w + 2 * PAD
    ix, iy = np.rint(samples).astype(np.int64).T
    keep = np.flatnonzero((ix >= 0) & (ix < wp) & (iy >= 0) & (iy < hp))
    # raster order, as OpenCV numbers the zero pixels of DIST_LABEL_PIXEL
    flat, first = np.unique(iy[keep] * wp + ix[keep], return_index=True)
    if not flat.size:  # every curve has drifted out of the frame
        return np.zeros(0, np.float32), np.zeros(0, np.int64), *np.zeros((2, 0), np.int64)
    seeds = np.ones((hp, wp), np.uint8)
    seeds.flat[flat] = 0
    near, labels = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5,
                                                   labelType=cv2.DIST_LABEL_PIXEL)
    reach = WIDTH[1] / 2 + 2
    ys, xs = np.nonzero(near[PAD:-PAD, PAD:-PAD] < reach)
    s = keep[first[labels[ys + PAD, xs + PAD] - 1]]
    dx, dy = xs + PAD - samples[s, 0], ys + PAD - samples[s, 1]
    along = arc[s] + dx * tangents[s, 0] + dy * tangents[s, 1]
    beyond = np.maximum(-along, along - length[s]).clip(0)
    d = np.hypot(dx * tangents[s, 1] - dy * tangents[s, 0], beyond).astype(np.float32)
    return d, owner[s], ys, xs


def _background(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, ...]:
    """Per patient: a smooth uneven lighting (0..255), a base colour, and the tint and two
    keyframes of a texture that all channels share (one upsampling per slice, not three)."""
    shade = 255 * (1 + 0.15 * _upsample(rng.standard_normal((3, 3)), h, w))
    base = rng.uniform(0.35, 0.6) + 0.05 * rng.standard_normal(3)
    grid = (max(h // TEXTURE_CELL, 2), max(w // TEXTURE_CELL, 2))
    keys = 0.04 * rng.standard_normal((2, *grid)).astype(np.float32)
    tint = 1 + 0.2 * rng.standard_normal(3)
    return shade, base.astype(np.float32), tint.astype(np.float32), keys


def _upsample(low: np.ndarray, h: int, w: int) -> np.ndarray:
    return cv2.resize(low.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


def _compose(shade: np.ndarray, base: np.ndarray, tint: np.ndarray, texture: np.ndarray,
             lines: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(base + texture * tint) * shade + sum of line * ink, rounded and saturated to RGB uint8.

    Plane by plane: numpy's broadcasting over a trailing axis of 3 is several times slower.
    """
    planes = []
    for c in range(3):
        lit = (texture * tint[c] + base[c]) * shade
        for line, ink in lines[:-1]:
            lit = cv2.addWeighted(lit, 1, line, float(ink[c]), 0)
        line, ink = lines[-1]
        planes.append(cv2.addWeighted(lit, 1, line, float(ink[c]), 0, dtype=cv2.CV_8U))
    return cv2.merge(planes)
