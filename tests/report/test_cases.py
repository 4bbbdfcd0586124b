import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from segpipe.cache.tiles import Layout
from segpipe.core.errors import InputError
from segpipe.evaluation import oof_files
from segpipe.evaluation.postprocess import Rule
from segpipe.report.cases import (
    BOTH,
    PRED,
    TRUTH,
    case_grid,
    case_panels,
    image_scores,
    oof_rows,
    pick_cases,
    predicted_mask,
    write_png,
)
from segpipe.report.charts import (
    TRAINING_CURVES,
    _spans_a_decade,
    chosen_point,
    fold_bar_chart,
    fold_curves,
    read_table,
    threshold_chart,
    training_curves_chart,
)

REPO = Path(__file__).resolve().parents[2]


def has_colour(image: np.ndarray, colour) -> bool:
    return bool(np.all(image == np.array(colour, np.uint8), axis=-1).any())


def square(size: int, top: int, left: int, side: int) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[top:top + side, left:left + side] = 1
    return mask


def test_pick_cases_best_median_worst_and_no_empty_on_empty():
    #                0    1    2    3    4    5    6    7    8    9
    dice = np.array([1.0, 0.9, 0.0, 0.5, 1.0, 0.7, 0.0, 0.3, 0.8, 1.0])
    truth = np.array([0, 10, 0, 20, 30, 20, 50, 20, 20, 0])
    pred = np.array([0, 10, 5, 20, 30, 20, 0, 20, 20, 0])
    cases = pick_cases(dice, truth, pred, per_group=2)
    assert cases["worst"].tolist() == [6, 2]  # both Dice 0: the larger miss first
    assert cases["best"].tolist() == [4, 1]  # 0 and 9 score 1 but are empty on empty
    assert cases["median"].tolist() == [3, 5]  # the middle of 7, 3, 5, 8 by Dice
    shown = np.concatenate(list(cases.values()))
    assert len(set(shown.tolist())) == len(shown) and not {0, 9} & set(shown.tolist())


def test_pick_cases_with_few_images_never_repeats_one():
    cases = pick_cases(np.array([0.2, 0.6, 1.0]), np.array([5, 5, 0]), np.array([5, 5, 0]), per_group=4)
    assert cases["worst"].tolist() == [0, 1] and len(cases["best"]) == 0 and len(cases["median"]) == 0


def test_the_drawn_prediction_is_the_one_the_dice_counts():
    rng = np.random.default_rng(0)
    probs = rng.integers(0, 256, (6, 16, 16), dtype=np.uint8)
    probs[2] = 0
    probs[2, :2, :2] = 200  # 4 pixels, under min area 5
    masks = (rng.random((6, 16, 16)) < 0.3).astype(np.uint8)
    rule = Rule(threshold=0.45, gate_threshold=0.45, gate_area=5, min_component=2)
    dice, truth, pred = image_scores(zip(probs, masks), rule)
    for i in range(6):
        drawn = predicted_mask(probs[i], rule)
        assert drawn.sum() == pred[i] and masks[i].sum() == truth[i]
        total = drawn.sum() + masks[i].sum()
        assert dice[i] == pytest.approx(2 * (drawn & masks[i]).sum() / total if total else 1.0)
    assert pred[2] == 0


def test_panels_draw_truth_prediction_and_overlap_upscaled():
    image = np.full((16, 16, 1), 90, np.uint8)  # gray images are shown as RGB
    truth = square(16, 2, 2, 8)
    prob = (square(16, 2, 6, 8) * 255).astype(np.uint8)  # shares the top edge with the truth
    panels = case_panels(image, truth, prob, Rule(), tile=48)
    assert panels.shape == (48, 3 * 48 + 2 * 6, 3)  # 16 px shown 3x, three panels
    overlay = panels[:, 54:102]
    assert has_colour(overlay, TRUTH) and has_colour(overlay, PRED) and has_colour(overlay, BOTH)
    assert not has_colour(panels[:, :48], TRUTH)  # the first panel is the bare image


def test_grid_shape_and_rows():
    n, size, tile = 5, 16, 48
    images = np.zeros((n, size, size, 3), np.uint8)
    masks = np.stack([square(size, 4, 4, 6)] * n)
    probs = (masks * 255).astype(np.uint8)
    cases = {"best": np.array([0, 1]), "median": np.array([2]), "worst": np.array([3, 4])}
    grid = case_grid(images, masks, probs, [f"p1_{i}" for i in range(n)], ["p1"] * n, np.ones(n), cases,
                     Rule(), tile=tile)
    case_width = 3 * tile + 2 * 6
    assert grid.dtype == np.uint8 and grid.shape == (54 + 3 * (tile + 38) + 2 * 12, 80 + 2 * case_width + 18, 3)
    assert has_colour(grid[54:], BOTH)  # the predictions match the truths


def test_grid_without_cases_is_just_the_header():
    empty = np.zeros((0, 16, 16), np.uint8)
    cases = {name: np.array([], int) for name in ("best", "median", "worst")}
    grid = case_grid(empty[..., None], empty, empty, [], [], np.zeros(0), cases, Rule())
    assert grid.shape[0] == 54 and grid.ndim == 3


def test_oof_rows_reads_each_row_from_its_fold(tmp_path):
    folds = pd.DataFrame({"id": list("abcde"), "group": list("ppqqr"), "fold": [1, 0, 1, 0, 1]})
    paths = {}
    for k in (0, 1):
        count = int((folds.fold == k).sum())
        paths[k] = tmp_path / f"fold{k}"
        with oof_files.writing(paths[k], folds.id[folds.fold == k], (2, 2)) as out:
            out[:] = np.arange(count, dtype=np.uint8)[:, None, None] + 10 * k
    assert oof_rows(folds, paths, np.array([4, 1, 0]))[:, 0, 0].tolist() == [12, 0, 10]


def test_pngs_are_byte_identical_and_carry_no_timestamp(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    for name in ("a", "b"):
        write_png(tmp_path / f"{name}.png", image)
        fold_bar_chart({"fold0": 0.9, "fold1": 0.7}, 0.8, tmp_path / f"{name}_bars.png",
                       images={"fold0": 3, "fold1": 4})
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    bars = (tmp_path / "a_bars.png").read_bytes()
    assert bars == (tmp_path / "b_bars.png").read_bytes() and bars.startswith(b"\x89PNG")
    assert b"tIME" not in bars and b"Software" not in bars
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "a.png"))[..., ::-1], image)
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def write_live(live: Path, fold: int, epochs: int = 3) -> None:
    """A tiny made-up dvclive folder: val Dice rising, losses falling, one val loss spike."""
    for name, column, _, _ in TRAINING_CURVES:
        path = live / f"fold{fold}" / "plots" / "metrics" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        values = [0.3 + 0.2 * e + 0.05 * fold for e in range(epochs)] if column == "dice" else \
                 [1.0 / (e + 1) + fold * 0.1 for e in range(epochs)]
        if name == "val/loss.tsv":
            values[1] = 100.0  # the spike a log scale keeps readable
        pd.DataFrame({"step": range(epochs), column: values}).to_csv(path, sep="\t", index=False)


def write_sweep(path: Path) -> pd.DataFrame:
    """A made-up plots/threshold.csv peaking at 0.55 (float steps, as np.arange gives)."""
    thresholds = [0.1 + 0.05 * i for i in range(17)]
    table = pd.DataFrame({"threshold": thresholds, "score": [0.9 - abs(t - 0.55) for t in thresholds],
                          "score_no_min_area": [0.88 - abs(t - 0.6) for t in thresholds]})
    table.to_csv(path, index=False)
    return table


def test_curves_are_drawn_for_the_given_folds_and_byte_identical(tmp_path):
    for k in (0, 1, 4):
        write_live(tmp_path / "dvclive", k)
    curves = fold_curves({f"fold{k}": tmp_path / "dvclive" / f"fold{k}" for k in (0, 1)})
    assert list(curves) == ["fold0", "fold1"]  # fold4 is on disk but not trained now: not drawn
    assert [list(t.columns) for t in curves["fold1"]] == [["step", "dice"], ["step", "loss"], ["step", "loss"]]
    assert curves["fold1"][2]["loss"].max() == 100.0
    for name in ("a", "b"):
        training_curves_chart(curves, tmp_path / f"{name}.png")
    png = (tmp_path / "a.png").read_bytes()
    assert png == (tmp_path / "b.png").read_bytes() and b"tIME" not in png and b"Software" not in png
    image = cv2.imread(str(tmp_path / "a.png"))
    assert image.shape[1] > 2 * image.shape[0]  # three panels side by side
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # lines, text and legend, not a blank canvas


def test_losses_get_a_log_scale_only_when_they_span_a_decade():
    assert _spans_a_decade(pd.Series([0.5, 100.0, 0.04]))  # a val loss spike
    assert not _spans_a_decade(pd.Series([0.69, 0.75]))  # a 1-epoch run reads better linear
    assert not _spans_a_decade(pd.Series([0.0, 5.0]))  # a log axis cannot show 0


def test_a_missing_fold_curve_is_an_input_error_naming_the_file(tmp_path):
    write_live(tmp_path / "dvclive", 0)
    with pytest.raises(InputError, match=r"dvclive/fold1/plots/metrics/val/dice\.tsv: not found"):
        fold_curves({f"fold{k}": tmp_path / "dvclive" / f"fold{k}" for k in (0, 1)})
    (tmp_path / "dvclive" / "fold0" / "plots" / "metrics" / "train" / "loss.tsv").write_text("step\tvalue\n0\t1\n")
    with pytest.raises(InputError, match=r"train/loss\.tsv: no column loss"):
        fold_curves({"fold0": tmp_path / "dvclive" / "fold0"})


def test_threshold_chart_marks_the_chosen_cut(tmp_path):
    sweep = write_sweep(tmp_path / "threshold.csv")
    table = read_table(tmp_path / "threshold.csv", ["threshold", "score"])
    best_t, best = chosen_point(table, 0.55)  # cv.json rounds; the csv may hold 0.5500000000000002
    assert best_t == pytest.approx(0.55) and best == pytest.approx(0.9) == sweep.score.max()
    with pytest.raises(InputError, match="no row at the chosen threshold 0.57"):
        chosen_point(table, 0.57)
    for name in ("a", "b"):
        threshold_chart(table, 0.55, 10, tmp_path / f"{name}.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    image = cv2.imread(str(tmp_path / "a.png"))[..., ::-1]
    red = (image[..., 0] > 180) & (image[..., 1] < 80) & (image[..., 2] < 80)  # matplotlib C3, the marker
    assert red.sum() > 50


def test_stage_end_to_end(tmp_path):
    rng = np.random.default_rng(2)
    n, size = 18, 16  # 6 patients of 3 slices, the first slice of each empty
    folds = pd.DataFrame({"id": [f"p{i // 3}_{i % 3}" for i in range(n)], "group": [f"p{i // 3}" for i in range(n)],
                          "fold": [(i // 3) % 2 for i in range(n)]})
    folds.to_csv(tmp_path / "folds.csv", index=False)
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    masks = np.stack([square(size, 3, 3, 4 + i % 5) if i % 3 else np.zeros((size, size), np.uint8) for i in range(n)])
    np.save(prepared / "train_images.npy", rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8))
    np.save(prepared / "train_masks.npy", masks)
    Layout("resize", (size, size)).write(prepared)
    for k in (0, 1):
        rows = folds.fold.to_numpy() == k
        noisy = masks[rows] * 200 + rng.integers(0, 60, (int(rows.sum()), size, size))
        with oof_files.writing(tmp_path / "blend" / f"fold{k}", folds.id[rows], (size, size)) as out:
            out[:] = noisy.astype(np.uint8)
    cv = {"metric": "dice", "dice": 0.8, "search": [{"step": "threshold and gate area", "gate_area": 5}],
          "folds": {"fold0": {"dice": 0.9}, "fold1": {"dice": 0.7}}}
    (tmp_path / "cv.json").write_text(json.dumps(cv))
    Rule(0.5, 0.5, 5).write(tmp_path / "rule.json")
    (tmp_path / "params.yaml").write_text("folds:\n  n_splits: 2\n  train: [0, 1]\n")
    for k in (0, 1):
        write_live(tmp_path / "dvclive" / "unet", k)
    write_sweep(tmp_path / "threshold.csv")
    cmd = [sys.executable, str(REPO / "stages" / "report.py"), "--folds", "folds.csv", "--prepared", "prepared",
           "--oof", "blend", "--cv", "cv.json", "--rule", "rule.json", "--cases", "plots/oof_cases.png",
           "--bars", "plots/fold_dice.png",
           "--live", "dvclive", "--threshold_csv", "threshold.csv", "--curves", "plots/curves.png",
           "--threshold_png", "plots/threshold.png"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    cases = cv2.imread(str(tmp_path / "plots" / "oof_cases.png"))
    bars = cv2.imread(str(tmp_path / "plots" / "fold_dice.png"))
    assert cases is not None and bars is not None
    assert cv2.imread(str(tmp_path / "plots" / "curves.png")) is not None
    assert cv2.imread(str(tmp_path / "plots" / "threshold.png")) is not None
    assert cases.shape[0] == 54 + 3 * (192 + 38) + 2 * 12  # best, median, worst rows of 16 px shown 12x
    assert "4 best, 4 median, 4 worst" in done.stdout


def test_stage_names_a_missing_fold_curve_and_fails_fast(tmp_path):
    (tmp_path / "params.yaml").write_text("folds:\n  n_splits: 2\n  train: [0, 1]\n")
    (tmp_path / "cv.json").write_text(json.dumps({"search": [{"gate_area": 0}]}))
    Rule().write(tmp_path / "rule.json")
    write_live(tmp_path / "dvclive" / "unet", 0)
    cmd = [sys.executable, str(REPO / "stages" / "report.py"), "--folds", "folds.csv", "--prepared", "prepared",
           "--oof", "blend", "--cv", "cv.json", "--rule", "rule.json", "--cases", "c.png", "--bars", "b.png", "--live", "dvclive",
           "--threshold_csv", "threshold.csv", "--curves", "curves.png", "--threshold_png", "t.png"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "dvclive/unet/fold1/plots/metrics/val/dice.tsv: not found" in done.stderr
