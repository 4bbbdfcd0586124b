"""Inference from a bundle: the pipeline's own predict, blend, post-processing and submit code.

`segpipe.infer` (the notebook's command) and the bundle stage (which times it) both come
here, so the submission a notebook writes is made by the functions that wrote
`submissions/submit.csv.gz`: `predict_test` per model (the folds, the TTA views, the
sliding windows of tile mode), `Blend` with the tuned counts, the per-class rules read by
`read_rules`, and `write_submission`. Nothing here imports DVC, dvclive or albumentations.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from segpipe import datasets
from segpipe.bundle.manifest import BLEND, RULES, Manifest, Speed
from segpipe.cache.prepare import test_index
from segpipe.cache.tiles import Layout
from segpipe.core.errors import InputError
from segpipe.datasets import Competition

FAR_OVER = 1.5  # refuse to start when the projection is this many times the limit
_UNITS = {"h": 3600, "m": 60, "s": 1}


def parse_limit(text: str) -> float:
    """"9h", "1h30m", "90m" or "3600s" (or plain seconds) -> seconds; ValueError for anything else."""
    text = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"time limit {text!r}: write it as e.g. 9h, 1h30m, 90m or 3600s")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def duration(seconds: float) -> str:
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def test_set(manifest: Manifest, input_dir: Path, holdout: bool = False, work: Path | None = None) -> Competition:
    """The competition's test images as its adapter finds them in `input_dir` (read only); with
    `holdout`, the bundle's held-out patients instead, as the pipeline scored them."""
    dataset = manifest.dataset
    competition = datasets.read_in_place(dataset.name, Path(input_dir), unzip_dir=work, **dataset.options)
    if holdout and dataset.holdout_patients > 0:
        return datasets.hold_out_patients(competition, dataset.holdout_patients, dataset.seed)
    if competition.test.empty:
        raise InputError(f"{input_dir}: {dataset.name} has no test images there"
                         + ("" if holdout else " (for the pipeline's held-out patients, pass --holdout)"))
    return competition


@dataclass
class Projection:
    """The projected run time of the test set against a limit, from the bundle's speed, then the first images."""

    images: int
    limit: float | None
    folds: dict[str, int]  # folds per model: what an image costs, model by model

    def check_before(self, speed: Speed, device: str) -> str:
        """The projection from the images/s the bundle measured; InputError if it is far over the limit on
        the same kind of device (another device tells nothing until its first images)."""
        projected = speed.overhead_seconds + self.images / speed.images_per_second
        line = (f"{self.images} test images; at the {speed.images_per_second:.3g} images/s measured on "
                f"{speed.device} when the bundle was built: {duration(projected)} projected")
        if self.limit is not None:
            line += f" (limit {duration(self.limit)})"
            if projected > FAR_OVER * self.limit and speed.device_type == device:
                raise InputError(f"{line}: far over the limit; use fewer models or folds, or a faster device")
        return line

    def after(self, model: str, done: int, elapsed: float) -> str:
        """The projection for the whole test set from `done` images of the first model in `elapsed` s,
        and how long is left (no clock is read: the file written never depends on when it ran)."""
        per_fold_image = elapsed / done / self.folds[model]
        projected = per_fold_image * self.images * sum(self.folds.values())
        line = (f"after {done} images of {model}: {duration(projected)} projected for all {self.images}, "
                f"finishing in about {duration(max(0.0, projected - elapsed))}")
        if self.limit is not None:
            line += f" (limit {duration(self.limit)}{', over it' if projected > self.limit else ''})"
        return line


def predict(manifest: Manifest, competition: Competition, index: pd.DataFrame, work: Path, batch_size: int,
            workers: int, report: Callable[[str], None] = print, limit: float | None = None,
            check: str | None = None) -> dict[str, Path]:
    """Each model's test maps into `work`/<model>.npz, as `predict@<model>` writes them; their paths.

    With `check` (the device type), the projection is checked before the first model runs
    and reported after its first images.
    """
    from segpipe.inference.predict import predict_competition

    layout = Layout.read(manifest.root)
    folds = {name: len(entry.folds) for name, entry in manifest.models.items()}
    projection = Projection(len(index), limit, folds)
    if check is not None:
        report(projection.check_before(manifest.record.speed, check))
    paths, first = {}, True
    for name in manifest.models:
        paths[name] = Path(work) / f"{name}.npz"
        watch = _first_images(projection, name, report) if first and check is not None else None
        predict_competition(manifest.load_models(name), competition, index, layout, manifest.record.channels,
                            paths[name], batch_size, workers, on_map=watch)
        first = False
    return paths


def _first_images(projection: Projection, name: str, report: Callable[[str], None]) -> Callable[[int], None]:
    """A per-batch callback that reports the projection once, after the first batches (at least 8 images
    or 2 % of them), timed from the first batch so that loading the models and workers is not counted."""
    due = max(8, projection.images // 50)
    state: dict = {}

    def on_map(count: int) -> None:
        if "start" not in state:
            state.update(start=time.perf_counter(), first=count)
        elif not state.get("done") and count - state["first"] >= due:
            state["done"] = True
            report(projection.after(name, count - state["first"], time.perf_counter() - state["start"]))
    return on_map


def write(manifest: Manifest, competition: Competition, index: pd.DataFrame, probs: dict[str, Path], out: Path,
          compress: bool) -> None:
    """The submission from the models' maps, blended and post-processed as the pipeline's submit does."""
    from segpipe.submission.submit import write_tuned

    write_tuned(probs, manifest.path(BLEND), manifest.path(RULES), Layout.read(manifest.root).labels, index,
                competition.submission, out, compress=compress)


def infer(manifest: Manifest, input_dir: Path, out: Path, work: Path, *, batch_size: int, workers: int,
          holdout: bool = False, limit: float | None = None, report: Callable[[str], None] = print) -> int:
    """Predict the test images found in `input_dir` and write the plain CSV `out`; the number of images."""
    from segpipe.core.runtime import pick_device

    competition = test_set(manifest, input_dir, holdout, work)
    index = test_index(competition.test, max(1, workers))
    probs = predict(manifest, competition, index, work, batch_size, workers, report, limit, pick_device().type)
    write(manifest, competition, index, probs, out, compress=str(out).endswith(".gz"))
    return len(index)
