"""DVC stage `train@<model>-<fold>`: train one model on one fold; write its checkpoint, OOF and metrics.

The model's training params come from the plan (data/plan/models/<model>.json: `train` with the
model's overrides and every `auto` resolved). A killed run leaves `--last` (the per-epoch resume state);
rerunning the stage continues from it.
With `train.devices` > 1 the stage restarts itself under torchrun, one process per device.
"""
import os
import sys
from pathlib import Path

import pandas as pd

from segpipe.config.sections import load_base
from segpipe.config.train import Train
from segpipe.core.cli import parse_paths, run_stage
from segpipe.core.runtime import write_json
from segpipe.paths.cache_files import TRAIN_IMAGES, TRAIN_MASKS


def main() -> None:
    args = parse_paths(__doc__, "plan", "prepared", "folds", "checkpoint", "oof", "live", "metrics", "last",
                       fold=True, model=True)
    base = load_base()  # the seed and where pretrained weights are: the rest is the plan's (checked there)
    cfg = Train.model_validate_json((Path(args.plan) / f"{args.model}.json").read_text())
    if cfg.devices > 1 and "LOCAL_RANK" not in os.environ:
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc_per_node={cfg.devices}", *sys.argv]
        os.execv(sys.executable, torchrun)
    from huggingface_hub.constants import HF_HUB_CACHE  # as the Hub client resolves it from HF_HOME, HF_HUB_CACHE

    from segpipe.cache.tiles import Layout
    from segpipe.network.pretrained import search_folders
    from segpipe.training.distributed import Distributed  # torch loads after the params check: bad params fail in 1 s
    from segpipe.training.loop import FoldPaths, train_fold

    dist = Distributed(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                       int(os.environ.get("LOCAL_RANK", 0)))
    folds = pd.read_csv(args.folds, dtype={"id": str, "group": str})
    weights = search_folders(HF_HUB_CACHE, base.weights_dirs, base.kaggle_input)
    paths = FoldPaths(args.prepared / TRAIN_IMAGES, args.prepared / TRAIN_MASKS, args.checkpoint, args.oof,
                      args.live, last=args.last, layout=Layout.read(args.prepared), weights=weights)
    metrics = train_fold(cfg, folds, args.fold, paths, base.seed, dist)
    if dist.main:
        write_json(args.metrics, metrics)


if __name__ == "__main__":
    run_stage(main)
