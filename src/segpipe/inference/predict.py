"""Ensemble the fold models on the test images, decoded straight from the raw files (whole, or by windows).

There is no test-image cache: a DataLoader's workers decode and resize each test image
(from the source, zip members included) while the main process runs the models, and the
probabilities go, in test order, into a compressed .npz as they come (`probmaps`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from segpipe.cache.images import resize_image
from segpipe.cache.stacks import neighbour_rows
from segpipe.cache.tiles import Layout
from segpipe.core.errors import InputError
from segpipe.core.runtime import atomic_path, flush_denormals, opencv_threads, pick_device
from segpipe.inference import windows
from segpipe.inference.maps import Ensemble, ensemble_batches
from segpipe.inference.probmaps import RowBands, write_maps
from segpipe.network.contract import InferenceContract, one_setting
from segpipe.network.model import load_checkpoint


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


@dataclass(frozen=True)
class FoldModels:
    """The fold networks of one model and the one inference contract their checkpoints share."""

    models: list[torch.nn.Module]
    contract: InferenceContract
    files: tuple[str, ...] = ()  # where each network's weights came from, named in errors


def load_fold_models(model_paths: dict[int, Path], name: str) -> FoldModels:
    """The fold models of model `name`, their contracts checked to agree."""
    flush_denormals()  # before the first tensor work: torch's threads copy the setting when they start
    models, contracts = [], []
    for _, path in sorted(model_paths.items()):
        model, checkpoint = load_checkpoint(path)
        models.append(model)
        contracts.append(InferenceContract.of_checkpoint(checkpoint, path))
    return FoldModels(models, one_setting(name, contracts), tuple(str(path) for _, path in sorted(model_paths.items())))


def predict_test(folds: FoldModels, images: ImagesToPredict, out_path: Path, batch_size: int, workers: int = 0,
                 ids: Sequence[str] | None = None, layout: Layout | None = None,
                 on_map: Callable[[int], None] | None = None) -> None:
    """Average the fold models' probabilities over `images` into the .npz `out_path`, run as their contract says.

    Maps are uint8 in `images` order, written as they come, so memory stays flat however
    large the test set is; `ids` (one per image) are stored with them. With `sliding`, each
    image is predicted by windows (`batch_size` of them at a time) at its own size, and its
    map goes to disk band by band: not even the uint8 map of one image is whole in memory.
    `on_map(count)` is called as each image's map is about to be written (`segpipe.bundle.run`'s
    projection).
    """
    device = pick_device()
    ensemble = Ensemble.following(folds.contract, folds.models, device, names=folds.files)
    sliding = layout.windows(folds.contract.window_step) if layout else None
    # One OpenCV thread per decoding worker, set before the workers fork (`opencv_threads`).
    with opencv_threads(1 if workers else None):
        loader = DataLoader(images, batch_size=1 if sliding else batch_size, shuffle=False, num_workers=workers,
                            pin_memory=device.type == "cuda" and not sliding)
        if sliding:
            maps = (RowBands(image.shape[1:3], (rows for _, rows in windows.predict_image(
                        ensemble, image[0].numpy(), sliding.tile, sliding.step, batch_size, device)))
                    for image in loader)
        else:
            maps = ensemble_batches(ensemble, loader)
        if on_map is not None:
            maps = _counted(maps, on_map)
        try:
            with atomic_path(out_path) as tmp:
                write_maps(tmp, tqdm(maps, total=len(loader), desc="predict"), ids=ids)
        except InputError as err:  # from a worker, wrapped with its traceback: keep the message alone
            raise InputError(str(err).strip().splitlines()[-1].removeprefix("segpipe.core.errors.InputError: ")) \
                from None


def predict_competition(folds: FoldModels, competition, index, layout: Layout, channels: int, out_path: Path,
                        batch_size: int, workers: int = 0, on_map: Callable[[int], None] | None = None,
                        where: str = "the test images") -> None:
    """`predict_test` on the competition's test images, each at the size `layout` trained at (their 2.5D stacks
    from `index`, the prepared test index): what `predict@<model>` and the offline bundle both run."""
    neighbours = neighbour_rows(index, folds.contract.context, where=where)
    images = ImagesToPredict(competition.test.image, competition.read_image,
                             [layout.scaled(h, w) for h, w in zip(index.height, index.width)], channels, neighbours)
    predict_test(folds, images, out_path, batch_size, workers, ids=index.id.tolist(), layout=layout,
                 on_map=on_map)


def _counted(maps, on_map: Callable[[int], None]):
    """`maps`, calling `on_map` with the number of images so far as each batch comes (a batch counts its images)."""
    count = 0
    for batch in maps:
        count += 1 if isinstance(batch, RowBands) else len(batch)
        on_map(count)
        yield batch
