"""Write and validate the run-length-encoded submission, streaming, in submission order.

Each test probability map is resized back to its original size, post-processed by the rule
tuned out of fold (`segpipe.evaluation.postprocess`), and encoded in the competition's pixel order. A
process pool encodes the rows a fixed number at a time and compresses each such chunk into
its own gzip member (mtime 0, no file name); the parent only appends the members in
submission order (a concatenation of gzip members is one gzip file, RFC 1952 section 2.2), a
bounded number in flight. So the same inputs give the same bytes whatever the number of
workers, the compression scales with them, and memory does not grow with the test set.
"""
from __future__ import annotations

import collections
import gzip
import json
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from segpipe import rle
from segpipe.core.errors import InputError
from segpipe.core.labels import Labels
from segpipe.core.runtime import atomic_path
from segpipe.datasets import SubmissionSpec
from segpipe.evaluation import postprocess
from segpipe.evaluation.blend import AnyCounts, blend_models, read_counts
from segpipe.evaluation.force_top import apply_classes
from segpipe.evaluation.postprocess import Rule
from segpipe.inference.probmaps import count_maps, map_ids, read_map
from segpipe.submission.validate import row_labels, validate_submission


def probability_to_mask(prob: np.ndarray, height: int, width: int, rule: Rule, trained: int | None = None) -> np.ndarray:
    """Resize a uint8 probability map to (height, width) and apply the post-processing `rule`.

    The rule's areas are in training-size pixels (it was tuned on the OOF maps), so they are
    scaled by the pixel-count ratio at the original size; `trained` is that size's pixel
    count when `prob` is already resized.
    """
    scale = (height * width) / (trained or prob.size)
    return postprocess.apply(_resized(prob, height, width), rule, area_scale=scale)


def _resized(prob: np.ndarray, height: int, width: int) -> np.ndarray:
    if prob.shape == (height, width):
        return prob
    return cv2.resize(prob, (width, height), interpolation=cv2.INTER_LINEAR)


def _encode_row(row: int, *, blend: Blend, heights: np.ndarray, widths: np.ndarray, rules: list[Rule],
                order: str, force_top: bool = False, instances: bool = False) -> list[str]:
    """The RLE of test map `row`: one, one per class (each under its own rule) for a (C, H, W) map, or
    with `instances` one per connected component of the mask."""
    prob = blend.read(row)
    if not blend.labels.several:
        mask = probability_to_mask(prob, int(heights[row]), int(widths[row]), rules[0])
        return instance_rles(mask, order) if instances else [rle.encode(mask, order=order)]
    height, width, trained = int(heights[row]), int(widths[row]), prob[0].size
    # exclusive classes: the argmax at the original size, so that resizing cannot overlap two classes' edges
    maps = list(blend.labels.decided(np.stack([_resized(p, height, width) for p in prob])))
    masks = apply_classes(maps, rules, force_top, area_scale=height * width / trained)
    return [rle.encode(mask, order=order) for mask in masks]


def instance_rles(mask: np.ndarray, order: str) -> list[str]:
    """The RLE of each 8-connected component of `mask`, in label order (the first pixel met row by row)."""
    labels, areas = postprocess.components(mask)
    return [rle.encode(labels == k, order=order) for k in range(1, len(areas) + 1)]


def row_lines(image_id: str, encoded: list[str], spec: SubmissionSpec, labels: list[str]) -> str:
    """The submission lines of one test image: `id,rle`, with `labels` one line per class in the spec's
    columns, or for instance rows one `id,rle` per instance (one `id,` when there is none)."""
    if spec.rows == "instance":
        return "".join(f"{image_id},{code}\n" for code in encoded or [""])
    if not labels:
        return f"{image_id},{encoded[0]}\n"
    lines = []
    for label, code in zip(labels, encoded, strict=True):
        fields = {spec.id_column: spec.id_format.format(id=image_id, label=label), spec.rle_column: code}
        if spec.class_column:
            fields[spec.class_column] = label
        lines.append(",".join(fields[column] for column in spec.header()) + "\n")
    return "".join(lines)


@dataclass(frozen=True)
class Blend:
    """The models' test probabilities (.npz paths) and their blend counts (`segpipe.evaluation.blend`)."""

    probs: dict[str, Path]
    counts: AnyCounts  # one bag, or one per class (`blend.per_class`)
    labels: Labels = Labels()  # (C, H, W) maps of classes; exclusive ones are resized, then `argmax_first`, then cut

    def models(self) -> set[str]:
        """The models some bag picks: the only maps read."""
        bags = [self.counts] if isinstance(self.counts, Mapping) else self.counts
        return {name for bag in bags for name, count in bag.items() if count}

    def read(self, row: int) -> np.ndarray:
        """Test map `row`, blended exactly as the OOF maps the rule was tuned on."""
        return blend_models(lambda name: read_map(self.probs[name], row), self.counts)


# Rows per gzip member: fixed, so the bytes do not depend on the number of workers. 32 rows
# (~300 KB of text at Carvana size) are far more than deflate's 32 KB window, so restarting it
# per member costs ~1% in size; and 4 chunks per worker in flight stay a few MB.
ROWS_PER_MEMBER = 32

_job: dict = {}  # in a pool worker: the ids, and _encode_row's arguments but the row; set once, not sent per task


def _start_worker(ids: list, job: dict, spec: SubmissionSpec, labels: list[str], compress: bool = True) -> None:
    _job.update(ids=ids, encode=job, spec=spec, labels=labels, compress=compress)


def _encode_member(rows: range) -> bytes:
    """The submission lines of `rows`, encoded and compressed into one complete gzip member (plain
    utf-8 text when the file is not compressed)."""
    ids, job = _job["ids"], _job["encode"]
    pack = gzip_member if _job["compress"] else _plain
    return pack("".join(row_lines(ids[row], _encode_row(row, **job), _job["spec"], _job["labels"])
                               for row in rows))


def _plain(text: str) -> bytes:
    return text.encode("utf-8")


def gzip_member(text: str) -> bytes:
    """`text` (utf-8) as one complete gzip member whose bytes depend on `text` alone (mtime 0, no name)."""
    return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)


def _encoded_members(pool, count: int, workers: int) -> Iterator[tuple[range, bytes]]:
    """(rows, gzip member) for rows 0..count-1 in order, made by `pool` with at most 4 chunks per worker in flight.

    Pool.imap keeps every finished chunk until the consumer takes it, so its buffer would
    grow with the test set whenever the workers outrun the writer.
    """
    pending = collections.deque()
    for start in range(0, count, ROWS_PER_MEMBER):
        rows = range(start, min(start + ROWS_PER_MEMBER, count))
        pending.append((rows, pool.apply_async(_encode_member, (rows,))))
        if len(pending) > 4 * workers:
            rows, member = pending.popleft()
            yield rows, member.get()
    while pending:
        rows, member = pending.popleft()
        yield rows, member.get()


def write_submission(blend: Blend | Path, test_index: pd.DataFrame, spec: SubmissionSpec, rule: Rule | list[Rule],
                     out_path: Path, workers: int = 0, force_top: bool = False,
                     compress: bool = True) -> None:
    """Write `out_path` (.csv.gz; a plain .csv when not `compress`) with one row per `test_index` row
    (its order), then validate it.

    test_index has columns id, height, width (original sizes) in submission order, matching
    the maps of each model's probabilities .npz in `blend` (see `probmaps`), or of the one
    .npz that `blend` names. With classes (`blend.labels`), the maps are (C, H, W), `rule` is one rule per
    class, and each image has a row per class, in class order (`row_lines`); `force_top` is the
    rule file's (`segpipe.evaluation.force_top`). Masks are written at the original size, or at
    the spec's `mask_size` (Understanding Clouds': 350 x 525) when it has one.
    """
    rules = list(rule) if isinstance(rule, (list, tuple)) else [rule]
    if not isinstance(blend, Blend):
        blend = Blend({"model": Path(blend)}, {"model": 1})
    for name, path in sorted(blend.probs.items()):
        if name not in blend.models():
            continue
        n_probs, ids = count_maps(path), map_ids(path)
        if n_probs != len(test_index):
            raise InputError(f"{path}: {n_probs} probability maps for the {len(test_index)} test images of the "
                             f"prepared index; it is stale: rerun `dvc repro predict@{name}`")
        if ids is not None and ids != test_index.id.astype(str).tolist():
            first = next(i for i, (a, b) in enumerate(zip(ids, test_index.id.astype(str))) if a != b)
            raise InputError(f"{path}: map {first} is of image {ids[first]}, but test image {first} of the prepared "
                             f"index is {test_index.id.iloc[first]}; it is stale: rerun `dvc repro predict@{name}`")
    if spec.mask_size:
        test_index = test_index.assign(height=spec.mask_size[0], width=spec.mask_size[1])
    job = dict(blend=blend, heights=test_index.height.to_numpy(), widths=test_index.width.to_numpy(),
               rules=rules, order=spec.rle_order, force_top=force_top, instances=spec.rows == "instance")
    labels = row_labels(spec, blend.labels.classes)
    workers = workers or os.cpu_count() or 1
    with atomic_path(out_path) as tmp:
        _write_members(tmp, ",".join(spec.header()) + "\n", test_index.id.tolist(), job, workers, (spec, labels),
                       compress)
        # Read back what is on disk: the check covers the bytes that get published, not the workers' strings.
        sizes = dict(zip(test_index.id.astype(str), test_index.height * test_index.width))
        validate_submission(tmp, spec, sizes, labels)


def _write_members(path: Path, header: str, ids: list, job: dict, workers: int, lines: tuple,
                   compress: bool = True) -> None:
    """Write `path`: the `header` line's gzip member, then those of the rows of `ids`, in order (or
    the same lines as plain text when not `compress`)."""
    fork = multiprocessing.get_context("fork")
    with (open(path, "wb") as raw, fork.Pool(workers, _start_worker, (ids, job, *lines, compress)) as pool,
          tqdm(total=len(ids), desc="submit") as progress):
        raw.write(gzip_member(header) if compress else _plain(header))
        for rows, member in _encoded_members(pool, len(ids), workers):
            raw.write(member)
            progress.update(len(rows))


def write_tuned(probs: dict[str, Path], blend_file: Path, rule_file: Path, labels: Labels, test_index: pd.DataFrame,
                spec: SubmissionSpec, out_path: Path, compress: bool = True) -> tuple[Blend, list[Rule], bool]:
    """The submission from the models' test maps `probs`, blended and post-processed exactly as tuned out of
    fold (the blend stage's json, the threshold stage's rule file): what the submit stage and the offline
    bundle both write. Returns the blend, the rules and whether the top class was forced on."""
    rules = postprocess.read_rules(rule_file, labels)
    blend = Blend(probs, read_counts(json.loads(Path(blend_file).read_text()), labels), labels)
    force_top = postprocess.read_force_top(rule_file)  # every image labelled: the top class forced on
    write_submission(blend, test_index, spec, rules, out_path, force_top=force_top, compress=compress)
    return blend, rules, force_top
