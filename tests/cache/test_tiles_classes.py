"""Tile mode with classes: per-class tile counts, a draw per class present, class maps by windows."""
import numpy as np
import pandas as pd
import pytest

from segpipe import datasets
from segpipe.cache.folds import stratified_group_folds
from segpipe.cache.prepare import prepare_competition
from segpipe.cache.tiles import Layout, read_tiles
from segpipe.core.labels import class_areas
from segpipe.inference.predict import ImagesToPredict, load_fold_models, predict_test
from segpipe.inference.probmaps import read_map
from segpipe.training.fold import FoldPaths
from segpipe.training.loaders import TileDataset
from segpipe.training.loop import train_fold
from tests.cache.test_tiles import FAST, TILE
from tests.conftest import TINY

CLASSES = ("core", "edema", "spot")
NATIVE = (TINY["height"], TINY["width"])


@pytest.fixture(scope="module")
def competition(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw_multi") / "synthetic"
    datasets.download("synthetic", root, kind="multi", **TINY)
    return datasets.load("synthetic", root, kind="multi")


@pytest.fixture(scope="module")
def tiled_dir(competition, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiled_multi") / "prepared"
    prepare_competition(competition, out, (64, 64), workers=2, mode="tile", scale=1.0, tile=TILE)
    return out


def test_the_tile_index_counts_each_class_beside_any_class(tiled_dir):
    assert Layout.read(tiled_dir).labels.classes == CLASSES
    masks = np.load(tiled_dir / "train_masks.npy")
    tiles = read_tiles(tiled_dir)
    assert list(tiles.columns) == ["row", "y", "x", "foreground", *(f"foreground_{c}" for c in CLASSES)]
    for row, y, x, any_class, *each in tiles.head(60).itertuples(index=False):
        window = masks[row, y:y + TILE[0], x:x + TILE[1]]
        assert any_class == np.count_nonzero(window)
        assert each == class_areas(window[None], len(CLASSES))[0].tolist()


def held(tiled_dir, tiles) -> np.ndarray:
    """(draws, classes): which classes each of 600 foreground draws holds."""
    dataset = TileDataset(tiled_dir / "train_images.npy", tiled_dir / "train_masks.npy", tiles, TILE, draw=True,
                          foreground=1.0, seed=4, draws=600)
    return class_areas(np.stack([dataset[i][1] for i in range(len(dataset))]), len(CLASSES)) > 0


def test_foreground_draws_pick_a_class_first_so_the_rarest_is_drawn_as_often(tiled_dir):
    tiles = read_tiles(tiled_dir)
    per_class = held(tiled_dir, tiles)
    assert per_class.any(axis=1).all()  # every foreground draw holds some class
    rarest = int(np.argmin([(tiles[f"foreground_{c}"] > 0).sum() for c in CLASSES]))
    any_class = held(tiled_dir, tiles[["row", "y", "x", "foreground"]])  # a binary index: any foreground pixel
    # a class drawn first: the rarest is in at least its third of the crops (0.58), far more often than
    # when any foreground pixel is drawn (0.33)
    assert per_class[:, rarest].mean() >= 1 / 3
    assert per_class[:, rarest].mean() > any_class[:, rarest].mean() + 0.15


def test_tile_mode_trains_classes_on_crops_and_predicts_a_map_per_class_by_windows(tiled_dir, competition,
                                                                                   tmp_path):
    index = pd.read_csv(tiled_dir / "train.csv", dtype={"id": str, "group": str})
    folds = stratified_group_folds(index, 2, seed=0)
    paths = FoldPaths(tiled_dir / "train_images.npy", tiled_dir / "train_masks.npy", tmp_path / "m.pt",
                      tmp_path / "oof", tmp_path / "live", layout=Layout.read(tiled_dir))
    metrics = train_fold(FAST, folds, 0, paths, seed=5)
    assert set(metrics["classes"]) == set(CLASSES)
    assert np.load(tmp_path / "oof" / "probs.npy").shape == ((folds.fold == 0).sum(), len(CLASSES), *NATIVE)
    loaded = load_fold_models({0: paths.model}, "unet")
    sizes = [NATIVE] * (len(competition.test) - 1) + [(37, 75)]  # any size, at its own size
    images = ImagesToPredict(competition.test.image, competition.read_image, sizes, channels=3)
    predict_test(loaded, images, tmp_path / "test.npz", batch_size=3, layout=paths.layout)
    assert read_map(tmp_path / "test.npz", 0).shape == (len(CLASSES), *NATIVE)
    assert read_map(tmp_path / "test.npz", len(sizes) - 1).shape == (len(CLASSES), 37, 75)
