"""Sliding windows: coverage, Gaussian stitching, and tiled == untiled for a model that cannot tell."""
import numpy as np
import pytest
import torch

from segpipe.inference.windows import bands, gaussian_weights, predict_image, stitch, window_starts

CPU = torch.device("cpu")


@pytest.mark.parametrize("length,tile,step", [(100, 32, 0.5), (97, 32, 0.5), (32, 32, 0.5), (20, 32, 0.5),
                                              (1918, 256, 0.5), (1280, 256, 1.0), (65, 64, 0.25)])
def test_windows_cover_every_pixel_at_most_a_step_apart_and_end_flush(length, tile, step):
    starts = window_starts(length, tile, step)
    covered = np.zeros(max(length, tile), bool)
    for start in starts:
        covered[start:start + tile] = True
    assert covered.all() and starts[0] == 0 and starts[-1] == max(0, length - tile)
    assert all(0 < b - a <= tile * step for a, b in zip(starts, starts[1:]))


def test_the_gaussian_is_one_at_the_centre_positive_at_the_edges_and_symmetric():
    weights = gaussian_weights((64, 96))
    assert weights.max() == 1 and weights.min() > 0 and weights[0, 0] < 1e-3
    torch.testing.assert_close(weights, weights.flip(0).flip(1))


def constant(value):
    return lambda batch: torch.full(batch.shape[:3], value)


@pytest.mark.parametrize("size", [(100, 150), (64, 64), (70, 33), (20, 200)])
def test_stitching_a_constant_output_gives_that_constant_everywhere_edges_included(size):
    image = np.zeros((*size, 3), np.uint8)
    out = stitch(constant(0.6), image, (32, 64), 0.5, batch_size=5, device=CPU)
    assert out.shape == size and (out == round(0.6 * 255)).all()


def mean_colour(batch):
    """A model that answers each pixel from that pixel alone: tiling cannot change its output."""
    return batch.float().mean(-1) / 255


@pytest.mark.parametrize("step,batch_size", [(0.5, 1), (0.5, 7), (0.25, 64), (1.0, 3)])
def test_tiled_equals_untiled_for_a_per_pixel_model(step, batch_size):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (131, 197, 3), dtype=np.uint8)
    whole = (mean_colour(torch.from_numpy(image[None]))[0] * 255).round().to(torch.uint8).numpy()
    tiled = stitch(mean_colour, image, (64, 64), step, batch_size, CPU)
    assert np.abs(tiled.astype(int) - whole).max() <= 1  # float32 sums of weights: at most one rounding step apart
    assert (tiled == whole).mean() > 0.999


def test_bands_hand_back_each_row_once_in_order_and_group_window_rows_into_batches():
    image = np.zeros((300, 90, 3), np.uint8)
    out = list(predict_image(constant(1.0), image, (64, 64), 0.5, batch_size=8, device=CPU))
    starts = [top for top, _ in out]
    assert starts == sorted(starts) and sum(len(rows) for _, rows in out) == 300
    assert all(top + len(rows) == nxt for (top, rows), nxt in zip(out, starts[1:]))
    assert all(len(group) == 4 for group in bands(300, 90, (64, 64), 0.5, 8)[:-1])  # 2 windows a row, 8 a band


def class_colours(batch):
    """A per-pixel model with one map per colour channel: (B, 3, h, w), as a 3-class ensemble answers."""
    return batch.float().permute(0, 3, 1, 2) / 255


def test_class_maps_are_stitched_a_channel_each_and_equal_the_untiled_maps():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (99, 131, 3), dtype=np.uint8)
    whole = (class_colours(torch.from_numpy(image[None]))[0] * 255).round().to(torch.uint8).numpy()
    tiled = stitch(class_colours, image, (64, 64), 0.5, 5, CPU)
    assert tiled.shape == (3, 99, 131)
    assert np.abs(tiled.astype(int) - whole).max() <= 1 and (tiled == whole).mean() > 0.999
    out = list(predict_image(class_colours, image, (64, 64), 0.5, batch_size=2, device=CPU))
    assert all(rows.shape[0] == 3 and rows.shape[2] == 131 for _, rows in out)  # (classes, rows, W) bands
    assert sum(rows.shape[1] for _, rows in out) == 99
