"""The multi-label kind of the synthetic competition: three lesion classes that overlap.

`synthetic.download(..., kind="multi")` writes it and `synthetic.load(..., kind="multi")`
reads it, so the multi-class path (a channel, a threshold and a minimum area per class,
per-class submission rows) runs offline as the binary one does. The slices are the "brain"
kind's: `patient_slices` draws them from the same patient rng, so a seed gives the same
heads, distractors and lesions, and adds to them. The classes, in channel (bit) order:

    core   an enhancing centre in most lesions: very bright after contrast, darker before it
           and in FLAIR, mottled; the lesion's deepest part, with an outline that wobbles
    edema  the brain kind's FLAIR-bright lesion, core included: a halo around the core, so
           the classes overlap (as BraTS's whole tumour holds its core)
    spot   small dots (5-7 px across) bright in all three channels, on short runs of slices
           in some patients: rare (a sixth of the slices of 16-slice stacks) and small, so
           their best threshold and minimum area are not the others'. The brain kind's
           distractor spots, never bright in FLAIR, look much like them.

About half the slices show no class. The layout is the brain kind's but for the masks
and the two csv files, which have a row per (slice, class):

    train/<id>.png             3-channel 8-bit slices (pre-contrast, FLAIR, post-contrast)
    train_masks/<id>_mask.png  1-channel uint8: bit k (value 1 << k) where class k is
    test/<id>.png
    train_masks.csv            id,rle_mask,class: column-major RLE, empty when the class is absent
    sample_submission.csv      id,rle_mask,class: "1 1" for each class of every test id, ids shuffled
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pandas as pd

from segpipe.core.errors import InputError

from . import readers, synthetic
from .base import Competition, SubmissionSpec
from .layout import name_few
from .tree import read_bytes

CLASSES = ("core", "edema", "spot")
CORE, EDEMA, SPOT = (np.uint8(1 << k) for k in range(len(CLASSES)))
SUBMISSION = SubmissionSpec(id_column="id", rle_column="rle_mask", rle_order="F",
                            sample_submission=None, class_column="class")  # load() fills in the path

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


def generate(root: Path, seed: int, train_patients: int, test_patients: int,
             slices_per_patient: int, height: int, width: int, exclusive: bool = False) -> None:
    """Write the competition into the new folder `root`, with the seed discipline of the brain kind.

    `exclusive` (the kind `exclusive`): the same images, each pixel labelled with one class at
    most (`exclusive_bits`), for the softmax path.

    One SeedSequence child per patient and a master rng that names the patients and shuffles
    the sample, exactly as `synthetic._generate` does: the same seed gives the same patients.
    """
    from segpipe.rle import encode  # imported late so load() never needs numba

    for folder in ("train", "train_masks", "test"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    total = train_patients + test_patients
    children = np.random.SeedSequence(seed).spawn(1 + total)
    master = np.random.default_rng(children[0])
    numbers = master.choice(np.arange(1, 4 * total + 10), size=total, replace=False)
    rows, test_ids = [], []
    for i, number in enumerate(numbers):
        rng, name = np.random.default_rng(children[1 + i]), f"p{number:04d}"
        for z, (image, mask) in enumerate(patient_slices(rng, slices_per_patient, height, width), start=1):
            mask = exclusive_bits(mask) if exclusive else mask
            sid = f"{name}_{z}"
            split = "train" if i < train_patients else "test"
            synthetic._write_png(root / split / f"{sid}.png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            if split == "test":
                test_ids.append(sid)
                continue
            synthetic._write_png(root / "train_masks" / f"{sid}_mask.png", mask)
            rles = [encode((mask & np.uint8(1 << k)) > 0, order="F") for k in range(len(CLASSES))]
            rows.append((name, z, sid, rles))
    _write_csv(root / "train_masks.csv",
               [(sid, encoded, label) for _, _, sid, rles in sorted(rows) for encoded, label in zip(rles, CLASSES)])
    _write_csv(root / "sample_submission.csv",
               [(test_ids[k], "1 1", label) for k in master.permutation(len(test_ids)) for label in CLASSES])


def _write_csv(path: Path, rows: list[tuple[str, str, str]]) -> None:
    # by hand rather than pandas: fixed "\n" line endings keep the bytes platform-independent
    path.write_text("".join(",".join(row) + "\n" for row in [tuple(SUBMISSION.header()), *rows]))


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
    for z, (image, lesion) in enumerate(synthetic._patient(rng, slices, h, w)):
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


def read_bit_mask(path: Path | str, classes: int = len(CLASSES)) -> np.ndarray:
    """Decode a mask PNG to its (H, W) uint8 bits, bit k for class k (`readers.read_binary_mask` would binarise it).

    InputError naming the file when it is not a 1-channel 8-bit image or sets a bit past `classes`.
    """
    try:
        data = np.frombuffer(read_bytes(path), np.uint8)
    except OSError as err:
        raise InputError(f"{path}: cannot decode mask (missing or unreadable: {err.strerror or err})") from None
    mask = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if mask is None:
        raise InputError(f"{path}: cannot decode mask (missing, truncated or not an image)")
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise InputError(f"{path}: not a bit mask: {mask.dtype} with shape {mask.shape} where a 1-channel "
                         "8-bit image was expected")
    top = int(mask.max(initial=0))
    if top >> classes:
        raise InputError(f"{path}: value {top} sets a bit past the {classes} classes (values 0..{(1 << classes) - 1})")
    return mask


def load(root: Path, exclusive: bool = False, remedy: str = synthetic.REMAKE) -> Competition:
    """Read a generated (or same-shaped) download into the pipeline's view of a dataset (`exclusive`:
    the classes never overlap, a softmax over them and a background); `remedy` ends the errors."""
    root = Path(root)
    submission = dataclasses.replace(SUBMISSION, sample_submission=root / "sample_submission.csv")
    return Competition(name="synthetic", train=synthetic._train_table(root, remedy), test=_test_table(root, remedy),
                       submission=submission, read_image=readers.read_rgb, read_mask=read_bit_mask,
                       classes=CLASSES, exclusive=exclusive)


def _test_table(root: Path, remedy: str = synthetic.REMAKE) -> pd.DataFrame:
    """The test slices in the sample's order: its rows are each id once per class, classes in order."""
    path = root / "sample_submission.csv"
    if not path.is_file():
        raise InputError(f"{path}: missing ({remedy})")
    sample = pd.read_csv(path, dtype=str, keep_default_na=False)
    columns = [SUBMISSION.id_column, SUBMISSION.class_column]
    if not set(columns) <= set(sample.columns):
        raise InputError(f"{path}: expected the columns {','.join(SUBMISSION.header())}, "
                         f"found {','.join(sample.columns)}")
    ids = list(dict.fromkeys(sample[SUBMISSION.id_column]))
    rows = list(zip(*(sample[c] for c in columns)))
    on_disk = {p.stem for p in (root / "test").glob("*.png")}
    problems = {f"rows out of the pattern (each id once per class, in the order {', '.join(CLASSES)})":
                [f"{i} {c}" for (i, c), want in zip(rows, [(i, c) for i in ids for c in CLASSES]) if (i, c) != want],
                f"ids with no image in {root / 'test'}": [i for i in ids if i not in on_disk],
                "test images not in the sample": sorted(on_disk.difference(ids))}
    if len(rows) != len(ids) * len(CLASSES):
        problems["row count"] = [f"{len(rows)} rows for {len(ids)} ids"]
    found = "; ".join(f"{what}: {name_few(bad)}" for what, bad in problems.items() if bad)
    if found:
        raise InputError(f"{path} disagrees with {root / 'test'}: {found} ({remedy})")
    keys = [synthetic._slice_key(Path(f"{i}.png")) for i in ids]  # ordered stacks, for 2.5D context
    return pd.DataFrame({"id": ids, "group": [g for g, _ in keys], "slice": [z for _, z in keys],
                         "image": [root / "test" / f"{i}.png" for i in ids]})
