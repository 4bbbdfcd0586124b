"""DDP on CPU: two gloo processes under torchrun train one tiny fold; rank 0 alone writes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch
import yaml
from torch.utils.data import RandomSampler

from segpipe.cache.folds import stratified_group_folds
from segpipe.config.train import Train
from segpipe.training.loaders import ShardSampler

ROOT = Path(__file__).resolve().parents[2]
TINY_TRAIN = {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_channels": [16, 8, 8], "epochs": 2,
              "steps": 6, "batch_size": 8, "lr": 0.003, "devices": 2, "encoder_weights": None, "num_workers": 0,
              "normalize": "imagenet"}


def test_shards_are_disjoint_equal_and_cover_the_pass():
    def base():  # each process seeds its own sampler alike
        return RandomSampler(range(11), generator=torch.Generator().manual_seed(0))

    shards = [list(ShardSampler(base(), rank, 2)) for rank in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 5 and not set(shards[0]) & set(shards[1])
    order = list(base())[:10]
    assert sorted(shards[0] + shards[1]) == sorted(order)


def test_two_cpu_processes_train_one_fold_and_only_rank_0_writes(prepared_dir, tmp_path):
    index = pd.read_csv(prepared_dir / "train.csv", dtype={"id": str, "group": str})
    stratified_group_folds(index, 2, seed=0).to_csv(tmp_path / "folds.csv", index=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": TINY_TRAIN}))
    (tmp_path / "plan").mkdir()  # what the plan stage writes for these params: `train` as it is
    (tmp_path / "plan" / "unet.json").write_text(Train(**TINY_TRAIN).model_dump_json())
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "stages/train.py"), "--model", "unet", "--fold", "1", "--plan", "plan",
           "--prepared", str(prepared_dir), "--folds", "folds.csv", "--checkpoint", "out/model.pt", "--oof", "out/oof",
           "--live", "out/live", "--metrics", "out/metrics.json", "--last", "out/last.pt"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["val_dice"] <= 1 and metrics["epochs_run"] == 2
    # one writer: each epoch logged once, one printed line per epoch
    assert len((out / "live/plots/metrics/val/dice.tsv").read_text().splitlines()) == 1 + 2
    assert done.stdout.count("fold 1 epoch 2/2") == 1
    assert (out / "model.pt").is_file() and (out / "oof" / "probs.npy").is_file()
