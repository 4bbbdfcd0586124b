"""DVC stage `plan`: resolve every `auto` param from data/fingerprint.json and data/device.json; write what
each stage reads.

data/plan.json holds the fingerprint, the device and the whole plan (`dvc metrics show` lists it);
the files under data/plan/ are what prepare, each train@<model>-<fold> and threshold read, one
per consumer, so that a change reruns only the stages it reaches. Building each model's network
(random weights) here checks every model spec before prepare and training start.
"""
import json

from segpipe.config.params import load_params
from segpipe.config.train import AUTO
from segpipe.core.cli import parse_paths, run_stage
from segpipe.core.runtime import atomic_path, write_json
from segpipe.plan.device import Device
from segpipe.plan.device_rules import PRETRAINED, plan_cache, plan_model, resize_bound
from segpipe.plan.rules import plan_prepare, plan_threshold


def main() -> None:
    args = parse_paths(__doc__, "fingerprint", "device", "out", "summary")
    params = load_params()
    fingerprint = json.loads(args.fingerprint.read_text())
    device = Device.read(args.device)
    folders, at_hand = pretrained_at_hand(params.base) if device.cuda else ((), lambda encoder: False)
    prepare = plan_prepare(fingerprint, plan_cache(fingerprint, params.prepare, device, params.train.amp),
                           resize_bound(device))
    planned = {name: plan_model(fingerprint, prepare, params.model(name), params.folds.n_splits, device, at_hand)
               for name in params.models}
    models = {name: cfg.model_dump(mode="json") for name, cfg in planned.items()}
    threshold = plan_threshold(fingerprint, prepare, params.threshold).model_dump(
        mode="json", exclude={"classes"} if not params.threshold.classes else None)  # binary: the file as it was
    check_networks(planned)
    with atomic_path(args.out) as tmp:
        (tmp / "models").mkdir(parents=True)
        write_json(tmp / "prepare.json", prepare)
        write_json(tmp / "threshold.json", threshold)
        for name, model in models.items():
            write_json(tmp / "models" / f"{name}.json", model)
    write_json(args.summary, {"fingerprint": fingerprint, "device": device.to_dict(), "prepare": prepare,
                              "threshold": threshold, "models": models})
    sides = prepare["tile"] if prepare["mode"] == "tile" else prepare["size"]
    print(f"plan for {device.describe()}: {prepare['mode']} {sides[0]}x{sides[1]}"
          + (f" (images at scale {prepare['scale']})" if prepare["mode"] == "tile" else ""))
    for name, model in models.items():
        print(f"  {name}: {model['encoder_name']}, {model['steps']} steps of batch {model['batch_size']}, "
              f"lr {model['lr']}, {model['epochs']} validations")
        if device.cuda and params.model(name).encoder_weights == AUTO and model["encoder_weights"] is None:
            print(f"    random initial weights: no {PRETRAINED} weights at hand (looked in "
                  f"{', '.join(map(str, folders))}; docs/encoders.md#pretrained-weights-offline)")
    print(f"  post-processing areas {list(threshold['gate_areas'])}, components {list(threshold['min_components'])}")


def pretrained_at_hand(base):
    """The folders searched for pretrained weights, and whether a file of PRETRAINED weights of an encoder is
    in them (the plan never downloads)."""
    from huggingface_hub.constants import HF_HUB_CACHE  # as the Hub client resolves it from HF_HOME, HF_HUB_CACHE

    from segpipe.network.pretrained import find_pretrained, search_folders

    folders = search_folders(HF_HUB_CACHE, base.weights_dirs, base.kaggle_input)
    return folders, lambda encoder: find_pretrained(encoder, PRETRAINED, folders) is not None


def check_networks(planned: dict) -> None:
    """Build every planned model's network (random weights, nothing downloaded): a bad arch, encoder or
    decoder fails here, before prepare and training, naming the model."""
    from segpipe.core.errors import InputError
    from segpipe.network.model import build_model, model_spec  # torch: only once the params are valid

    for name, cfg in planned.items():
        try:
            build_model(model_spec(cfg), encoder_weights=None)
        except InputError as err:
            raise InputError(f"models.{name}: {err}") from None


if __name__ == "__main__":
    run_stage(main)
