"""Ensemble the fold models on the test images, decoded straight from the raw files (whole, or by windows).

There is no test-image cache: a DataLoader's workers decode and resize each test image
(from the source, zip members included) while the main process runs the models, and the
probabilities go, in test order, into a compressed .npz as they come (`probmaps`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from segpipe.cache.images import resize_image
from segpipe.cache.tiles import Windows
from segpipe.core.errors import InputError
from segpipe.core.runtime import atomic_path, pick_device
from segpipe.inference import windows
from segpipe.inference.maps import Ensemble, ensemble_batches
from segpipe.inference.probmaps import RowBands, write_maps
from segpipe.network.model import load_checkpoint
from segpipe.paths import artifacts


class ImagesToPredict(Dataset):
    """Test images decoded and resized to their prediction size, as (H, W, C) uint8 tensors.

    `sizes` is one (H, W) per image, or one for all: the training size in resize mode, each
    image's own size times `scale` in tile mode (`segpipe.cache.tiles.Layout.scaled`). With
    `neighbours` ((N, S) positions in `images`, `segpipe.cache.stacks`), item i is the stack of
    its S slices, (H, W, S*C), each decoded from its file.
    """

    def __init__(self, images: Sequence, read_image: Callable, sizes: Sequence[tuple[int, int]] | tuple[int, int],
                 channels: int, neighbours: np.ndarray | None = None):
        self.images, self.read_image, self.channels = list(images), read_image, channels
        one = len(sizes) == 2 and all(isinstance(v, (int, np.integer)) for v in sizes)
        self.sizes = [tuple(sizes)] * len(self.images) if one else [tuple(map(int, s)) for s in sizes]
        self.neighbours = neighbours

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item: int) -> torch.Tensor:
        stack = [item] if self.neighbours is None else self.neighbours[item]
        return torch.from_numpy(np.concatenate([self._decode(int(i), self.sizes[item]) for i in stack], axis=-1))

    def _decode(self, item: int, size: tuple[int, int]) -> np.ndarray:
        image, _ = self.read_image(Path(self.images[item]), at_least=size)
        if image.shape[2] != self.channels:
            raise InputError(f"{self.images[item]}: has {image.shape[2]} channels, the training images {self.channels}")
        return image if image.shape[:2] == size else resize_image(image, size)


def load_fold_models(model_paths: dict[int, Path], name: str) -> tuple[list[torch.nn.Module], int, int, float]:
    """(the fold models of model `name`, their input channels, 2.5D context k and window step), checked to agree."""
    models, inputs = [], set()
    for fold, path in sorted(model_paths.items()):
        model, checkpoint = load_checkpoint(path, rebuild_hint=f"dvc repro {artifacts.train_stage(name, fold)}")
        models.append(model)
        inputs.add((checkpoint["spec"]["in_channels"], checkpoint.get("context", 0), checkpoint.get("window_step", 0.5)))
    if len(inputs) > 1:
        raise InputError(f"the fold models of {name} take different inputs (channels, context, window step) "
                         f"{sorted(inputs)}; retrain them with one setting: dvc repro -f -s --glob 'train@{name}-*'")
    in_channels, context, step = inputs.pop()
    return models, in_channels, context, step


def predict_test(models: Sequence[torch.nn.Module], in_channels: int, images: ImagesToPredict, out_path: Path,
                 batch_size: int, workers: int = 0, amp: bool = True, channels_last: bool = True,
                 ids: Sequence[str] | None = None, sliding: Windows | None = None) -> None:
    """Average the (fold) `models`' hflip-TTA probabilities over `images` into the .npz `out_path`.

    Maps are uint8 in `images` order, written as they come, so memory stays flat however
    large the test set is; `ids` (one per image) are stored with them. With `sliding`, each
    image is predicted by windows (`batch_size` of them at a time) at its own size, and its
    map goes to disk band by band: not even the uint8 map of one image is whole in memory.
    """
    device = pick_device()
    ensemble = Ensemble(models, device, amp=amp, channels_last=channels_last, in_channels=in_channels)
    # One OpenCV thread per decoding worker, set before the workers fork (see prepare.cache_split).
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1 if workers else threads)
    try:
        loader = DataLoader(images, batch_size=1 if sliding else batch_size, shuffle=False, num_workers=workers,
                            pin_memory=device.type == "cuda" and not sliding)
        if sliding:
            maps = (RowBands(image.shape[1:3], (rows for _, rows in windows.predict_image(
                        ensemble, image[0].numpy(), sliding.tile, sliding.step, batch_size, device)))
                    for image in loader)
        else:
            maps = ensemble_batches(ensemble, loader)
        with atomic_path(out_path) as tmp:
            write_maps(tmp, tqdm(maps, total=len(loader), desc="predict"), ids=ids)
    except InputError as err:  # from a worker, wrapped with its traceback: keep the message alone
        raise InputError(str(err).strip().splitlines()[-1].removeprefix("segpipe.core.errors.InputError: ")) from None
    finally:
        cv2.setNumThreads(threads)
