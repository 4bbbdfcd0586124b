"""Pictures of the out-of-fold results: where the model fails, and how the folds compare.

`oof_cases.png` shows the best, median and worst OOF images by per-image Dice at the cut
chosen by the threshold stage (the post-processing rule in metrics/postprocess.json), so each
Dice shown is exactly the one the CV score averages. Each case is three panels: the image,
the image with the true (green) and predicted (red) outlines, yellow where they coincide,
and the OOF probability (dark = 0, bright = 1) with the true outline in white, which tells
a miss just under the threshold from one the model never saw.

Choosing the cases:
- only images where the truth or the prediction is non-empty: an empty prediction on an
  empty slice scores 1 and shows nothing (a false positive on an empty slice is kept).
- worst: the lowest Dice; on ties (often many Dice-0 images: missed lesions and false
  positives) the largest truth + prediction first, the most glaring failures.
- best: the highest Dice, largest area first on ties; median: the images around the
  median Dice of what is left.
An image appears at most once: worst is picked first, then best, then median from the rest.

Images are upscaled by an integer factor with nearest neighbour (a 64x64 slice becomes
192x192) so the pixels and outlines stay readable; larger images are shrunk to fit.
The PNGs carry no timestamps: identical inputs give identical bytes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
import pandas as pd

from segpipe.core.runtime import atomic_path
from segpipe.evaluation import oof_files, postprocess
from segpipe.evaluation.postprocess import Rule
from segpipe.evaluation.tune import rule_counts

TILE = 192  # displayed panel size in pixels (longest side)
# RGB colours of the outlines
TRUTH, PRED, BOTH, TRUTH_ON_PROB = (0, 230, 0), (255, 40, 40), (255, 230, 0), (255, 255, 255)
INK, PAPER = (20, 20, 20), (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX
GAP = 6  # pixels between panels, 3x between cases


def image_scores(maps: Iterable[tuple[np.ndarray, np.ndarray]], rule: Rule):
    """Per-image (dice, true_area, pred_area) of (probability, mask) pairs under the post-processing `rule`."""
    counts = rule_counts(maps, rule)
    return counts.image_dice(), counts.true, counts.pred


def pick_cases(dice: np.ndarray, truth_area: np.ndarray, pred_area: np.ndarray,
               per_group: int = 4) -> dict[str, np.ndarray]:
    """Positions (into the given arrays) of the best, median and worst cases; see the module doc."""
    dice = np.asarray(dice, dtype=np.float64)
    area = np.asarray(truth_area, dtype=np.int64) + np.asarray(pred_area, dtype=np.int64)
    shown = np.flatnonzero(area > 0)  # empty on empty scores 1 and shows nothing
    ascending = shown[np.lexsort((-area[shown], dice[shown]))]  # larger area first on ties
    worst = ascending[:per_group]
    left = ascending[per_group:]
    best = left[np.lexsort((-area[left], -dice[left]))][:per_group]
    rest = left[~np.isin(left, best)]  # still in ascending Dice order
    start = max(0, min(len(rest) - per_group, (len(rest) - per_group + 1) // 2))
    median = rest[start:start + per_group]
    return {"best": best, "median": median, "worst": worst}


def predicted_mask(prob: np.ndarray, rule: Rule) -> np.ndarray:
    """The {0,1} mask the CV score counts: `prob` post-processed by `rule`."""
    return postprocess.apply(prob, rule).astype(np.uint8)


def _fit(array: np.ndarray, tile: int, nearest: bool) -> np.ndarray:
    """Integer nearest upscale of a small array, or shrink a large one to fit `tile`."""
    height, width = array.shape[:2]
    if max(height, width) <= tile:
        factor = tile // max(height, width)
        return np.repeat(np.repeat(array, factor, axis=0), factor, axis=1)
    scale = tile / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(array, size, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


def _outline(mask: np.ndarray) -> np.ndarray:
    """Bool map of a 2-pixel outline of a {0,1} mask (1 pixel is lost on a busy image)."""
    canvas = np.zeros(mask.shape, np.uint8)
    contours, _ = cv2.findContours(np.ascontiguousarray(mask, np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(canvas, contours, -1, 1, thickness=2)
    return canvas.astype(bool)


def _text(canvas: np.ndarray, text: str, x: int, y: int, scale: float = 0.45, color=INK) -> None:
    cv2.putText(canvas, text, (x, y), FONT, scale, color, 1, cv2.LINE_AA)


def case_panels(image: np.ndarray, mask: np.ndarray, prob: np.ndarray, rule: Rule, tile: int = TILE) -> np.ndarray:
    """One case as RGB uint8: image | outlines on the image | probability with the true outline."""
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[..., :3]
    rgb = _fit(np.ascontiguousarray(rgb), tile, nearest=False)
    truth = _outline(_fit(mask.astype(np.uint8), tile, nearest=True))
    pred = _outline(_fit(predicted_mask(prob, rule), tile, nearest=True))
    overlay = rgb.copy()
    overlay[truth] = TRUTH
    overlay[pred] = PRED
    overlay[truth & pred] = BOTH
    heat = cv2.cvtColor(cv2.applyColorMap(_fit(prob, tile, nearest=False), cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
    heat[truth] = TRUTH_ON_PROB
    gap = np.full((rgb.shape[0], GAP, 3), PAPER, np.uint8)
    return cv2.hconcat([rgb, gap, overlay, gap, heat])


def case_grid(images: np.ndarray, masks: np.ndarray, probs: np.ndarray, ids, groups, dices,
              cases: dict[str, np.ndarray], rule: Rule, tile: int = TILE) -> np.ndarray:
    """The picture of `cases` (as from pick_cases; positions into the other arguments) as RGB uint8.

    images (N,H,W,C) uint8, masks (N,H,W) {0,1}, probs (N,H,W) uint8; one row per non-empty
    group, labelled, each case captioned with its id, patient and Dice.
    """
    per_row = max((len(rows) for rows in cases.values()), default=0)
    blocks = []
    for name, rows in cases.items():
        if len(rows) == 0:
            continue
        tiles = []
        for i in rows:
            panels = case_panels(images[i], masks[i], probs[i], rule, tile)
            caption = np.full((38, panels.shape[1], 3), PAPER, np.uint8)
            _text(caption, f"{ids[i]}   patient {groups[i]}", 2, 15)
            predicted = int(predicted_mask(probs[i], rule).sum())
            _text(caption, f"Dice {dices[i]:.3f}   truth {int(masks[i].sum())} px   pred {predicted} px", 2, 33)
            tiles.append(cv2.vconcat([panels, caption]))
        blank = np.full_like(tiles[0], PAPER)
        spacer = np.full((tiles[0].shape[0], 3 * GAP, 3), PAPER, np.uint8)
        row = [tiles[0]]
        for tile_image in tiles[1:] + [blank] * (per_row - len(tiles)):
            row += [spacer, tile_image]
        label = np.full((tiles[0].shape[0], 80, 3), PAPER, np.uint8)
        _text(label, name, 4, tiles[0].shape[0] // 2, scale=0.7)
        blocks.append(cv2.hconcat([label] + row))
        blocks.append(np.full((2 * GAP, blocks[-1].shape[1], 3), PAPER, np.uint8))
    header = np.full((54, blocks[0].shape[1] if blocks else 960, 3), PAPER, np.uint8)
    what = "per case: image | outlines | probability" if blocks else "no image has a lesion or a prediction"
    _text(header, f"Out-of-fold cases, {rule.describe()}; {what}", 4, 20, scale=0.55)
    legend = [("truth", TRUTH), ("prediction", PRED), ("both", BOTH)]
    x = 4
    for name, color in legend:
        cv2.rectangle(header, (x, 32), (x + 14, 46), color, thickness=-1)
        _text(header, name, x + 20, 45)
        x += 30 + 9 * len(name)
    _text(header, "probability: dark 0 .. bright 1, white = truth", x + 20, 45)
    return cv2.vconcat([header] + blocks[:-1])


def oof_rows(folds: pd.DataFrame, oof_paths: dict[int, Path], rows: np.ndarray) -> np.ndarray:
    """OOF probabilities of folds.csv `rows` (every row in a trained fold), read from the memmaps."""
    fold = folds.fold.to_numpy()
    ids = folds.id.astype(str).to_numpy()
    out = []
    for row in rows:
        within = int(np.searchsorted(np.flatnonzero(fold == fold[row]), row))
        out.append(oof_files.read(oof_paths[int(fold[row])], ids[fold == fold[row]])[within])
    return np.stack(out) if out else np.zeros((0, 0, 0), np.uint8)


def write_png(path: Path | str, image: np.ndarray) -> None:
    """Write an RGB (or gray) uint8 image as PNG, atomically; OpenCV writes no timestamp."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    # OpenCV's default level 1 writes ~4x bigger files; these are committed to git (cache: false)
    ok, encoded = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError(f"{path}: PNG encoding failed")
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())


