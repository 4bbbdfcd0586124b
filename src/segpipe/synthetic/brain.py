"""The "brain" kind of the synthetic competition: brain-MRI-like lesion slices, the embedded default.

Each patient is a stack of slices through a head-like ellipse whose size and texture
drift slowly along the stack. Most patients have one lesion on a contiguous run of slices
that grows and shrinks smoothly; it is bright mostly in FLAIR with a per-patient contrast
that is sometimes subtle. Bright spots, vessel-like lines, a bias field and noise keep a
threshold on one channel from solving it. `patient_slices` draws one patient from its own
rng, so the same rng gives the same slices (given the same numpy and OpenCV builds).
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import cv2
import numpy as np

MIN_LESION_PIXELS = 30  # smaller lesions would be specks at training size: dropped from mask and image alike
NO_LESION_RATE = 0.15  # with runs over ~60% of a stack this leaves about half the slices empty
LESION_RUN = (0.4, 0.8)  # fraction of the stack a lesion spans
MIN_RUN = 8  # slices: shorter runs would make the area jump by over half its peak per slice
TEXTURE_GRIDS = (4, 9)  # low-resolution noise grids: coarse anatomy, finer "gyri"
SLICES_PER_KEY = 4  # texture keyframe spacing: anatomy changes over a few slices, not one
# Per-channel (pre-contrast, FLAIR, post-contrast) intensity offsets of the anatomy; float32
# so that the per-slice arithmetic stays in float32, which halves generation time.
TISSUE = np.float32([0.42, 0.36, 0.44])
SKULL = np.float32([0.35, 0.1, 0.3])  # fatty scalp: bright before and after contrast
WHITE_MATTER = np.float32([0.08, -0.05, 0.05])
CSF = np.float32([0.2, 0.22, 0.25])  # dark everywhere: FLAIR suppresses fluid
SPOT_CHANNELS = np.float32([[0, 0, 1], [1, 0, 0], [1, 0, 1]])  # never FLAIR, unlike a lesion


@dataclasses.dataclass(frozen=True)
class _Head:
    """A tilted ellipse; coordinates (u, v) are in units of its semi-axes."""

    cy: float
    cx: float
    ry: float
    rx: float
    tilt: float

    def rho(self, yy: np.ndarray, xx: np.ndarray, scale: float) -> np.ndarray:
        """Normalised radius: 1 on the outline when the ellipse is shrunk by `scale`."""
        c, s = float(np.cos(self.tilt)), float(np.sin(self.tilt))  # numpy scalars would upcast
        u = ((xx - self.cx) * c + (yy - self.cy) * s) / (self.rx * scale)
        v = ((yy - self.cy) * c - (xx - self.cx) * s) / (self.ry * scale)
        return np.sqrt(u * u + v * v)

    def point(self, u: float, v: float, scale: float) -> tuple[float, float]:
        c, s = float(np.cos(self.tilt)), float(np.sin(self.tilt))
        du, dv = u * self.rx * scale, v * self.ry * scale
        return float(self.cy + du * s + dv * c), float(self.cx + du * c - dv * s)


def patient_slices(rng: np.random.Generator, slices: int, h: int, w: int,
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (RGB uint8 image, bool mask) for each slice of one patient, top to bottom."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    head = _Head(h / 2 + rng.normal(0, 0.03 * h), w / 2 + rng.normal(0, 0.03 * w),
                 h * rng.uniform(0.36, 0.44), w * rng.uniform(0.30, 0.40), rng.uniform(-0.3, 0.3))
    bump = np.sin(np.pi * (np.arange(slices) + 0.5) / slices)
    scale = 0.55 + 0.45 * np.sqrt(bump)  # small at the skull cap and the base, full mid-stack
    keys = [_texture_keys(rng, slices // SLICES_PER_KEY + 2, g) for g in TEXTURE_GRIDS]
    bias = 1 + rng.uniform(0.05, 0.2) * _upsample(rng.standard_normal((3, 3, 3)), h, w)
    tissue = TISSUE * rng.uniform(0.85, 1.15, 3).astype(np.float32)
    # FLAIR carries the lesion; the others follow weakly, and sometimes FLAIR barely does
    contrast = np.float32([rng.uniform(-0.3, 0.2), 1, rng.uniform(0.1, 0.6)])
    contrast *= rng.uniform(0.2, 0.45)
    noise = np.float32(rng.uniform(0.015, 0.05))
    lesion = _lesion_track(rng, slices)
    for z in range(slices):
        s, coarse, fine = float(scale[z]), _drift(keys[0], z, h, w), _drift(keys[1], z, h, w)
        rho = head.rho(yy, xx, s)
        edge = (1 - rho) * min(head.ry, head.rx) * s  # ~ pixels inside the outline
        brain = np.clip(edge / 1.5 + 0.5, 0, 1)[..., None]
        image = 0.03 + brain * (tissue + 0.07 * coarse + 0.03 * fine)
        image += np.exp(-((edge + 2) / 1.2) ** 2)[..., None] * SKULL
        white = np.clip((0.72 + 0.2 * fine[..., 0] - rho) * 8, 0, 1)  # folded grey/white boundary
        image += white[..., None] * WHITE_MATTER
        image -= _ventricles(head, yy, xx, s, bump[z])[..., None] * CSF
        mask = np.zeros((h, w), bool)
        if lesion[z] is not None:
            mask = _blob(head, yy, xx, s, *lesion[z]) & (rho < 0.9)  # stays inside the brain
        if mask.sum() < MIN_LESION_PIXELS:
            mask[:] = False
        soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.0)
        image += soft[..., None] * contrast * (1 + 0.3 * fine)
        image += _distractors(rng, head, yy, xx, s)
        image = image * bias + noise * rng.standard_normal(image.shape, dtype=np.float32)
        yield np.clip(np.rint(image * 255), 0, 255).astype(np.uint8), mask


def _upsample(low: np.ndarray, h: int, w: int) -> np.ndarray:
    return cv2.resize(low.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


def _texture_keys(rng: np.random.Generator, count: int, grid: int) -> np.ndarray:
    """Keyframes of low-res noise, mostly shared by the channels: one anatomy, three contrasts."""
    shared = rng.standard_normal((count, grid, grid, 1), dtype=np.float32)
    return 0.85 * shared + 0.5 * rng.standard_normal((count, grid, grid, 3), dtype=np.float32)


def _drift(keys: np.ndarray, z: int, h: int, w: int) -> np.ndarray:
    """Texture at slice z, blending keyframes spread over the stack so anatomy drifts slowly."""
    u = z / SLICES_PER_KEY
    i = min(int(u), len(keys) - 2)
    f = u - i
    f = f * f * (3 - 2 * f)  # smoothstep: no kink in the drift at keyframes
    return _upsample((1 - f) * keys[i] + f * keys[i + 1], h, w)


def _ventricles(head: _Head, yy: np.ndarray, xx: np.ndarray, s: float, bump: float) -> np.ndarray:
    """Two dark CSF lobes, present only mid-stack, so not every dark/bright edge is a lesion."""
    size, out = float(np.clip(1.6 * bump - 0.6, 0, 1)), np.zeros_like(yy)
    for side in (-1, 1) if size > 0.1 else ():
        cy, cx = head.point(0.17 * side, -0.05, s)
        lobe = _Head(cy, cx, 0.24 * head.ry * size, 0.1 * head.rx * size, head.tilt - 0.35 * side)
        out = np.maximum(out, np.clip((1 - lobe.rho(yy, xx, s)) * 3, 0, 1))
    return out


def _lesion_track(rng: np.random.Generator, slices: int) -> list[tuple | None]:
    """Per slice, blob parameters (u, v, radius, shape, phases) or None outside the run."""
    track: list[tuple | None] = [None] * slices
    if rng.random() < NO_LESION_RATE:
        return track
    run = int(np.clip(round(rng.uniform(*LESION_RUN) * slices), min(MIN_RUN, slices), slices))
    start = int(rng.integers(0, slices - run + 1))
    p0 = 0.6 * np.array(_inside(rng))  # well inside, so clipping to the brain rarely bites
    p1 = p0 + rng.uniform(-0.2, 0.2, 2)  # the centre glides, it does not jump
    rmax = rng.uniform(0.08, 0.17)  # of the image's smaller side
    shape = (rng.uniform(0.65, 1.0), rng.uniform(0, np.pi), rng.uniform(0, 0.12, 3))
    phase0, spin = rng.uniform(0, 2 * np.pi, 3), rng.uniform(-0.15, 0.15, 3)
    for t in range(run):
        u, v = p0 + (p1 - p0) * t / max(run - 1, 1)
        radius = rmax * np.sin(np.pi * (t + 0.5) / run)
        track[start + t] = (u, v, radius, shape, phase0 + spin * t)
    return track


def _blob(head: _Head, yy: np.ndarray, xx: np.ndarray, s: float, u: float, v: float,
          radius: float, shape: tuple, phases: np.ndarray) -> np.ndarray:
    """An ellipse whose outline is wobbled by radial harmonics 2..4: irregular but compact."""
    aspect, angle, amps = shape
    cy, cx = head.point(u, v, s)
    dy, dx = yy - cy, xx - cx
    cos, sin = float(np.cos(angle)), float(np.sin(angle))
    a, b = dx * cos + dy * sin, (dy * cos - dx * sin) / aspect
    theta = np.arctan2(b, a)
    wobble = sum(float(amp) * np.cos(k * theta + float(ph))
                 for k, amp, ph in zip((2, 3, 4), amps, phases))
    return np.hypot(a, b) <= float(radius) * min(yy.shape) * (1 + wobble)


def _distractors(rng: np.random.Generator, head: _Head, yy: np.ndarray, xx: np.ndarray,
                 s: float) -> np.ndarray:
    """Bright spots outside FLAIR and thin vessel-like lines: bright things that are not lesions."""
    out = np.zeros((*yy.shape, 3), np.float32)
    for _ in range(rng.poisson(1.5)):
        cy, cx = head.point(*_inside(rng), s)
        spot = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(0.7, 1.6) ** 2))
        out += spot[..., None] * rng.uniform(0.15, 0.4) * SPOT_CHANNELS[rng.integers(3)]
    for _ in range(rng.poisson(0.8)):
        ends = np.array([head.point(*_inside(rng), s) for _ in range(3)])[:, ::-1]
        t = np.linspace(0, 1, 24)[:, None]
        curve = (1 - t) ** 2 * ends[0] + 2 * t * (1 - t) * ends[1] + t ** 2 * ends[2]
        canvas = np.zeros(yy.shape, np.float32)
        points = np.rint(curve * 16).astype(np.int32)  # 4 fractional bits: smooth, not jagged
        cv2.polylines(canvas, [points], False, 1.0, 1, cv2.LINE_AA, shift=4)
        gain = np.float32([0.05, rng.uniform(0.1, 0.3), rng.uniform(0.2, 0.45)])  # enhancing vessel
        out += cv2.GaussianBlur(canvas, (0, 0), 0.6)[..., None] * gain
    return out


def _inside(rng: np.random.Generator) -> tuple[float, float]:
    r, a = 0.8 * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
    return r * np.cos(a), r * np.sin(a)
