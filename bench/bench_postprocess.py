"""Time the post-processing search over 5,000 OOF maps of 256x256 against applying every rule to every map.

The maps: half with a lesion (a blurred ellipse), half empty with a faint false blob, all
with a few bright specks, so every step of the search has something to find. Ours:
`segpipe.evaluation.tune.search_rule` (histograms for the threshold and gate steps, one component
labelling per map for the component steps), histograms included. The usual way: for every
candidate rule of the same grids, `postprocess.apply` on every map and score it; timed on
a sample of maps and scaled to 5,000, since running it whole would take hours.
Target: the whole search <= 60 s on 2 cores. Run as `python bench/bench_postprocess.py`.
"""
from __future__ import annotations

import time

import cv2
import numpy as np
from side_by_side import print_table

from segpipe.evaluation.metrics import CUTS, cut_to_threshold, probability_histograms
from segpipe.evaluation.postprocess import Rule
from segpipe.evaluation.tune import Grids, rule_counts, search_rule

COUNT, SIZE, SAMPLE = 5_000, (256, 256), 20
GRIDS = Grids(gate_areas=[0, 5, 10, 20, 40, 80], gate_thresholds=[0.5, 0.6, 0.7, 0.8, 0.9],
              min_components=[0, 5, 10, 20, 40], keep_largest=[0, 1, 2])
THRESHOLDS = [cut_to_threshold(c) for c in CUTS]  # the search tries every uint8 cut


def oof_maps(count: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    probs = np.zeros((count, *SIZE), np.uint8)
    masks = np.zeros((count, *SIZE), np.uint8)
    for i in range(count):
        centre = tuple(int(v) for v in rng.integers(60, 196, 2))
        axes = tuple(int(v) for v in rng.integers(10, 40, 2))
        blob = np.zeros(SIZE, np.float32)
        cv2.ellipse(blob, centre, axes, 0, 0, 360, 1.0, -1)
        if i % 2:
            cv2.ellipse(masks[i], centre, axes, 0, 0, 360, 1, -1)
            level = 240
        else:
            level = 140  # a faint false positive
        prob = cv2.GaussianBlur(blob, (0, 0), 3) * level
        for y, x in rng.integers(0, 254, (4, 2)):
            prob[y:y + 2, x:x + 2] = 220  # specks
        probs[i] = np.clip(prob, 0, 255).astype(np.uint8)
    return probs, masks


def candidate_rules() -> list[Rule]:
    rules = [Rule(t, t, a) for t in THRESHOLDS for a in GRIDS.gate_areas]
    rules += [Rule(t, g, a) for t in THRESHOLDS for g in GRIDS.gate_thresholds if t < g
              for a in GRIDS.gate_areas if a]
    rules += [Rule(0.5, 0.5, 0, min_component=s) for s in GRIDS.min_components if s]
    rules += [Rule(0.5, 0.5, 0, keep_largest=k) for k in GRIDS.keep_largest if k]
    return rules


def main() -> None:
    probs, masks = oof_maps(COUNT)
    start = time.perf_counter()
    fg, bg = probability_histograms(probs, masks)
    found = search_rule(fg, bg, lambda: zip(probs, masks), GRIDS)
    rule, steps = found.rule, found.steps
    ours = time.perf_counter() - start

    rules = candidate_rules()
    start = time.perf_counter()
    for candidate in rules:
        rule_counts(zip(probs[:SAMPLE], masks[:SAMPLE]), candidate).image_dice().mean()
    usual = (time.perf_counter() - start) * COUNT / SAMPLE
    print_table(f"post-processing search: {COUNT:,} OOF maps of {SIZE[0]}x{SIZE[1]}, {len(rules)} candidate rules",
                "seconds for the whole search (usual: every rule applied to every map, timed on "
                f"{SAMPLE} maps and scaled); ratio = usual / ours",
                [("search, histograms included", usual, ours, usual / ours, "<= 60 s", ours <= 60)])
    print(f"\nchosen: {rule.describe()}; steps: "
          + "; ".join(f"{s['step']} {s['dice']:.4f}{'' if s['kept'] else ' (not kept)'}" for s in steps))


if __name__ == "__main__":
    main()
