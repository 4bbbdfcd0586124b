"""DVC stage `blend`: weights of the models tuned on their OOF probabilities; the blended OOF maps.

Greedy forward selection with replacement (`segpipe.evaluation.blend`) on mean per-image Dice; the
blend is written as OOF folders (blend/fold<k>/) for the post-processing search, and
the weights, each model's CV Dice and the blend's to metrics/blend.json, which submit
reads to blend the test probabilities the same way.
"""
import pandas as pd

from segpipe.cache.tiles import Layout
from segpipe.config.evaluation import load_evaluation_params
from segpipe.core.cli import parse_paths, run_stage
from segpipe.core.runtime import write_json
from segpipe.evaluation.blend import model_oof, select, write_blend
from segpipe.paths import artifacts


def main() -> None:
    args = parse_paths(__doc__, "folds", "masks", "oof", "out", "metrics")
    params = load_evaluation_params()
    folds = pd.read_csv(args.folds, dtype={"id": str, "group": str})
    classes = Layout.read(args.masks.parent).classes
    dirs = {name: {k: artifacts.oof_dir(args.oof, name, k) for k in params.folds.train} for name in params.models}
    oof = model_oof(folds, dirs, args.masks, len(classes))
    chosen = select(oof.names, oof.score, params.blend.iterations)
    write_blend(folds, oof, chosen.counts, {k: artifacts.fold_dir(args.out, k) for k in params.folds.train})
    write_json(args.metrics, {
        **chosen.score.to_dict(classes), "weights": chosen.weights, "counts": chosen.counts,
        "models": {name: score.to_dict(classes) for name, score in chosen.singles.items()},
        "steps": chosen.steps,
    })
    for name, score in chosen.singles.items():
        print(f"{name}: CV dice {score.dice:.4f} (patient {score.patient_dice:.4f}){_at(score)}; "
              f"weight {chosen.weights[name]:.2f}")
    print(f"blend: CV dice {chosen.score.dice:.4f} (patient {chosen.score.patient_dice:.4f}){_at(chosen.score)}")


def _at(score) -> str:
    """Where the score's cut lies: one threshold, or one per class."""
    cuts = [score.threshold] if score.threshold is not None else [s.threshold for s in score.classes]
    return " at " + "/".join(f"{cut:.3f}" for cut in cuts)


if __name__ == "__main__":
    run_stage(main)
