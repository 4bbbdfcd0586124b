"""The generic patient holdout (datasets.load) and its local scoring (submit.score_holdout)."""
import dataclasses
import gzip

import numpy as np
import pytest

from segpipe import datasets, rle
from segpipe.core.errors import InputError
from segpipe.evaluation.holdout import score_holdout


def test_holdout_moves_whole_patients_and_is_seeded(raw_dir):
    held = datasets.load("synthetic", raw_dir, holdout_patients=0.34, seed=3)
    assert set(held.train.group).isdisjoint(held.test.group)
    assert held.test.group.nunique() == 2 and {"mask", "group"} <= set(held.test.columns)
    assert held.submission.sample_submission is None and held.submission.competition is None
    again = datasets.load("synthetic", raw_dir, holdout_patients=0.34, seed=3)
    assert again.test.id.tolist() == held.test.id.tolist()


def test_a_dataset_without_test_set_needs_a_holdout(competition, monkeypatch):
    empty = dataclasses.replace(competition, test=competition.test.iloc[:0])
    monkeypatch.setattr("segpipe.datasets.adapters.synthetic.load", lambda root, **_: empty)
    with pytest.raises(InputError, match="synthetic.holdout_patients"):
        datasets.load("synthetic", "unused")


def write(path, held, masks):
    spec = held.submission
    rows = [f"{i},{rle.encode(m, order=spec.rle_order)}" for i, m in zip(held.test.id, masks)]
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join([f"{spec.id_column},{spec.rle_column}", *rows]) + "\n")


def test_holdout_score_is_one_for_the_truth_and_the_empty_share_for_nothing(raw_dir, tmp_path):
    held = datasets.load("synthetic", raw_dir, holdout_patients=0.34, seed=3)
    truth = [held.read_mask(path) for path in held.test["mask"]]
    write(tmp_path / "perfect.csv.gz", held, truth)
    perfect = score_holdout(tmp_path / "perfect.csv.gz", held)
    assert {key: perfect[key] for key in ("dice", "patient_dice", "images", "patients")} == {
        "dice": 1.0, "patient_dice": 1.0, "images": len(truth), "patients": 2}
    assert perfect["lost"] == {"false_positive": 0.0, "missed": 0.0, "boundary": 0.0}
    assert perfect["patients_lost"]["poor"] == 0
    write(tmp_path / "empty.csv.gz", held, [np.zeros_like(m) for m in truth])
    score = score_holdout(tmp_path / "empty.csv.gz", held)
    assert score["dice"] == pytest.approx(np.mean([not m.any() for m in truth]))
    assert score["lost"]["missed"] == pytest.approx(np.mean([m.any() for m in truth]))  # every lesion missed
