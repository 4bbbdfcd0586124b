"""DVC stage `plan`: resolve every `auto` param from data/fingerprint.json; write what each stage reads.

data/plan.json holds the fingerprint and the whole plan (`dvc metrics show` lists it); the
files under data/plan/ are what prepare, each train@<model>-<fold> and threshold read, one
per consumer, so that a change reruns only the stages it reaches. Loading the whole params
file and building each model's network (random weights) here checks every model spec before
prepare and training start.
"""
import json

from segpipe.config.params import load_params
from segpipe.core.cli import parse_paths, run_stage
from segpipe.core.runtime import atomic_path, write_json
from segpipe.plan.rules import plan_prepare, plan_threshold, plan_train


def main() -> None:
    args = parse_paths(__doc__, "fingerprint", "out", "summary")
    params = load_params()
    fingerprint = json.loads(args.fingerprint.read_text())
    prepare = plan_prepare(fingerprint, params.prepare)
    models = {name: plan_train(fingerprint, prepare, params.model(name), params.folds.n_splits).model_dump(mode="json")
              for name in params.models}
    threshold = plan_threshold(fingerprint, prepare, params.threshold).model_dump(
        mode="json", exclude={"classes"} if not params.threshold.classes else None)  # binary: the file as it was
    check_networks(params)
    with atomic_path(args.out) as tmp:
        (tmp / "models").mkdir(parents=True)
        write_json(tmp / "prepare.json", prepare)
        write_json(tmp / "threshold.json", threshold)
        for name, model in models.items():
            write_json(tmp / "models" / f"{name}.json", model)
    write_json(args.summary, {"fingerprint": fingerprint, "prepare": prepare, "threshold": threshold,
                              "models": models})
    sides = prepare["tile"] if prepare["mode"] == "tile" else prepare["size"]
    print(f"plan: {prepare['mode']} {sides[0]}x{sides[1]}"
          + (f" (images at scale {prepare['scale']})" if prepare["mode"] == "tile" else ""))
    for name, model in models.items():
        print(f"  {name}: {model['steps']} steps of batch {model['batch_size']}, lr {model['lr']}, "
              f"{model['epochs']} validations")
    print(f"  post-processing areas {list(threshold['gate_areas'])}, components {list(threshold['min_components'])}")


def check_networks(params) -> None:
    """Build every model's network (random weights, nothing downloaded): a bad arch, encoder or
    decoder fails here, before prepare and training, naming the model."""
    from segpipe.core.errors import InputError
    from segpipe.network.model import build_model, model_spec  # torch: only once the params are valid

    for name in params.models:
        try:
            build_model(model_spec(params.model(name)), encoder_weights=None)
        except InputError as err:
            raise InputError(f"models.{name}: {err}") from None


if __name__ == "__main__":
    run_stage(main)
