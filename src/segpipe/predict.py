"""Ensemble the fold models on the prepared test images, streaming to a uint8 .npy."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from segpipe.errors import InputError
from segpipe.inference import predict_batches, prepare_for_inference
from segpipe.model import load_checkpoint
from segpipe.runtime import atomic_path, create_npy, pick_device


def predict_test(model_paths: dict[int, Path], images_path: Path, out_path: Path, batch_size: int,
                 amp: bool = True, channels_last: bool = True) -> None:
    """Average every fold model's hflip-TTA probabilities over the test set into `out_path`.

    `model_paths` maps fold -> checkpoint. The output is (N,H,W) uint8 in the prepared test
    order, written batch by batch, so memory stays flat however large the test set is.
    """
    device = pick_device()
    models, in_channels = [], set()
    for fold, path in sorted(model_paths.items()):
        model, checkpoint = load_checkpoint(path, rebuild_hint=f"dvc repro train@{fold}")
        models.append(prepare_for_inference(model, device, channels_last))
        in_channels.add(checkpoint["spec"]["in_channels"])
    if len(in_channels) > 1:
        raise InputError(f"fold models take different input channels {sorted(in_channels)}; retrain them with one "
                         "train.in_channels")
    images = np.load(images_path, mmap_mode="r")
    with atomic_path(out_path) as tmp:
        out = create_npy(tmp, images.shape[:3])
        start = 0
        batches = predict_batches(models, images, batch_size, device, amp=amp, channels_last=channels_last,
                                  in_channels=in_channels.pop())
        for probs in tqdm(batches, total=-(-len(images) // batch_size), desc="predict"):
            out[start:start + len(probs)] = probs
            start += len(probs)
        out.flush()
        del out
