"""The cost of classes: a network with 4 output channels against 1, and the per-class post-processing search.

1. Training images/s of one optimizer step (forward, loss, backward, AdamW) of the default
   network (`train` in params.yaml) at the default plan size (128x128, batch 16) with 4
   sigmoid channels (multilabel BCE + Dice on bit-packed masks, `segpipe.network.inputs.to_target`)
   against 1 channel (binary), on the same images; rounds interleaved. Target: >= 0.8x.
2. Inference images/s of `segpipe.inference.ensemble.Ensemble` (hflip TTA) on batches of 64,
   4 channels against 1. Target: >= 0.8x.
3. The post-processing search of a 4-class competition over 5,000 OOF maps of 256x256:
   `segpipe.evaluation.per_class.cross_validate_classes` on (5000, 4, 256, 256) maps and
   bit-packed masks in .npy memmaps, reading, histograms, the search and the scoring under
   the chosen rules included, against the usual way (every candidate rule applied to every
   map, per class), timed on a sample and scaled. Target: <= 60 s on 2 cores.
4. Tile mode: sliding-window inference images/s (`segpipe.inference.windows.stitch`, a 512x768
   image in windows of 128x128 at step 1/2) with 4 class maps accumulated against 1. Target: >= 0.8x.
5. The "top class forced on" search (`segpipe.evaluation.force_top.search_force_top`, every rule
   applied to every map once, every image labelled) over the same 5,000 maps x 4 classes, as a
   share of the per-class search it follows.
Run as `python bench/bench_classes.py`.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from bench_postprocess import GRIDS, SAMPLE, candidate_rules
from bench_postprocess import oof_maps as binary_maps
from side_by_side import median_seconds, print_table

from segpipe.config.params import load_params
from segpipe.core.labels import Labels
from segpipe.core.runtime import create_npy
from segpipe.evaluation.cv import oof_maps
from segpipe.evaluation.force_top import search_force_top
from segpipe.evaluation.per_class import cross_validate_classes
from segpipe.evaluation.tune import rule_counts
from segpipe.inference.ensemble import Ensemble
from segpipe.inference.windows import stitch
from segpipe.network.inputs import normalize, to_device, to_target
from segpipe.network.model import WeightedLoss, build_model, model_spec
from segpipe.plan.device import Device
from segpipe.plan.device_rules import plan_network

CLASSES, SIZE, BATCH, STEPS, REPEATS = 4, (128, 128), 16, 6, 5
MAPS, MAP_SIZE = 5_000, (256, 256)


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, H, W, 3) uint8 images and (B, H, W) uint8 masks with CLASSES bits, some overlapping."""
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.integers(0, 256, (BATCH, *SIZE, 3), dtype=np.uint8))
    masks = np.zeros((BATCH, *SIZE), np.uint8)
    for k in range(CLASSES):
        y, x = rng.integers(10, SIZE[0] - 40, 2)
        masks[:, y:y + 30, x:x + 30] |= np.uint8(1 << k)
    return images, torch.from_numpy(masks)


def trainer(cfg, classes: int):
    """One optimizer step of the network with `classes` channels, as train_one_epoch runs it."""
    torch.manual_seed(0)
    model = build_model(model_spec(cfg, classes=classes)).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    criterion = WeightedLoss({"bce": 0.7, "dice": 0.3}, "multilabel" if classes > 1 else "binary")
    images, masks = batch()
    device = torch.device("cpu")
    labels = Labels(tuple(f"c{k}" for k in range(classes)) if classes > 1 else ())

    def steps() -> None:
        for _ in range(STEPS):
            x = normalize(to_device(images, device), True, 3)
            loss = criterion(model(x), to_target(masks, device, labels))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return steps


def predictor(cfg, classes: int):
    torch.manual_seed(0)
    model = build_model(model_spec(cfg, classes=classes))
    ensemble = Ensemble([model], torch.device("cpu"), in_channels=3)
    images = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (64, *SIZE, 3), dtype=np.uint8))
    return lambda: ensemble(images)


def window_predictor(cfg, classes: int):
    """Sliding-window inference of one 512x768 image with the network of `classes` channels."""
    torch.manual_seed(0)
    model = build_model(model_spec(cfg, classes=classes))
    ensemble = Ensemble([model], torch.device("cpu"), in_channels=3)
    image = np.random.default_rng(2).integers(0, 256, (512, 768, 3), dtype=np.uint8)
    return lambda: stitch(ensemble, image, (128, 128), 0.5, 16, torch.device("cpu"))


def labelled(maps):
    """The OOF stream with one pixel of class 0 set on an empty mask: every image labelled, as in Clouds."""
    for probs, truth in maps:
        if not truth.any():
            truth = truth.copy()
            truth[0, 0] = 1
        yield probs, truth


def class_oof(folder: Path) -> tuple[pd.DataFrame, dict[int, Path], Path]:
    """MAPS OOF maps of CLASSES classes in two folds (bench_postprocess's maps, shifted per class)."""
    probs, masks = binary_maps(MAPS)
    folds = pd.DataFrame({"id": [f"i{i}" for i in range(MAPS)], "group": [f"g{i // 4}" for i in range(MAPS)],
                          "fold": [(i // 4) % 2 for i in range(MAPS)]})
    packed = create_npy(folder / "masks.npy", (MAPS, *MAP_SIZE))
    for k in range(CLASSES):
        packed[:] |= np.roll(masks, 8 * k, axis=2) << k
    packed.flush()
    paths = {}
    for fold in (0, 1):
        rows = np.flatnonzero(folds.fold.to_numpy() == fold)
        paths[fold] = folder / f"fold{fold}"
        paths[fold].mkdir()
        pd.DataFrame({"id": folds.id[rows]}).to_csv(paths[fold] / "ids.csv", index=False)
        out = create_npy(paths[fold] / "probs.npy", (len(rows), CLASSES, *MAP_SIZE))
        for k in range(CLASSES):
            out[:, k] = np.roll(probs[rows], 8 * k, axis=2)
        out.flush()
    return folds, paths, folder / "masks.npy"


def main() -> None:
    defaults = load_params().train  # the default network, as the plan resolves it on a CPU
    cfg = defaults.model_copy(update=plan_network(defaults, Device("cpu", 2), at_hand=lambda encoder: False))
    train = median_seconds({"1": trainer(cfg, 1), "4": trainer(cfg, CLASSES)}, REPEATS)
    infer = median_seconds({"1": predictor(cfg, 1), "4": predictor(cfg, CLASSES)}, REPEATS)
    windows = median_seconds({"1": window_predictor(cfg, 1), "4": window_predictor(cfg, CLASSES)}, REPEATS)
    rows = []
    for what, seconds, images in (("train images/s", train, STEPS * BATCH), ("inference images/s", infer, 64),
                                  ("sliding windows images/s", windows, 1)):
        one, four = images / seconds["1"].wall, images / seconds[str(CLASSES)].wall
        rows.append((f"{what}, {CLASSES} classes vs 1", one, four, four / one, ">= 0.8x", four / one >= 0.8))
    print_table(f"classes: {cfg.encoder_name} U-Net at {SIZE[0]}x{SIZE[1]} on the CPU, {REPEATS} interleaved rounds",
                "images per second; ratio = 4 classes / 1 class", rows, columns=("1 class", f"{CLASSES} classes"))

    with tempfile.TemporaryDirectory() as tmp:
        folds, paths, masks_path = class_oof(Path(tmp))
        start = time.perf_counter()
        metrics, searches = cross_validate_classes(folds, paths, masks_path, GRIDS, [f"c{k}" for k in range(CLASSES)])
        ours = time.perf_counter() - start
        probs = np.load(paths[0] / "probs.npy", mmap_mode="r")[:SAMPLE]
        masks = np.load(masks_path, mmap_mode="r")[np.flatnonzero(folds.fold.to_numpy() == 0)[:SAMPLE]]
        rules = candidate_rules()
        start = time.perf_counter()
        for k in range(CLASSES):
            for rule in rules:
                rule_counts(zip(probs[:, k], (masks >> k) & 1), rule).image_dice().mean()
        usual = (time.perf_counter() - start) * MAPS / SAMPLE
        start = time.perf_counter()
        forced = search_force_top(labelled(oof_maps(folds, paths, masks_path)), [s.rule for s in searches],
                                  Labels(tuple(f"c{k}" for k in range(CLASSES))))
        force_seconds = time.perf_counter() - start
    print()
    print_table(f"per-class post-processing search: {MAPS:,} OOF maps x {CLASSES} classes of "
                f"{MAP_SIZE[0]}x{MAP_SIZE[1]}, {len(rules)} candidate rules per class",
                f"seconds for the whole search (usual: every rule applied to every map, timed on {SAMPLE} maps "
                "and scaled); ratio = usual / ours",
                [("search and scoring, 4 classes", usual, ours, usual / ours, "<= 60 s", ours <= 60)])
    print(f"\nCV dice {metrics['dice']:.4f}; rules: " + "; ".join(s.rule.describe() for s in searches))
    # the scores mean nothing here (a one-pixel label was given to the empty images); the time is the point
    print(f"top class forced on, searched over the same maps: {force_seconds:.1f} s "
          f"({force_seconds / ours:.2f}x the per-class search; {forced['images_changed']} images changed)")


if __name__ == "__main__":
    main()
