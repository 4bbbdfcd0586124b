"""Shared fixtures: a tiny synthetic competition and its prepared cache, made per session (per worker)."""
from __future__ import annotations

import os
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):  # before torch: one thread a worker, the stages' subprocesses included,
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # so that the workers share the cores instead of fighting

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
