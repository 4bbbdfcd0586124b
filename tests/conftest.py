"""Shared fixtures: a tiny synthetic competition and its prepared cache, made per session."""
from __future__ import annotations

from pathlib import Path

import pytest

from segpipe import datasets
from segpipe.cache.prepare import prepare_competition

TINY = dict(seed=7, train_patients=6, test_patients=2, slices_per_patient=10, height=40, width=48)
TINY_SIZE = (32, 32)


@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw") / "synthetic"
    datasets.download("synthetic", root, **TINY)
    return root


@pytest.fixture(scope="session")
def competition(raw_dir):
    return datasets.load("synthetic", raw_dir)


@pytest.fixture(scope="session")
def prepared_dir(competition, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "prepared"
    prepare_competition(competition, out, TINY_SIZE, workers=2)
    return out
