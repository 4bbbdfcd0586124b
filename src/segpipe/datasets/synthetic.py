"""The embedded default competition: synthetic brain-MRI-like lesion slices, made offline.

`kind` picks what the images show: "brain" (the default, described here), "thin", thin curves
for tile-mode work (synthetic_thin), "multi", three overlapping classes (synthetic_multi), or
"exclusive", the same with one class a pixel (a multi-class competition).

It is laid out like a real Kaggle download, so the pipeline runs the same code paths it
would on LGG or Ultrasound Nerve, with no network access or credentials:

    train/<id>.png             3-channel 8-bit slices (pre-contrast, FLAIR, post-contrast)
    train_masks/<id>_mask.png  1-channel, values {0, 255}
    test/<id>.png
    train_masks.csv            img,rle_mask: column-major RLE, empty for an empty mask
    sample_submission.csv      img,rle_mask: every test id once with "1 1", shuffled

Ids are `<patient>_<slice>` (`p0007_1` ... `p0007_12`: 1-based, not zero-padded, so
lexicographic sorting is wrong) and the sample submission is shuffled, so code that
assumes sorted order breaks here rather than on the real competition.

Each patient is a stack of slices through a head-like ellipse whose size and texture
drift slowly along the stack. Most patients have one lesion on a contiguous run of slices
that grows and shrinks smoothly; it is bright mostly in FLAIR with a per-patient contrast
that is sometimes subtle. Bright spots, vessel-like lines, a bias field and noise keep a
threshold on one channel from solving it. All randomness comes from one SeedSequence with
one child per patient, so the same arguments give byte-identical files (given the same
numpy and OpenCV builds) and each patient is independent of the others.
"""
from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pandas as pd

from segpipe.core.errors import InputError
from segpipe.core.runtime import atomic_path

from . import readers, synthetic_thin
from .base import Competition, SubmissionSpec
from .layout import name_few

SUBMISSION = SubmissionSpec(id_column="img", rle_column="rle_mask", rle_order="F",
                            sample_submission=None)  # load() fills in the path

REMAKE = "rerun `dvc repro -f download`"  # a generated set out of step, as the pipeline remakes it
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


def download(root: Path, *, seed: int, train_patients: int, test_patients: int,
             slices_per_patient: int, height: int, width: int, kind: str = "brain") -> None:
    """Generate the competition into `root` (replaced atomically); same arguments, same bytes."""
    _slice_maker(kind)  # a bad kind fails before the old folder is touched
    with atomic_path(root) as tmp:
        write = (partial(_multi().generate, exclusive=kind == "exclusive") if kind in ("multi", "exclusive")
                 else partial(_generate, kind=kind))  # multi, exclusive: bit masks
        write(tmp, seed, train_patients, test_patients, slices_per_patient, height, width)


def _multi():
    from . import synthetic_multi  # here, not at the top: it builds on this module
    return synthetic_multi


def _slice_maker(kind: str):
    """The generator of one patient's (image, mask) slices for synthetic.kind."""
    makers = {"brain": _patient, "thin": synthetic_thin.patient_slices, "multi": _multi().patient_slices,
              "exclusive": _multi().patient_slices}
    if kind not in makers:
        raise InputError(f"params.yaml: synthetic.kind: unknown kind {kind!r}; "
                         f"choose one of {sorted(makers)}")
    return makers[kind]


def _generate(root: Path, seed: int, train_patients: int, test_patients: int,
              slices_per_patient: int, height: int, width: int, kind: str = "brain") -> None:
    from segpipe.rle import encode  # imported late so load() never needs numba

    make_slices = _slice_maker(kind)
    for folder in ("train", "train_masks", "test"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    total = train_patients + test_patients
    children = np.random.SeedSequence(seed).spawn(1 + total)
    master = np.random.default_rng(children[0])
    numbers = master.choice(np.arange(1, 4 * total + 10), size=total, replace=False)
    rows, test_ids = [], []
    for i, number in enumerate(numbers):
        rng, name = np.random.default_rng(children[1 + i]), f"p{number:04d}"
        slices = make_slices(rng, slices_per_patient, height, width)
        for z, (image, mask) in enumerate(slices, start=1):
            sid = f"{name}_{z}"
            _write_png(root / ("train" if i < train_patients else "test") / f"{sid}.png",
                       cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            if i < train_patients:
                _write_png(root / "train_masks" / f"{sid}_mask.png", mask.astype(np.uint8) * 255)
                rows.append((name, z, sid, encode(mask, order="F")))
            else:
                test_ids.append(sid)
    _write_csv(root / "train_masks.csv", [(sid, rle) for _, _, sid, rle in sorted(rows)])
    _write_csv(root / "sample_submission.csv",
               [(test_ids[k], "1 1") for k in master.permutation(len(test_ids))])


def _write_png(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image):
        raise OSError(f"{path}: could not write PNG")


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    # by hand rather than pandas: fixed "\n" line endings keep the bytes platform-independent
    path.write_text("".join(f"{a},{b}\n" for a, b in [("img", "rle_mask"), *rows]))


def _patient(rng: np.random.Generator, slices: int, h: int, w: int,
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


def load(root: Path, kind: str = "brain", remedy: str = REMAKE, **_options) -> Competition:
    """Read a generated (or same-shaped) download into the pipeline's view of a dataset; a file missing or out of
    step is an InputError that ends with `remedy`."""
    root = Path(root)
    if kind in ("multi", "exclusive"):
        return _multi().load(root, exclusive=kind == "exclusive", remedy=remedy)
    submission = dataclasses.replace(SUBMISSION, sample_submission=root / "sample_submission.csv")
    return Competition(name="synthetic", train=_train_table(root, remedy), test=_test_table(root, remedy),
                       submission=submission, read_image=readers.read_rgb,
                       read_mask=readers.read_binary_mask)


def _slice_key(path: Path) -> tuple[str, int]:
    patient, _, number = path.stem.rpartition("_")
    if not patient or not number.isdigit():
        raise InputError(f"{path}: expected a name like <patient>_<slice>.png")
    return patient, int(number)


def _train_table(root: Path, remedy: str = REMAKE) -> pd.DataFrame:
    images = sorted((root / "train").glob("*.png"), key=_slice_key)
    if not images:
        raise InputError(f"{root / 'train'}: no training images ({remedy})")
    orphans = {p.name: p for p in (root / "train_masks").glob("*_mask.png")}
    rows = []
    for image in images:
        mask = root / "train_masks" / f"{image.stem}_mask.png"
        if orphans.pop(mask.name, None) is None:
            raise InputError(f"{mask}: missing mask for {image} ({remedy})")
        rows.append((image.stem, *_slice_key(image), image, mask))
    if orphans:
        more = f" (and {len(orphans) - 1} more)" if len(orphans) > 1 else ""
        raise InputError(f"{min(orphans.values())}: mask has no image in {root / 'train'}{more} ({remedy})")
    return pd.DataFrame(rows, columns=["id", "group", "slice", "image", "mask"])


def _test_table(root: Path, remedy: str = REMAKE) -> pd.DataFrame:
    path = root / "sample_submission.csv"
    if not path.is_file():
        raise InputError(f"{path}: missing ({remedy})")
    sample = pd.read_csv(path, dtype=str, keep_default_na=False)
    if SUBMISSION.id_column not in sample:
        raise InputError(f"{path}: no '{SUBMISSION.id_column}' column")
    ids = sample[SUBMISSION.id_column].tolist()
    on_disk = {p.stem for p in (root / "test").glob("*.png")}
    twice = sample[SUBMISSION.id_column][sample.duplicated(SUBMISSION.id_column)]
    problems = {"ids listed twice": sorted(set(twice)),
                f"ids with no image in {root / 'test'}": [i for i in ids if i not in on_disk],
                "test images not in the sample": sorted(on_disk - set(ids))}
    found = "; ".join(f"{what}: {name_few(bad)}" for what, bad in problems.items() if bad)
    if found:
        raise InputError(f"{path} disagrees with {root / 'test'}: {found} ({remedy})")
    keys = [_slice_key(Path(f"{i}.png")) for i in ids]  # the test stacks are ordered too (2.5D context)
    return pd.DataFrame({"id": ids, "group": [g for g, _ in keys], "slice": [z for _, z in keys],
                         "image": [root / "test" / f"{i}.png" for i in ids]})
