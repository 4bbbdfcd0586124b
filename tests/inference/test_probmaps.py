"""Test probabilities on disk: a standard .npz, one map per member, ids alongside, same bytes every time."""
import numpy as np
import pytest

from segpipe.inference.probmaps import count_maps, map_ids, read_map, write_maps


def test_maps_and_ids_round_trip_in_a_plain_npz(tmp_path):
    maps = np.random.default_rng(0).integers(0, 256, (5, 6, 7), dtype=np.uint8)
    path = tmp_path / "test.npz"
    assert write_maps(path, [maps[:2], maps[2:]], ids=list("abcde")) == 5  # batches are fine
    assert count_maps(path) == 5 and map_ids(path) == list("abcde")
    for row in range(5):
        np.testing.assert_array_equal(read_map(path, row), maps[row])
    with np.load(path) as plain:
        np.testing.assert_array_equal(plain["0000003"], maps[3])
    again = tmp_path / "again.npz"
    write_maps(again, maps, ids=list("abcde"))
    assert again.read_bytes() == path.read_bytes()  # no clock in the bytes


def test_ids_must_match_the_maps_and_are_optional(tmp_path):
    maps = np.zeros((3, 4, 4), np.uint8)
    write_maps(tmp_path / "bare.npz", maps)
    assert map_ids(tmp_path / "bare.npz") is None and count_maps(tmp_path / "bare.npz") == 3
    with pytest.raises(ValueError, match="2 ids for 3 maps"):
        write_maps(tmp_path / "bad.npz", maps, ids=["a", "b"])


@pytest.mark.parametrize("spool", [1 << 20, 1])  # the later classes in memory, or spilled to a file at once
def test_class_maps_written_band_by_band_equal_the_whole_maps(tmp_path, monkeypatch, spool):
    from segpipe.inference import probmaps

    monkeypatch.setattr(probmaps, "SPOOL", spool)
    maps = np.random.default_rng(2).integers(0, 256, (2, 3, 10, 7), dtype=np.uint8)  # 2 images, 3 classes
    bands = [probmaps.RowBands((10, 7), [m[:, i:i + 4] for i in range(0, 10, 4)]) for m in maps]
    write_maps(tmp_path / "bands.npz", bands)
    write_maps(tmp_path / "whole.npz", [maps])  # one (B, C, H, W) batch
    assert (tmp_path / "bands.npz").read_bytes() == (tmp_path / "whole.npz").read_bytes()
    np.testing.assert_array_equal(read_map(tmp_path / "bands.npz", 1), maps[1])


def test_bands_that_do_not_add_up_to_the_map_are_refused(tmp_path):
    from segpipe.inference.probmaps import RowBands

    with pytest.raises(ValueError, match=r"8 rows written for a map of \(3, 10, 7\)"):
        write_maps(tmp_path / "short.npz", [RowBands((10, 7), [np.zeros((3, 8, 7), np.uint8)])])
    with pytest.raises(ValueError, match=r"a band of shape \(2, 2, 7\) in a map of \(3, 10, 7\)"):
        write_maps(tmp_path / "mixed.npz", [RowBands((10, 7), [np.zeros((3, 8, 7), np.uint8),
                                                               np.zeros((2, 2, 7), np.uint8)])])
