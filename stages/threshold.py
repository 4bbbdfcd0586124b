"""DVC stage `threshold`: search the post-processing rule on the blended OOF probabilities; CV metrics.

metrics/cv.json gets the blend's CV scores under the rule, plus each model's own CV Dice
and the blend weights (from the blend stage), so `dvc metrics show` and `dvc exp show`
show them side by side.
"""
import json
import sys

import pandas as pd

from segpipe.cache.tiles import Layout
from segpipe.config.evaluation import Threshold, load_evaluation_params
from segpipe.core.cli import parse_paths, run_stage
from segpipe.core.errors import InputError
from segpipe.core.runtime import atomic_path, write_json
from segpipe.evaluation.baselines import warning
from segpipe.evaluation.cv import cross_validate, oof_maps, oof_volumes
from segpipe.evaluation.force_top import search_force_top
from segpipe.evaluation.per_class import cross_validate_classes, threshold_curve
from segpipe.evaluation.postprocess import describe_rules, write_rules
from segpipe.evaluation.scores import read_metric
from segpipe.evaluation.tune import Grids
from segpipe.evaluation.volumes import score_volumes
from segpipe.paths import artifacts


def main() -> None:
    args = parse_paths(__doc__, "folds", "masks", "oof", "blend", "plan", "metrics", "rule", "plot")
    params = load_evaluation_params()
    folds = pd.read_csv(args.folds, dtype={"id": str, "group": str})
    oof_paths = {k: artifacts.fold_dir(args.oof, k) for k in params.folds.train}
    cut = Threshold.model_validate_json(args.plan.read_text())  # the grids with `auto` resolved
    layout = Layout.read(args.masks.parent)
    labels, classes = layout.labels, layout.labels.classes
    metric = read_metric(args.masks.parent)
    unknown = sorted(set(cut.classes) - set(classes))
    if unknown:
        raise InputError(f"params.yaml: threshold.classes: {unknown} are not classes of this competition "
                         f"({list(classes) or 'it has one class'})")
    if labels.several:  # a rule per class, each searched on its own maps with its own grids
        metrics, searches = cross_validate_classes(folds, oof_paths, args.masks, [grids(cut.of_class(name))
                                                   for name in classes], classes, metric)
        curve = threshold_curve(searches, classes)
    else:
        metrics, search = cross_validate(folds, oof_paths, args.masks, grids(cut), metric=metric)
        searches, curve = [search], search.curve
    rules = [search.rule for search in searches]
    force_top = search_force_top(oof_maps(folds, oof_paths, args.masks), rules, labels) if labels.several else None
    if force_top:  # every image is labelled: the top class forced on, kept if it raises the OOF Dice
        metrics["force_top"] = force_top
        if force_top["kept"]:
            metrics["dice"] = force_top["dice"]
            for name, dice in force_top["classes"].items():
                metrics["classes"][name]["dice"] = dice
    if metric == "dice_hausdorff":  # UW-Madison's score, on the OOF volumes under the rules
        metrics["volumes"] = score_volumes(oof_volumes(folds, oof_paths, args.masks, rules), labels)
    blend = json.loads(args.blend.read_text())
    write_json(args.metrics, {**metrics, "models": blend["models"], "weights": blend["weights"]})
    write_rules(args.rule, rules, labels, force_top["kept"] if force_top else None)
    with atomic_path(args.plot) as tmp:
        pd.DataFrame(curve).to_csv(tmp, index=False)
    print(f"CV {metric} {metrics['score']:.4f} (dice {metrics['dice']:.4f}, patient {metrics['patient_dice']:.4f}) "
          f"with {describe_rules(rules, labels)}")
    if "volumes" in metrics:
        volumes = metrics["volumes"]
        print(f"CV {volumes['metric']} {volumes['score']:.4f} (dice {volumes['dice']:.4f}, hausdorff "
              f"{volumes['hausdorff']:.4f}) over {volumes['volumes']} volumes")
    for name, scores in (metrics["classes"].items() if labels.several else [("search", metrics)]):
        steps = "; ".join(f"{s['step']} {s['score']:.4f}{'' if s['kept'] else ' (not kept)'}" for s in scores["search"])
        print(f"{name}: {steps}")
    if force_top:
        print(f"every image is labelled: top class forced on: dice {force_top['dice_without']:.4f} -> "
              f"{force_top['dice']:.4f} on {force_top['images_changed']} images"
              f"{'' if force_top['kept'] else ' (not kept)'}")
    for key, what in (("dice", "CV dice"), ("patient_dice", "CV patient dice")):
        line = warning(what, metrics[key], metrics["baselines"], key)
        if line:
            print(line, file=sys.stderr)


def grids(cut: Threshold) -> Grids:
    return Grids(list(cut.gate_areas), list(cut.gate_thresholds), list(cut.min_components), list(cut.keep_largest))


if __name__ == "__main__":
    run_stage(main)
