"""Blend weights of several models, chosen on their out-of-fold probabilities.

Greedy forward selection with replacement (Caruana et al. 2004, "Ensemble selection from
libraries of models"): start from nothing and, `iterations` times, add the model (again,
possibly) whose addition scores best; keep the best bag seen. A model's weight is its share
of the bag, so weights are non-negative, sum to 1 and are multiples of 1/iterations. The
first step picks the best single model, so out of fold the blend never scores below it.

A bag is scored by the competition's declared score (`segpipe.evaluation.scores`: mean per-image
Dice, or per-patient Dice) at its best probability cut: one 256-bin histogram per image gives
every cut at once (`segpipe.evaluation.metrics`). Maps are
blended in integers, round(sum c_m p_m / sum c_m) on the uint8 probabilities, so the test
maps blended at submit time are exactly those the weights were tuned on. Ties go to the
model that comes first by name: the same inputs always give the same weights.

With classes, one bag serves every class by default, scored on the Dice averaged over the
classes; `blend.per_class` runs the selection once per class on that class's own score
instead, and each class's maps are blended with its own counts (`ClassCounts`). Exclusive
classes take the argmax (`segpipe.core.labels.argmax_first`) on the blend, once: the
blended OOF maps are written after it, so the threshold search and the report cut them as
they are, as submit does the test maps after its own argmax.
"""
from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence, Union

import numpy as np
import pandas as pd

from segpipe.core.labels import Labels, class_maps, of_class
from segpipe.evaluation import oof_files
from segpipe.evaluation.metrics import CUTS, Counts, counts_at_cuts, cut_to_threshold, probability_histograms
from segpipe.evaluation.scores import Scorer, patients, scorer


ClassCounts = Sequence[Mapping[str, int]]  # one bag per class, in class order
AnyCounts = Union[Mapping[str, int], ClassCounts]  # one bag for every class, or one per class


def blend_maps(maps: Sequence[np.ndarray], counts: Sequence[int]) -> np.ndarray:
    """round(sum counts[m] * maps[m] / sum counts) of uint8 maps, in integers, as uint8."""
    total = int(sum(counts))
    acc = np.zeros(np.shape(maps[0]), dtype=np.uint32)
    for prob, count in zip(maps, counts):
        if count:
            acc += np.asarray(prob, dtype=np.uint32) * int(count)
    return ((acc + total // 2) // total).astype(np.uint8)


def blend_models(read: Callable[[str], np.ndarray], counts: AnyCounts) -> np.ndarray:
    """Blend the maps `read(model)` gives ((..., C, H, W) with classes) under one bag or a bag per class.

    Only the models a bag picks are read. Per class, channel k is `blend_maps` of channel k
    under the k-th bag: the same integers as one bag when every bag is the same.
    """
    if isinstance(counts, Mapping):
        names = [name for name in sorted(counts) if counts[name]]
        return blend_maps([read(name) for name in names], [counts[n] for n in names])
    maps = {name: read(name) for name in sorted({n for bag in counts for n, c in bag.items() if c})}
    out = np.empty_like(next(iter(maps.values())))
    for k, bag in enumerate(counts):
        names = [name for name in sorted(bag) if bag[name]]
        out[..., k, :, :] = blend_maps([maps[n][..., k, :, :] for n in names], [bag[n] for n in names])
    return out


def read_counts(blend: dict, labels: Labels) -> AnyCounts:
    """The bag(s) a metrics/blend.json holds: `class_counts` in class order when tuned per class."""
    if "class_counts" not in blend:
        return blend["counts"]
    return [blend["class_counts"][name] for name in labels.classes]


@dataclass(frozen=True)
class Score:
    """A bag's declared score at its best cut (`score`), and its mean per-image and per-patient Dice at that cut.

    With classes, each class is scored at its own best cut (`classes`) and the three numbers
    are their means: Severstal's mean Dice over (image, class) pairs.
    """

    score: float
    dice: float
    patient_dice: float
    threshold: float | None  # the best cut as a probability (uint8 cut / 255); None with classes
    classes: tuple[Score, ...] = ()

    @classmethod
    def mean_of(cls, classes: Sequence[Score]) -> Score:
        return cls(*(float(np.mean([getattr(s, key) for s in classes])) for key in ("score", "dice", "patient_dice")),
                   None, tuple(classes))

    def to_dict(self, names: Sequence[str] = ()) -> dict:
        """As json: the four numbers, and each class's by name."""
        out = {"score": self.score, "dice": self.dice, "patient_dice": self.patient_dice, "threshold": self.threshold}
        if self.classes:
            out["classes"] = {name: score.to_dict() for name, score in zip(names, self.classes)}
        return out


def score_histograms(fg: np.ndarray, bg: np.ndarray, groups: np.ndarray, score: Scorer = scorer("dice")) -> Score:
    """Score (N, 256) foreground/background histograms at every cut by `score`; the best cut wins (lowest on ties)."""
    at_cut = counts_at_cuts(fg, bg)
    by_cut = score(at_cut)
    best = int(np.argmax(by_cut))
    chosen = Counts(at_cut.inter[:, best], at_cut.pred[:, best], at_cut.true[:, 0])
    return Score(float(by_cut[best]), float(chosen.image_dice().mean()), chosen.group_dice(groups),
                 cut_to_threshold(CUTS[best]))


@dataclass(frozen=True)
class OofSet:
    """Every model's OOF probabilities on the same images: `probs[name]` is one array per part.

    Parts are the folds (one memmap each); `masks` holds the matching truth and `groups`
    the patient of every image, parts concatenated; `scorer` is the declared score on them.
    """

    probs: Mapping[str, Sequence[np.ndarray]]
    masks: Sequence[np.ndarray]
    groups: np.ndarray
    labels: Labels = Labels()  # what the maps and masks hold; exclusive classes' blends go through `argmax_first`
    scorer: Scorer = scorer("dice")

    @property
    def names(self) -> list[str]:
        return sorted(self.probs)

    def blended(self, counts: AnyCounts, chunk: int = 256) -> Iterable[tuple[int, np.ndarray]]:
        """(part, blended uint8 chunk) over all parts, chunk by chunk (memmaps stay small in RSS); with
        exclusive classes, after `argmax_first`."""
        for part, truth in enumerate(self.masks):
            for start in range(0, len(truth), chunk):
                maps = blend_models(lambda n: self.probs[n][part][start:start + chunk], counts)
                yield part, self.labels.decided(maps)

    def score(self, counts: AnyCounts, chunk: int = 256, cls: int | None = None) -> Score:
        """The bag's Score: over every class (their mean), or of class `cls` alone."""
        per_class = [cls] if cls is not None else self.labels.indices()
        hists, part_start = {k: [] for k in per_class}, {}
        for part, maps in self.blended(counts, chunk):
            offset = part_start.setdefault(part, 0)
            truth = self.masks[part][offset:offset + len(maps)]
            for k in per_class:
                hists[k].append(probability_histograms(class_maps(maps, k), of_class(truth, k)))
            part_start[part] += len(maps)
        scores = [score_histograms(np.concatenate([h[0] for h in hists[k]]), np.concatenate([h[1] for h in hists[k]]),
                                   self.groups, self.scorer) for k in per_class]
        return Score.mean_of(scores) if self.labels.several and cls is None else scores[0]


@dataclass
class Selection:
    """The chosen bag (model -> times picked), its Score, each model's own, the steps taken (by declared score)."""

    counts: dict[str, int]
    score: Score
    singles: dict[str, Score]
    steps: list[dict] = field(default_factory=list)

    @property
    def weights(self) -> dict[str, float]:
        total = sum(self.counts.values())
        return {name: self.counts.get(name, 0) / total for name in sorted(self.singles)}


def select(names: Sequence[str], score: Callable[[Mapping[str, int]], Score], iterations: int) -> Selection:
    """Greedy forward selection with replacement over `names`, `iterations` steps; the best bag seen."""
    names = sorted(names)
    singles = {name: score({name: 1}) for name in names}
    if len(names) == 1:  # nothing to choose: one model, weight 1
        only = names[0]
        return Selection({only: 1}, singles[only], singles, [{"added": only, "score": singles[only].score}])
    bag: dict[str, int] = {}
    best_counts, best_score, steps = {}, None, []
    for _ in range(iterations):
        tried = {name: score({**bag, name: bag.get(name, 0) + 1}) if bag else singles[name] for name in names}
        added = max(names, key=lambda n: (tried[n].score, -names.index(n)))  # first by name on ties
        bag = {**bag, added: bag.get(added, 0) + 1}
        steps.append({"added": added, "score": tried[added].score})
        if best_score is None or tried[added].score > best_score.score:
            best_counts, best_score = dict(bag), tried[added]
    return Selection(best_counts, best_score, singles, steps)


def select_per_class(oof: OofSet, iterations: int) -> list[Selection]:
    """`select` once per class, each on that class's own OOF score; the models' `singles` stay their
    scores over every class."""
    singles = {name: oof.score({name: 1}) for name in oof.names}
    chosen = []
    for k in range(len(oof.labels.classes)):
        selection = select(oof.names, lambda counts, k=k: oof.score(counts, cls=k), iterations)
        chosen.append(dataclasses.replace(selection, singles=singles))
    return chosen


def model_oof(folds: pd.DataFrame, oof_dirs: dict[str, dict[int, Path]], masks_path: Path,
              labels: Labels = Labels(), metric: str = "dice") -> OofSet:
    """The OOF probabilities of every model (`oof_dirs[model][fold]`) for the blend search, fold by fold
    (with classes, (n, classes, H, W) maps against bit masks; exclusive classes: blended, then the argmax),
    scored by the declared `metric`."""
    masks = np.load(masks_path, mmap_mode="r")
    folds_trained = sorted(next(iter(oof_dirs.values())))
    probs = {name: [oof_files.read_fold(folds, k, dirs[k], masks)[1] for k in folds_trained]
             for name, dirs in oof_dirs.items()}
    rows = [np.flatnonzero(folds.fold.to_numpy() == k) for k in folds_trained]
    covered = np.concatenate(rows)
    return OofSet(probs, [masks[r] for r in rows], folds.group.astype(str).to_numpy()[covered], labels,
                  scorer(metric, patients(folds, covered)))


def write_blend(folds: pd.DataFrame, oof: OofSet, counts: AnyCounts, out_dirs: dict[int, Path]) -> None:
    """Write the blend of `oof` under `counts` as one OOF folder per fold (`out_dirs`), ids as in the folds file."""
    parts = sorted(out_dirs)
    writers = {}
    with contextlib.ExitStack() as stack:
        for part, k in enumerate(parts):
            ids = folds.id.astype(str).to_numpy()[folds.fold.to_numpy() == k]
            size = oof.labels.map_shape(oof.masks[part].shape[1:])
            writers[part] = [stack.enter_context(oof_files.writing(out_dirs[k], ids, size)), 0]
        for part, maps in oof.blended(counts):
            out, start = writers[part]
            out[start:start + len(maps)] = maps
            writers[part][1] = start + len(maps)
