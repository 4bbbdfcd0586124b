"""DVC stage `blend`: weights of the models tuned on their OOF probabilities; the blended OOF maps.

Greedy forward selection with replacement (`segpipe.evaluation.blend`) on the competition's declared
score (`segpipe.evaluation.scores`); the
blend is written as OOF folders (blend/fold<k>/) for the post-processing search, and
the weights, each model's CV Dice and the blend's to metrics/blend.json, which submit
reads to blend the test probabilities the same way.
"""
import pandas as pd

from segpipe.cache.tiles import Layout
from segpipe.config.evaluation import load_evaluation_params
from segpipe.core.cli import parse_paths, run_stage
from segpipe.core.runtime import write_json
from segpipe.evaluation.blend import Score, model_oof, select, select_per_class, write_blend
from segpipe.evaluation.scores import OBJECT_METRICS, read_metric
from segpipe.paths import artifacts


def main() -> None:
    args = parse_paths(__doc__, "folds", "masks", "oof", "out", "metrics")
    params = load_evaluation_params()
    folds = pd.read_csv(args.folds, dtype={"id": str, "group": str})
    layout = Layout.read(args.masks.parent)
    labels, classes = layout.labels, layout.labels.classes
    dirs = {name: {k: artifacts.oof_dir(args.oof, name, k) for k in params.folds.train} for name in params.models}
    metric = read_metric(args.masks.parent)
    shown = f"{metric} (its stand-in iou_hits)" if metric in OBJECT_METRICS else metric
    oof = model_oof(folds, dirs, args.masks, labels, metric)
    out_dirs = {k: artifacts.fold_dir(args.out, k) for k in params.folds.train}
    if params.blend.per_class and labels.several:  # a bag per class, each on its own class's Dice
        per_class = select_per_class(oof, params.blend.iterations)
        write_blend(folds, oof, [s.counts for s in per_class], out_dirs)
        score, singles = Score.mean_of([s.score for s in per_class]), per_class[0].singles
        weights = {name: sum(s.weights[name] for s in per_class) / len(per_class) for name in singles}
        summed = {name: sum(s.counts.get(name, 0) for s in per_class) for name in singles}
        extra = {"class_counts": {c: s.counts for c, s in zip(classes, per_class)},
                 "class_weights": {c: s.weights for c, s in zip(classes, per_class)},
                 "steps": {c: s.steps for c, s in zip(classes, per_class)}}
    else:
        chosen = select(oof.names, oof.score, params.blend.iterations)
        write_blend(folds, oof, chosen.counts, out_dirs)
        score, singles, weights, summed = chosen.score, chosen.singles, chosen.weights, chosen.counts
        extra = {"steps": chosen.steps}
    stand_in = {"stand_in": "iou_hits"} if metric in OBJECT_METRICS else {}  # objects: the threshold stage scores them
    write_json(args.metrics, {
        "metric": metric, **stand_in, **score.to_dict(classes), "weights": weights, "counts": {n: c for n, c in summed.items() if c},
        "models": {name: single.to_dict(classes) for name, single in singles.items()}, **extra,
    })
    for name, single in singles.items():
        print(f"{name}: CV {shown} {single.score:.4f} (dice {single.dice:.4f}, patient {single.patient_dice:.4f})"
              f"{_at(single)}; "
              f"weight {weights[name]:.2f}")
    if "class_weights" in extra:
        for name, bag in extra["class_weights"].items():
            print(f"{name}: weights " + ", ".join(f"{model} {w:.2f}" for model, w in bag.items()))
    print(f"blend: CV {shown} {score.score:.4f} (dice {score.dice:.4f}, patient {score.patient_dice:.4f}){_at(score)}")


def _at(score) -> str:
    """Where the score's cut lies: one threshold, or one per class."""
    cuts = [score.threshold] if score.threshold is not None else [s.threshold for s in score.classes]
    return " at " + "/".join(f"{cut:.3f}" for cut in cuts)


if __name__ == "__main__":
    run_stage(main)
