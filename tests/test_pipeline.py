"""End to end: the real `dvc repro` on a shrunken copy of this repo."""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pandas as pd
import pytest
from dvc_repo import SMALL, edit_params, make_repo, ran_stages, run, run_failing, stale_stages

from segpipe import datasets, rle
from segpipe.inference.probmaps import count_maps

# Two tiny models: a U-Net as in SMALL, and an FPN (smp's own decoder) for a second architecture
MODELS = {"models": {"unet": {}, "fpn": {"arch": "FPN", "encoder_depth": 5, "decoder_channels": [8, 8, 8, 8, 8]}}}
TRAINED = {f"train@{m}-{k}" for m in ("unet", "fpn") for k in (0, 1)}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("repo"), MODELS)


@pytest.fixture(scope="module")
def first_run(repo) -> str:
    return run(["dvc", "repro"], repo)


# Outputs that must be byte-identical whenever params and code are: not models/*.pt (a pickle
# may differ in bytes while holding the same weights) nor dvclive/ (it records timestamps).
REPRODUCIBLE = ("data/prepared/*", "data/folds.csv", "preds/*/test.npz", "metrics/*.json", "metrics/*/*.json",
                "blend/*/*", "submissions/submit.csv.gz", "plots/*.png")


def digests(repo: Path) -> dict[str, str]:
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
            for pattern in REPRODUCIBLE for p in sorted(repo.glob(pattern)) if p.is_file()}


@pytest.fixture(scope="module")
def first_digests(repo, first_run) -> dict[str, str]:
    """Taken by the first test, before any test changes a param."""
    return digests(repo)


def test_repro_runs_every_stage_and_writes_a_valid_submission(repo, first_run, first_digests):
    assert ran_stages(first_run) == {"source", "download", "fingerprint", "device", "plan", "prepare", "folds",
                                     *TRAINED, "predict@unet", "predict@fpn", "blend", "threshold", "submit",
                                     "report", "bundle"}
    sample = pd.read_csv(repo / "data/raw/synthetic/sample_submission.csv", dtype=str)
    submission = pd.read_csv(repo / "submissions/submit.csv.gz", dtype=str, keep_default_na=False)
    assert list(submission.columns) == ["img", "rle_mask"]
    assert submission.img.tolist() == sample.img.tolist()
    for encoded in submission.rle_mask:
        assert rle.decode(encoded, (40, 48), order="F").shape == (40, 48)


def test_metrics_and_plots_are_there(repo, first_run):
    cv = json.loads((repo / "metrics/cv.json").read_text())
    assert set(cv["folds"]) == {"fold0", "fold1"} and 0 <= cv["dice"] <= 1
    assert cv["rule"]["threshold"] in [round(c / 255, 6) for c in range(1, 256)]  # every uint8 cut is searched
    assert json.loads((repo / "metrics/postprocess.json").read_text()) == cv["rule"]  # what submit applies
    for model in ("unet", "fpn"):
        for k in (0, 1):
            assert set(json.loads((repo / f"metrics/{model}/fold{k}.json").read_text())) >= {"val_dice", "oof_dice"}
            assert pd.read_csv(repo / f"oof/{model}/fold{k}/ids.csv").id.tolist() == \
                pd.read_csv(repo / "data/folds.csv").query("fold == @k").id.tolist()
        assert count_maps(repo / f"preds/{model}/test.npz") == len(pd.read_csv(repo / "data/prepared/test.csv"))
    blend = json.loads((repo / "metrics/blend.json").read_text())
    assert set(cv["models"]) == set(cv["weights"]) == {"unet", "fpn"}
    assert sum(cv["weights"].values()) == pytest.approx(1) and min(cv["weights"].values()) >= 0
    assert blend["dice"] >= max(score["dice"] for score in blend["models"].values())  # never below the best model
    shown = run(["dvc", "metrics", "show", "--json"], repo)
    assert "fpn/fold1.json" in shown and "cv.json" in shown and "blend.json" in shown and "plan.json" in shown
    assert set(cv["baselines"]) >= {"empty_dice", "full_dice", "empty_patient_dice"}
    assert sum(cv["lost"].values()) == pytest.approx(1 - cv["dice"])
    groups = pd.read_csv(repo / "data/folds.csv", dtype=str).group.nunique()
    assert cv["patients_lost"]["patients"] == groups and len(cv["patients_lost"]["worst"]) == min(5, groups)
    run(["dvc", "plots", "show", "--json"], repo)
    assert not (repo / "data/prepared/test_images.npy").exists()  # predict read the test images from the raw files


def test_second_repro_runs_nothing_and_dvc_status_is_clean(repo, first_run):
    assert ran_stages(run(["dvc", "repro"], repo)) == set()
    assert "Data and pipelines are up to date" in run(["dvc", "status"], repo)
    run(["dvc", "status", "-q"], repo)  # exit status 0: nothing to reproduce


def test_another_device_is_a_change_the_plan_sees(repo, first_run):
    """data/device.json is a dep of the plan: a T4's description makes it stale and plans resnet34 for it;
    this machine's description, rewritten by the device stage at the next repro, changes nothing."""
    plan_files = {path: path.read_bytes() for path in sorted((repo / "data/plan").rglob("*.json"))}
    t4 = {"kind": "cuda", "cpu_cores": 4, "name": "Tesla T4", "memory_gib": 14.7, "count": 1, "bf16": False}
    (repo / "data/device.json").unlink()  # a new file, as the device stage writes one: the old may be a cache link
    (repo / "data/device.json").write_text(json.dumps(t4))
    assert stale_stages(run(["dvc", "status", "plan"], repo)) == {"plan"}
    run(["dvc", "repro", "--single-item", "plan"], repo)
    planned = json.loads((repo / "data/plan.json").read_text())
    assert planned["device"]["name"] == "Tesla T4" and planned["models"]["unet"]["encoder_name"] == "resnet34"
    run(["dvc", "repro", "plan"], repo)  # the device stage describes this machine: its plan (from DVC's run cache)
    assert {path: path.read_bytes() for path in plan_files} == plan_files
    assert not stale_stages(run(["dvc", "status"], repo))


def test_same_params_and_code_give_the_same_bytes(first_digests, tmp_path):
    """A second checkout, at another path, reproduces the folds, metrics and submission byte for byte (CPU)."""
    again = make_repo(tmp_path / "again", MODELS)
    run(["dvc", "repro"], again)
    assert {"submissions/submit.csv.gz", "data/folds.csv", "metrics/cv.json"} <= set(first_digests)
    assert digests(again) == first_digests


def test_python_bytecode_beside_the_sources_changes_no_stage(repo, first_run):
    """Python writes __pycache__/ into the library folders that stages depend on; .dvcignore skips it."""
    before = run(["dvc", "status"], repo)
    cache = repo / "src/segpipe/datasets/__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "stray.cpython-311.pyc").write_bytes(b"not code")
    assert run(["dvc", "status"], repo) == before


def test_a_threshold_param_reruns_only_threshold_submit_report_and_bundle(repo, first_run):
    edit_params(repo, {"threshold": {"gate_areas": [0, 5, 10]}})
    ran = ran_stages(run(["dvc", "repro"], repo))
    # the plan writes the grids for threshold alone; submit, report and bundle follow only if the rule changed
    assert {"plan", "threshold"} <= ran <= {"plan", "threshold", "submit", "report", "bundle"}


def stale_after_the_plan(repo: Path, changes: dict) -> set[str]:
    """The stages a `dvc repro` would run first after `changes` once the plan has taken them in (a plan-only
    repro, then `dvc status`: what follows them reruns when their outputs change). params.yaml is put back and
    planned again after, which leaves the pipeline as it was, with nothing stale."""
    params = (repo / "params.yaml").read_text()
    try:
        edit_params(repo, changes)
        assert "plan" in stale_stages(run(["dvc", "status"], repo))
        assert ran_stages(run(["dvc", "repro", "plan"], repo)) == {"plan"}
        stale = stale_stages(run(["dvc", "status"], repo))
    finally:
        (repo / "params.yaml").write_text(params)
    run(["dvc", "repro", "plan"], repo)
    assert not stale_stages(run(["dvc", "status"], repo))
    return stale


def test_a_train_param_replans_and_retrains_but_never_prepares(repo, first_run):
    assert stale_after_the_plan(repo, {"train": {**SMALL["train"], "lr": 0.004}}) == TRAINED  # never prepare, folds


def test_one_models_param_retrains_that_model_alone(repo, first_run):
    """models.fpn.lr: fpn's folds (then its test probabilities, the blend and what follows); never the U-Net.
    blend, submit, report and bundle read the `models` section (which models there are) as a param."""
    changes = {"models": {**MODELS["models"], "fpn": {**MODELS["models"]["fpn"], "lr": 0.0007}}}
    fpn = {"train@fpn-0", "train@fpn-1"}
    assert fpn <= stale_after_the_plan(repo, changes) <= fpn | {"blend", "submit", "report", "bundle"}


def test_a_users_folder_without_test_set_is_held_out_and_scored(tmp_path):
    """base.dataset=folder: the user's files, patients from a regex, a scored holdout, TGS Salt's metric."""
    source = tmp_path / "mine"
    datasets.download("synthetic", source, seed=1, **SMALL["synthetic"])
    folder = {"source": str(source), "train_images": "train/*.png", "mask": "../train_masks/{stem}_mask.png",
              "group_regex": r"^(p\d+)_", "metric": "iou_hits"}
    repo = make_repo(tmp_path / "repo", {"base": {"dataset": "folder"}, "folder": folder})
    ran = ran_stages(run(["dvc", "repro"], repo))
    assert "submit" in ran and "train@unet-1" in ran
    holdout = json.loads((repo / "metrics/holdout.json").read_text())
    assert holdout["patients"] == 1 and holdout["images"] == SMALL["synthetic"]["slices_per_patient"]
    assert 0 <= holdout["dice"] <= 1
    cv = json.loads((repo / "metrics/cv.json").read_text())
    assert holdout["metric"] == cv["metric"] == "iou_hits" and 0 <= holdout["score"] <= 1  # searched and scored on it
    assert sum(holdout["lost"].values()) == pytest.approx(1 - holdout["dice"])
    assert holdout["patients_lost"]["worst"][0]["dice"] == pytest.approx(holdout["patient_dice"])  # one patient
    submission = pd.read_csv(repo / "submissions/submit.csv.gz", dtype=str, keep_default_na=False)
    assert list(submission.columns) == ["id", "rle_mask"]
    assert submission.id.str.extract(r"^(p\d+)_")[0].nunique() == 1


def test_queued_experiments_run_and_compare(repo, first_run):
    """`dvc exp run --queue` + `dvc queue start`: how folds or settings run side by side."""
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline"], repo)
    run(["dvc", "exp", "run", "--queue", "--name", "wide-gate", "-S", "threshold.gate_areas=[0,5,20]"], repo)
    run(["dvc", "queue", "start", "-j", "1"], repo)
    deadline = time.monotonic() + 600
    while "Success" not in (status := run(["dvc", "queue", "status"], repo)):
        assert "Failed" not in status, run(["dvc", "queue", "logs", "wide-gate"], repo)
        assert time.monotonic() < deadline, status
        time.sleep(2)
    shown = run(["dvc", "exp", "show", "--csv"], repo)
    header, *rows = shown.splitlines()
    assert "dice" in header and any("wide-gate" in row and "[0, 5, 20]" in row for row in rows)
    run(["dvc", "queue", "stop"], repo)


def test_a_second_machine_reuses_the_first_ones_results(repo, first_run, tmp_path):
    """A shared DVC remote: push from one checkout, pull into another, and nothing reruns."""
    run(["dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote")], repo)
    run(["dvc", "push"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "results"], repo)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    run(["dvc", "pull"], clone)
    assert ran_stages(run(["dvc", "repro"], clone)) == set()
    assert (clone / "submissions/submit.csv.gz").read_bytes() == (repo / "submissions/submit.csv.gz").read_bytes()


# Last in this module: each changes a param, fails, and puts params.yaml back, but the failed stage's outputs are gone.

def test_an_unknown_dataset_is_segpipes_error_naming_the_ones_there_are(repo, first_run):
    """`make run` indexes the source first (`dvc repro -f -s source device`): segpipe's error, naming the datasets.
    A plain `dvc repro` checks the source stage's params first: DVC's error, naming the missing section."""
    params = (repo / "params.yaml").read_text()
    try:
        edit_params(repo, {"base": {"dataset": "nopeset"}})
        failed = run_failing(["dvc", "repro", "-f", "-s", "source", "device"], repo)
        plain = run_failing(["dvc", "repro"], repo)
    finally:
        (repo / "params.yaml").write_text(params)
    assert "error: params.yaml: base.dataset: Value error, unknown dataset 'nopeset'; choose one of carvana, clouds" in failed, failed
    assert "'nopeset' are missing from 'params.yaml'" in plain, plain


def test_a_failed_plan_keeps_the_plan_json_that_git_tracks(repo, first_run):
    before = (repo / "data/plan.json").read_bytes()
    params = (repo / "params.yaml").read_text()
    try:
        edit_params(repo, {"models": {"unet": {"encoder_name": "resnet19"}}})
        failed = run_failing(["dvc", "repro", "plan"], repo)
    finally:
        (repo / "params.yaml").write_text(params)
    assert "error: models.unet: " in failed and "resnet19" in failed, failed
    assert (repo / "data/plan.json").read_bytes() == before
