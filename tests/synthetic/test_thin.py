"""The thin-structure synthetic competition: determinism, thin masks, and that it cannot be
solved at a quarter of the resolution, in the masks or in the images."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from segpipe import rle
from segpipe.core.errors import InputError
from segpipe.datasets.adapters import synthetic
from segpipe.synthetic import thin

H, W = 192, 288  # small but a multiple of 4, so a 4x round trip maps pixel for pixel
SEED = 7
SIZE = dict(train_patients=2, test_patients=1, slices_per_patient=2, height=H, width=W)


@pytest.fixture(scope="module")
def slices() -> list[tuple[np.ndarray, np.ndarray]]:
    """Three slices each of 20 patients: enough for a fair share of empty masks."""
    out = []
    for child in np.random.SeedSequence(SEED).spawn(20):
        out += list(thin.patient_slices(np.random.default_rng(child), 3, H, W))
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic_thin") / "data"
    synthetic.generate(root, seed=SEED, kind="thin", **SIZE)
    return root


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _round_trip(mask: np.ndarray, factor: int) -> np.ndarray:
    """The mask as a model working at 1/factor of the size would give it back at best."""
    h, w = mask.shape
    small = cv2.resize(mask.astype(np.float32), (w // factor, h // factor),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR) > 0.5


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def _quarter(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (w // 4, h // 4), interpolation=cv2.INTER_AREA)


def test_same_rng_same_slices_other_seed_differs() -> None:
    def make(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        return list(thin.patient_slices(np.random.default_rng(seed), 3, H, W))

    first, again, other = make(1), make(1), make(2)
    for (image, mask), (image2, mask2) in zip(first, again):
        assert image.tobytes() == image2.tobytes() and mask.tobytes() == mask2.tobytes()
    assert any(a.tobytes() != b.tobytes() for (a, _), (b, _) in zip(first, other))


@pytest.mark.parametrize("h, w", [(H, W), (51, 77)])  # also a size that 4 does not divide
def test_shapes_and_dtypes(h: int, w: int) -> None:
    made = list(thin.patient_slices(np.random.default_rng(0), 2, h, w))
    assert len(made) == 2
    for image, mask in made:
        assert image.shape == (h, w, 3) and image.dtype == np.uint8
        assert mask.shape == (h, w) and mask.dtype == bool
        assert image.std() > 0  # not a flat or saturated frame


def test_some_masks_are_empty_some_not(slices: list) -> None:
    empty = np.mean([not mask.any() for _, mask in slices])
    assert 0.05 <= empty <= 0.35, empty


def test_masks_are_thin(slices: list) -> None:
    for _, mask in slices:
        if mask.any():
            # a 3x3 erosion removes a 2 px line and halves a 4 px one: most of the mask goes
            eroded = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
            assert eroded.sum() < 0.5 * mask.sum()
            inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2,
                                           cv2.DIST_MASK_PRECISE)
            assert inside[mask].mean() < 1.6  # px to the background, on average


def test_a_quarter_of_the_resolution_loses_most_of_the_dice(slices: list) -> None:
    masks = [mask for _, mask in slices if mask.any()]
    assert all(_dice(_round_trip(mask, 1), mask) == 1 for mask in masks)
    assert np.mean([_dice(_round_trip(mask, 4), mask) for mask in masks]) < 0.5


def test_the_core_and_flanks_vanish_in_a_4x_area_downscale() -> None:
    """Targets and flat distractors on the same paths: plainly different pixel by pixel, all
    but equal once averaged over 4x4 cells."""
    t = np.arange(0, 1, thin.STEP / 400)[:, None]
    paths = [np.hstack([20 + 250 * t, 100 + 60 * np.sin(6 * t + k)]) for k in range(2)]
    paths.append(np.hstack([150 + 70 * np.cos(4 * t), 96 + 70 * np.sin(4 * t)]))
    for width in (2.0, 3.0, 4.0):
        target, mask = thin.render(H, W, [(p, width, 1) for p in paths], 0.08, 0.3)
        flat, none = thin.render(H, W, [(p, width, 0) for p in paths], 0.08, 0.3)
        assert mask.any() and not none.any()
        native = np.abs(target - flat)[mask].mean()
        on_line = _quarter(mask.astype(np.float32)) > 0.25
        quarter = np.abs(_quarter(target) - _quarter(flat))[on_line].mean()
        assert native > 0.03 and quarter < 0.15 * native, (width, native, quarter)
        assert np.abs(_quarter(flat))[on_line].mean() > 5 * quarter  # the line itself stays


def test_download_writes_a_loadable_thin_competition(generated: Path, tmp_path: Path) -> None:
    competition = synthetic.load(generated)
    assert len(competition.train) == 2 * 2 and len(competition.test) == 1 * 2
    image = competition.read_image(competition.test["image"][0])[0]
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    rows = (generated / "train_masks.csv").read_text().splitlines()[1:]
    encoded = dict(row.split(",") for row in rows)
    for sid, path in zip(competition.train["id"], competition.train["mask"]):
        mask = competition.read_mask(path)
        assert mask.dtype == bool and mask.shape == (H, W)
        np.testing.assert_array_equal(rle.decode(encoded[sid], mask.shape, order="F"), mask, sid)
    synthetic.generate(tmp_path / "again", seed=SEED, kind="thin", **SIZE)
    assert _digests(tmp_path / "again") == _digests(generated)
    synthetic.generate(tmp_path / "brain", seed=SEED, **SIZE)
    assert _digests(tmp_path / "brain") != _digests(generated)


def test_an_unknown_kind_names_synthetic_kind(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=re.escape("synthetic.kind")) as error:
        synthetic.generate(tmp_path / "data", seed=SEED, kind="bogus", **SIZE)
    assert all(f"'{name}'" in str(error.value) for name in ("bogus", "brain", "thin"))
    assert not (tmp_path / "data").exists()
