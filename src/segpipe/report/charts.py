"""Training and threshold curves drawn as PNGs, so they show without internet.

`dvc plots show` renders tsv/csv plots with vega, which the HTML loads from a CDN: offline
only the images show. The report stage therefore also draws, with matplotlib:

- `curves.png`: per trained fold, val Dice, train loss and val loss per epoch, read from the
  fold's dvclive folder (`<live>/fold<k>/plots/metrics/...`). The folds are the ones given
  (params folds.train), never whatever folders happen to be on disk: a fold left over from
  an earlier, larger `folds.train` is not drawn. Losses use a log scale: val loss can spike
  by two orders of magnitude in one epoch, which flattens every other epoch on a linear axis
  (a loss panel whose values span less than a decade, as in a short run, stays linear).
- `threshold.png`: OOF Dice against threshold (plots/threshold.csv, at the chosen min area,
  and with no min area), the chosen cut from metrics/cv.json marked.

The PNGs carry no timestamps nor matplotlib version: identical inputs give identical bytes.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from segpipe.core.errors import InputError
from segpipe.core.runtime import atomic_path

# (file under <live>/fold<k>/plots/metrics, its value column, panel title, log y-scale if wide)
TRAINING_CURVES = (
    ("val/dice.tsv", "dice", "val Dice", False),
    ("train/loss.tsv", "loss", "train loss", True),
    ("val/loss.tsv", "loss", "val loss", True),
)

SCORE_LABELS = {"dice": "mean per-image Dice", "patient_dice": "mean per-patient Dice (pixels pooled)",
                "dice_hausdorff": "mean per-image Dice (the Dice the search maximises)",
                "iou_hits": "mean per-image share of IoU thresholds 0.5:0.95 hit",
                "object_f2": "per-image IoU thresholds hit (the pixel stand-in of object F2)",
                "object_ap": "per-image IoU thresholds hit (the pixel stand-in of object mAP)"}


def pyplot():
    """matplotlib's pyplot on the Agg backend (stages run headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path | str) -> None:
    """Write a matplotlib figure as PNG, atomically, and close it."""
    with atomic_path(path) as tmp:
        # no "Software" entry (the matplotlib version) and no date: same inputs, same bytes
        fig.savefig(tmp, format="png", metadata={"Software": None})
    pyplot().close(fig)


def read_table(path: Path, columns: list[str], sep: str = ",") -> pd.DataFrame:
    """A tsv/csv table with at least `columns`; a missing file or column is an InputError."""
    if not path.is_file():
        raise InputError(f"{path}: not found; rerun the stage that writes it (dvc repro)")
    table = pd.read_csv(path, sep=sep)
    missing = [name for name in columns if name not in table.columns]
    if missing:
        raise InputError(f"{path}: no column {', '.join(missing)} (has {', '.join(map(str, table.columns))})")
    return table


def fold_curves(runs: dict[str, Path]) -> dict[str, list[pd.DataFrame]]:
    """Per run (label -> its dvclive folder), its (step, value) tables in TRAINING_CURVES order."""
    curves = {}
    for label, live in runs.items():
        metrics = Path(live) / "plots" / "metrics"
        curves[label] = [read_table(metrics / name, ["step", column], sep="\t")
                         for name, column, _, _ in TRAINING_CURVES]
    return curves


def training_curves_chart(curves: dict[str, list[pd.DataFrame]], path: Path | str) -> None:
    """One panel per TRAINING_CURVES entry, one line per run (same colour in every panel)."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    epochs = max((int(t["step"].max()) + 1 for tables in curves.values() for t in tables if len(t)), default=1)
    fig, axes = plt.subplots(1, len(TRAINING_CURVES), figsize=(4.2 * len(TRAINING_CURVES), 3.6), dpi=100)
    for ax, (i, (_, column, title, log)) in zip(axes, enumerate(TRAINING_CURVES)):
        for colour, (label, tables) in enumerate(curves.items()):
            table = tables[i]
            # dvclive counts epochs from step 0; show them from 1, as the train log prints them
            ax.plot(table["step"] + 1, table[column], marker="o", markersize=3, linewidth=1.4,
                    color=f"C{colour % 10}", label=label)
        values = pd.concat([tables[i][column] for tables in curves.values()])
        if log and _spans_a_decade(values):
            _log_axis(ax)
            title += " (log scale)"
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_xlim(0.5, epochs + 0.5)  # also sane for a 1-epoch run
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylim(-0.02, 1.02)  # a Dice of 0 stays visible above the axis
    axes[0].legend(loc="lower right", fontsize=9)
    fig.suptitle("Training curves per fold")
    fig.tight_layout()
    save_figure(fig, path)


def _spans_a_decade(values: pd.Series) -> bool:
    """True if the values are all positive (a log axis can show them) and max > 10 * min."""
    values = values.dropna()
    return len(values) > 0 and values.min() > 0 and values.max() > 10 * values.min()


def _log_axis(ax) -> None:
    """Log y-scale labelled with plain numbers: 0.1, 0.2, 0.5, 1 (not 10^-1 and bare minor ticks)."""
    from matplotlib.ticker import FuncFormatter

    def minor(value: float, _position) -> str:
        leading = round(value / 10 ** math.floor(math.log10(value)))
        return f"{value:g}" if leading in (2, 5) else ""

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def chosen_point(table: pd.DataFrame, threshold: float) -> tuple[float, float]:
    """(threshold, score) of the curve row at the chosen threshold; InputError if the curve lacks it."""
    close = [i for i, t in enumerate(table["threshold"]) if math.isclose(t, threshold, abs_tol=1e-9)]
    if not close:
        raise InputError(f"the threshold curve has no row at the chosen threshold {threshold:g}; "
                         "rerun the threshold stage (dvc repro threshold)")
    row = table.iloc[close[0]]
    return float(row["threshold"]), float(row["score"])


def threshold_chart(table: pd.DataFrame, threshold: float, min_area: int, path: Path | str,
                    metric: str = "dice") -> None:
    """The OOF score (the competition's `metric`) against threshold, the chosen (threshold, min area) marked."""
    plt = pyplot()
    best_t, best = chosen_point(table, threshold)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    ax.plot(table["threshold"], table["score"], marker="o", markersize=3, color="C0",
            label=f"min area {min_area} px (chosen)")
    # the search's first min area, usually 0; the same line when that is the chosen one
    if "score_no_min_area" in table.columns and not table["score_no_min_area"].equals(table["score"]):
        ax.plot(table["threshold"], table["score_no_min_area"], linestyle="--", color="C7", label="no min area")
    ax.axvline(best_t, color="C3", linestyle=":", linewidth=1)
    ax.plot([best_t], [best], marker="*", markersize=14, color="C3", linestyle="none",
            label=f"chosen: threshold {best_t:g}, {metric} {best:.4f}")
    ax.set_xlabel("probability threshold")
    ax.set_ylabel(f"OOF {SCORE_LABELS.get(metric, metric)}")
    ax.set_title(f"Out-of-fold {metric} against threshold")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def class_threshold_chart(table: pd.DataFrame, classes: list[str], thresholds: list[float], path: Path | str,
                          metric: str = "dice") -> None:
    """Each class's OOF score against threshold (columns score_<class>), its chosen threshold marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for i, (name, threshold) in enumerate(zip(classes, thresholds)):
        best_t, best = chosen_point(table.assign(score=table[f"score_{name}"]), threshold)
        ax.plot(table["threshold"], table[f"score_{name}"], color=f"C{i}", label=f"{name}: threshold {best_t:g}, "
                f"{metric} {best:.4f}")
        ax.plot([best_t], [best], marker="*", markersize=12, color=f"C{i}", linestyle="none")
    ax.set_xlabel("probability threshold")
    ax.set_ylabel(f"OOF {SCORE_LABELS.get(metric, metric)}")
    ax.set_title(f"Out-of-fold {metric} against threshold, per class")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def fold_bar_chart(fold_dice: dict[str, float], overall: float, path: Path | str,
                   images: dict[str, int] | None = None) -> None:
    """Bar chart of per-image Dice per fold with the overall CV Dice as a line, written to `path`.

    fold_dice maps a name ("fold0") to its Dice; `images` optionally its image count.
    """
    plt = pyplot()
    names = list(fold_dice)
    values = [fold_dice[name] for name in names]
    labels = [f"{name}\n{images[name]} images" if images else name for name in names]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(names) + 2), 3.6), dpi=100)
    bars = ax.bar(labels, values, color="#4c72b0", width=0.6)
    # inside the bars, so the values never collide with the CV line
    ax.bar_label(bars, fmt="%.3f", label_type="center", color="white", fontsize=10)
    ax.axhline(overall, color="#c44e52", linestyle="--", linewidth=1.5, label=f"CV Dice {overall:.3f}")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("mean per-image Dice")
    ax.set_title("Out-of-fold Dice per fold at the chosen cut")
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)
