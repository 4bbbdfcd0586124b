"""Tile mode: prepare at scale with a tile index, crops with foreground oversampling, OOF and test by windows."""
import dataclasses
import json

import cv2
import numpy as np
import pandas as pd
import pytest

from segpipe.cache.folds import stratified_group_folds
from segpipe.cache.prepare import prepare_competition
from segpipe.cache.tiles import Layout, read_tiles
from segpipe.config.train import Train
from segpipe.core.errors import InputError
from segpipe.inference.predict import ImagesToPredict, load_fold_models, predict_test
from segpipe.inference.probmaps import count_maps, read_map
from segpipe.training.fold import FoldPaths
from segpipe.training.loaders import TileDataset
from segpipe.training.loop import train_fold
from tests.conftest import TINY

TILE = (32, 32)
NATIVE = (TINY["height"], TINY["width"])  # 40 x 48: the tile does not divide it


@pytest.fixture(scope="module")
def tiled_dir(competition, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiled") / "prepared"
    prepare_competition(competition, out, (64, 64), workers=2, mode="tile", scale=1.0, tile=TILE)
    return out


def test_tile_mode_caches_native_images_and_an_index_of_tiles_covering_each(tiled_dir, competition):
    layout = Layout.read(tiled_dir)
    assert (layout.mode, layout.size, layout.tile) == ("tile", NATIVE, TILE)
    assert np.load(tiled_dir / "train_images.npy", mmap_mode="r").shape == (len(competition.train), *NATIVE, 3)
    masks = np.load(tiled_dir / "train_masks.npy")
    tiles = read_tiles(tiled_dir)
    assert sorted(set(zip(tiles.y, tiles.x))) == [(0, 0), (0, 16), (8, 0), (8, 16)]  # last ones flush
    for row, y, x, foreground in tiles.head(40).itertuples(index=False):
        assert foreground == masks[row, y:y + 32, x:x + 32].sum()
    assert json.loads((tiled_dir / "layout.json").read_text())["scale"] == 1.0


def test_tile_mode_refuses_a_tile_larger_than_the_scaled_images(competition, tmp_path):
    with pytest.raises(InputError, match=r"prepare.tile \[32, 32\] is larger .* prepare.scale 0.5 \(20x24\)"):
        prepare_competition(competition, tmp_path / "p", (64, 64), mode="tile", scale=0.5, tile=TILE)
    assert not (tmp_path / "p").exists()


def test_tile_mode_refuses_training_images_of_different_sizes_naming_one(competition, tmp_path):
    odd = tmp_path / "odd.png"
    cv2.imwrite(str(odd), np.zeros((50, 48, 3), np.uint8))
    train = competition.train.copy()
    train.loc[3, "image"] = odd
    with pytest.raises(InputError, match=r"odd.png: 50x48 .* tile mode needs training images of one size"):
        prepare_competition(dataclasses.replace(competition, train=train), tmp_path / "p", (64, 64), mode="tile",
                            tile=TILE)


def crops(tiled_dir, foreground, epoch=0, seed=3):
    dataset = TileDataset(tiled_dir / "train_images.npy", tiled_dir / "train_masks.npy", read_tiles(tiled_dir),
                          TILE, draw=True, foreground=foreground, seed=seed)
    dataset.set_epoch(epoch)
    return [dataset[i] for i in range(len(dataset))]


def test_foreground_draws_always_hold_foreground_and_draws_repeat_exactly(tiled_dir):
    always = crops(tiled_dir, 1.0)
    assert all(mask.shape == TILE and image.shape == (*TILE, 3) and mask.any() for image, mask in always)
    never = crops(tiled_dir, 0.0)
    share = np.mean([mask.any() for _, mask in never])
    assert share < 0.95  # uniform crops miss the lesions often
    again = crops(tiled_dir, 1.0)
    assert all((a[0] == b[0]).all() and (a[1] == b[1]).all() for a, b in zip(always, again))
    other_epoch = crops(tiled_dir, 1.0, epoch=1)
    assert any((a[0] != b[0]).any() for a, b in zip(always, other_epoch))


FAST = Train(encoder_name="resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=(16, 8, 8), epochs=1,
             steps=6, batch_size=8, lr=0.003, num_workers=0, normalize="imagenet")


def test_tile_mode_trains_on_crops_and_predicts_whole_images_by_windows(tiled_dir, competition, tmp_path):
    index = pd.read_csv(tiled_dir / "train.csv", dtype={"id": str, "group": str})
    folds = stratified_group_folds(index, 2, seed=0)
    paths = FoldPaths(tiled_dir / "train_images.npy", tiled_dir / "train_masks.npy", tmp_path / "m.pt",
                      tmp_path / "oof", tmp_path / "live", layout=Layout.read(tiled_dir))
    metrics = train_fold(FAST, folds, 1, paths, seed=5)
    assert 0 <= metrics["oof_dice"] <= 1
    assert np.load(tmp_path / "oof" / "probs.npy").shape == ((folds.fold == 1).sum(), *NATIVE)  # whole images
    loaded = load_fold_models({1: paths.model}, "unet")
    assert loaded.contract.window_step == FAST.window_step
    sizes = [(40, 48)] * (len(competition.test) - 1) + [(37, 45)]  # any size is predicted, at its own size
    images = ImagesToPredict(competition.test.image, competition.read_image, sizes, channels=3)
    predict_test(loaded, images, tmp_path / "test.npz", batch_size=3, layout=paths.layout)
    assert count_maps(tmp_path / "test.npz") == len(competition.test)
    assert read_map(tmp_path / "test.npz", 0).shape == NATIVE and read_map(tmp_path / "test.npz", len(sizes) - 1).shape == (37, 45)


def test_tile_validation_pools_the_dice_over_tiles_where_a_per_tile_mean_rewards_empty_output():
    import torch

    from segpipe.training.epoch import evaluate
    from segpipe.training.loop import inference_contract

    class Nothing(torch.nn.Module):
        def forward(self, x):
            return torch.full_like(x[:, :1], -5.0)

    images = torch.zeros((4, 32, 32, 3), dtype=torch.uint8)
    masks = torch.zeros((4, 32, 32), dtype=torch.uint8)
    masks[0, :4, :4] = 1  # one tile of four has foreground
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, masks), batch_size=4)
    criterion = torch.nn.BCEWithLogitsLoss()
    contract = inference_contract(FAST)
    _, [per_tile] = evaluate(Nothing(), loader, criterion, torch.device("cpu"), contract)  # one class: one Dice
    _, [pooled] = evaluate(Nothing(), loader, criterion, torch.device("cpu"), contract, pooled=True)
    assert per_tile == 0.75 and pooled == 0.0
