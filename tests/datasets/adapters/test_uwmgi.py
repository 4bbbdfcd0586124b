"""The UW-Madison GI tract adapter on a tiny tree in the competition's exact layout: 16-bit scans, train.csv labels."""
from __future__ import annotations

import gzip
import hashlib
import json
import pickle
import re
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from segpipe import datasets, rle
from segpipe.core.errors import InputError
from segpipe.datasets import rle_labels, source
from segpipe.datasets.adapters import uwmgi
from segpipe.datasets.base import SubmissionSpec
from segpipe.datasets.tree import Tree
from segpipe.evaluation import volumes
from segpipe.evaluation.holdout import score_holdout

# (H, W) of each case/day; 360 x 310 (W x H) is a real size, and not square, so row- and
# column-major RLE decode to different masks. case2's days 3 and 20, and case2 before
# case10, are in numeric order, which sorting the names as text gets wrong.
VOLUMES = {"case2_day3": (310, 360), "case2_day20": (310, 360), "case10_day0": (266, 266)}
SLICES = (1, 2, 3)
PROOF = "case2_day3_slice_0002"  # one off-centre, non-square large bowel on a 360 x 310 scan


def _organs(volume: str, number: int) -> dict[str, tuple[slice, slice]]:
    """Slice 1 shows no organ, slice 2 the large bowel, slice 3 all three, the two bowels overlapping."""
    height, width = VOLUMES[volume]
    shift = 5 * list(VOLUMES).index(volume)
    large = (slice(40 + shift, 110 + shift), slice(width - 150, width - 20))
    if number == 1:
        return {}
    if number == 2:
        return {"large_bowel": large}
    return {"large_bowel": large, "small_bowel": (slice(90, 160), slice(width - 60, width - 5)),
            "stomach": (slice(height - 60, height - 10), slice(20, 70))}


def _class_mask(volume: str, number: int, name: str) -> np.ndarray:
    mask = np.zeros(VOLUMES[volume], np.uint8)
    if name in _organs(volume, number):
        mask[_organs(volume, number)[name]] = 1
    return mask


def _expected(volume: str, number: int) -> np.ndarray:
    """The bit-packed mask: bit k for class k of large_bowel, small_bowel, stomach."""
    return sum((_class_mask(volume, number, name) << k for k, name in enumerate(uwmgi.CLASSES)),
               np.zeros(VOLUMES[volume], np.uint8))


def _kaggle_rle(mask: np.ndarray) -> str:
    """The encoder of the competition's public kernels and winners (`mask2rle`): `mask.flatten()`, 1-indexed."""
    pixels = np.concatenate([[0], mask.flatten(), [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


def _scan_name(split: str, volume: str, number: int, shape: tuple[int, int]) -> str:
    case = volume.split("_")[0]
    return f"{split}/{case}/{volume}/scans/slice_{number:04d}_{shape[1]}_{shape[0]}_1.50_1.50.png"


def _write_scan(path: Path, bright: np.ndarray, seed: int) -> None:
    """A dark 16-bit scan (0..600) with the organs bright (30000..40000)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 600, bright.shape, dtype=np.uint16)
    pixels[bright != 0] = rng.integers(30000, 40000, int(np.count_nonzero(bright)), dtype=np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), pixels)  # a 16-bit grayscale PNG, as the competition's


def _build(root: Path) -> Path:
    """train/<case>/<case>_<day>/scans/*.png, train.csv (3 rows a slice), an empty test/ and header-only sample."""
    rows = []
    for s, (volume, shape) in enumerate(VOLUMES.items()):
        for number in SLICES:
            _write_scan(root / _scan_name("train", volume, number, shape), _expected(volume, number),
                        seed=10 * s + number)
            rows += [f"{volume}_slice_{number:04d},{name},{_kaggle_rle(_class_mask(volume, number, name))}"
                     for name in uwmgi.CLASSES]
    (root / "train.csv").write_text("id,class,segmentation\n" + "".join(row + "\n" for row in rows))
    (root / "test").mkdir()
    (root / "sample_submission.csv").write_text("id,class,predicted\n")
    return root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return _build(tmp_path / "uwmgi")


def _ids() -> list[str]:
    return [f"{volume}_slice_{n:04d}" for volume in VOLUMES for n in SLICES]


def _masks(competition) -> dict[str, np.ndarray]:
    return {i: competition.read_mask(key) for i, key in zip(competition.train["id"], competition.train["mask"])}


def test_load(root: Path) -> None:
    competition = uwmgi.load(root)
    train, test = competition.train, competition.test
    assert list(train.columns) == ["id", "group", "slice", "volume", "image", "mask"]
    assert train["id"].tolist() == _ids()  # case, day and slice in numeric order
    assert train["group"].tolist() == ["case2"] * 6 + ["case10"] * 3  # a case's days in one group
    assert train["volume"].tolist() == [volume for volume in VOLUMES for _ in SLICES]
    assert train["slice"].tolist() == list(SLICES) * len(VOLUMES)
    assert train["image"].tolist() == [root / _scan_name("train", volume, n, shape)
                                       for volume, shape in VOLUMES.items() for n in SLICES]
    assert {rle_labels.mask_file(key) for key in train["mask"]} == {str(root / "train.csv")}
    assert competition.classes == ("large_bowel", "small_bowel", "stomach") and competition.labels.kind == "multilabel"
    assert competition.submission == SubmissionSpec(
        "id", "predicted", "C", None, competition="uw-madison-gi-tract-image-segmentation", class_column="class",
        labels=("large_bowel", "small_bowel", "stomach"), columns=("id", "class", "predicted"), code_competition=True)
    assert competition.submission.header() == ["id", "class", "predicted"]
    assert test.empty  # the public copy: the generic patient holdout makes the test set


def test_the_source_index_lists_the_scans_and_train_csv(root: Path) -> None:
    _add_test_scans(root, ["case7_day1_slice_0001"])
    tree = Tree.scan(root)
    names = [_scan_name("train", volume, n, shape) for volume, shape in VOLUMES.items() for n in SLICES]
    assert source.used_files(uwmgi.load(tree), tree) == sorted(
        [*names, "train.csv", "sample_submission.csv", _scan_name("test", "case7_day1", 1, (266, 266))])


def test_scans_read_as_one_uint8_channel_at_their_own_size(root: Path) -> None:
    competition = uwmgi.load(root)
    for image_file, volume in zip(competition.train["image"], competition.train["volume"]):
        image, original = competition.read_image(image_file, at_least=(64, 64))
        assert image.shape == (*VOLUMES[volume], 1) and image.dtype == np.uint8 and original == VOLUMES[volume]
        assert (image.min(), image.max()) == (0, 255)  # stretched by the scan's own min and max


def test_rle_is_row_major_as_the_scans_prove(root: Path) -> None:
    """train.csv's rows decode onto the scans' bright organs; read column-major they would not."""
    competition = uwmgi.load(root)
    masks = _masks(competition)
    for image_file, image_id, volume, number in competition.train[["image", "id", "volume", "slice"]].itertuples(
            index=False):
        mask = masks[image_id]
        assert mask.shape == VOLUMES[volume] and mask.dtype == np.uint8
        if _organs(volume, number):  # a scan without organs is stretched to full range: no "bright" to compare
            bright = competition.read_image(image_file)[0][..., 0] > 128
            np.testing.assert_array_equal(mask != 0, bright, err_msg=image_id)
        else:
            assert not mask.any(), image_id
    row = competition.train.set_index("id").loc[PROOF]
    bright = competition.read_image(row["image"])[0][..., 0] > 128
    written = _kaggle_rle(_class_mask("case2_day3", 2, "large_bowel"))
    assert np.array_equal(rle.decode(written, bright.shape, "C"), bright)
    assert bright.any() and not np.array_equal(rle.decode(written, bright.shape, "F"), bright)


def test_overlapping_classes_set_both_bits(root: Path) -> None:
    masks = _masks(uwmgi.load(root))
    for volume in VOLUMES:
        mask = masks[f"{volume}_slice_0003"]
        for k, name in enumerate(uwmgi.CLASSES):
            np.testing.assert_array_equal(mask & (1 << k) != 0, _class_mask(volume, 3, name) != 0)
        assert set(np.unique(mask)) == {0, 1, 2, 3, 4}  # 3: large and small bowel on the same pixels
        np.testing.assert_array_equal(mask, _expected(volume, 3))
    assert set(np.unique(masks[PROOF])) == {0, 1}


def test_the_mask_reader_pickles_without_the_table(root: Path) -> None:
    """Prepare's pool pickles the readers with every chunk of rows: they must carry the key, not train.csv."""
    competition = uwmgi.load(root)
    pickled = pickle.dumps(competition.read_mask)
    assert len(pickled) < 200 and len(pickle.dumps(competition.read_image)) < 200
    key = competition.train.set_index("id").loc["case10_day0_slice_0003", "mask"]
    np.testing.assert_array_equal(pickle.loads(pickled)(str(key)), _expected("case10_day0", 3))


def test_holdout_moves_whole_cases_with_all_their_days(root: Path) -> None:
    competition = datasets.hold_out_patients(uwmgi.load(root), 0.5, seed=0)
    train, test = competition.train, competition.test
    assert train.group.nunique() == test.group.nunique() == 1 and not set(train.group) & set(test.group)
    held = test.group.iloc[0]
    assert set(test.volume) == {volume for volume in VOLUMES if volume.startswith(held + "_")}
    assert list(test.columns) == ["id", "group", "slice", "volume", "image", "mask"]


def _submission(competition, drop: tuple[str, str] | None = None) -> Path:
    """The holdout's true masks as a submission (row-major RLE), less the class `drop` = (id, class)."""
    rows = []
    for image_id, key in zip(competition.test["id"], competition.test["mask"]):
        mask = competition.read_mask(key)
        for k, name in enumerate(uwmgi.CLASSES):
            encoded = "" if (image_id, name) == drop else _kaggle_rle((mask >> k) & 1)
            rows.append(f"{image_id},{name},{encoded}\n")
    path = competition.test["image"].iloc[0].parents[5] / "submission.csv"
    path.write_text("id,class,predicted\n" + "".join(rows))
    return path


def test_the_holdout_is_scored_by_the_competitions_metric_per_volume(root: Path) -> None:
    """0.4 Dice + 0.6 (1 - Hausdorff / diagonal) per (case/day, class); a perfect submission scores 1."""
    competition = datasets.hold_out_patients(uwmgi.load(root), 0.5, seed=0)
    held = sorted(set(competition.test.volume))
    perfect = score_holdout(_submission(competition), competition)["volumes"]
    assert perfect["score"] == 1.0 and perfect["volumes"] == len(held)
    assert perfect["pairs"] == 3 * len(held)  # slice 3 shows every organ: no (volume, class) pair is empty
    volume = held[0]
    missed = score_holdout(_submission(competition, (f"{volume}_slice_0002", "large_bowel")), competition)
    bowel = missed["volumes"]["classes"]["large_bowel"]
    true = np.stack([_class_mask(volume, n, "large_bowel") for n in SLICES]).astype(bool)
    pred = true.copy()
    pred[1] = False
    assert bowel["dice"] == pytest.approx((len(held) - 1 + volumes.dice(pred, true)) / len(held))
    assert bowel["hausdorff"] == pytest.approx(volumes.hausdorff(pred, true) / len(held)) and bowel["hausdorff"] > 0
    assert missed["volumes"]["classes"]["stomach"]["score"] == 1.0


def _add_test_scans(root: Path, listed: list[str]) -> None:
    for image_id in listed:
        volume, number = image_id.rsplit("_slice_", 1)
        _write_scan(root / _scan_name("test", volume, int(number), (266, 266)), np.zeros((266, 266)), seed=1)
    (root / "sample_submission.csv").write_text(
        "id,class,predicted\n" + "".join(f"{i},{name},\n" for i in listed for name in uwmgi.CLASSES))


def test_test_scans_follow_the_sample(root: Path) -> None:
    listed = ["case7_day2_slice_0001", "case7_day1_slice_0002", "case7_day1_slice_0001"]  # not sorted
    _add_test_scans(root, listed)
    competition = uwmgi.load(root)
    test = competition.test
    assert test["id"].tolist() == listed
    assert test["group"].tolist() == ["case7"] * 3 and test["slice"].tolist() == [1, 2, 1]
    assert test["volume"].tolist() == ["case7_day2", "case7_day1", "case7_day1"]
    assert test["image"].tolist() == [root / _scan_name("test", i.rsplit("_slice_")[0], int(i[-4:]), (266, 266))
                                      for i in listed]
    assert competition.submission.sample_submission == root / "sample_submission.csv"
    (root / "sample_submission.csv").write_text("id,class,predicted\n")  # lists none: the scans in order
    competition = uwmgi.load(root)
    assert competition.test["id"].tolist() == sorted(listed) and competition.submission.sample_submission is None
    _add_test_scans(root, listed)
    extra = root / _scan_name("test", "case7_day2", 5, (266, 266))
    _write_scan(extra, np.zeros((266, 266)), seed=0)
    with pytest.raises(InputError, match=r"sample_submission\.csv disagrees .*not in the sample: .*slice_0005"):
        uwmgi.load(root)
    extra.unlink()
    (root / _scan_name("test", "case7_day1", 2, (266, 266))).unlink()
    with pytest.raises(InputError, match=r"slices with no scan in .*test: case7_day1_slice_0002"):
        uwmgi.load(root)


def _replace_row(root: Path, image_id: str, name: str, encoded: str) -> None:
    """Put the row (image_id, name, encoded) in train.csv in place of that pair's row, if it has one."""
    pair = f"{image_id},{name},"
    lines = [line for line in (root / "train.csv").read_text().splitlines() if not line.startswith(pair)]
    (root / "train.csv").write_text("\n".join([*lines, pair + encoded]) + "\n")


@pytest.mark.parametrize("image_id, name, encoded, problem", [
    ("case2_day3_slice_0001", "liver", "1 3", "class 'liver', which is not one of large_bowel, small_bowel"),
    ("case2_day3_slice_0001", "stomach", "9 3 2 1", "class stomach: malformed RLE: RLE run 2 '2 1'"),
    ("case10_day0_slice_0002", "small_bowel", "12 x", "class small_bowel: malformed RLE: RLE token 'x'"),
    ("case10_day0_slice_0002", "small_bowel", "70756 2", r"runs past the end of the mask \(70756 pixels\)"),
    ("case2_day3_slice_0009", "stomach", "", r"rows for slices with no scan in .*train \(1\)"),
])
def test_bad_train_csv_names_the_file_and_the_id(root: Path, image_id: str, name: str, encoded: str,
                                                 problem: str) -> None:
    _replace_row(root, image_id, name, encoded)
    with pytest.raises(InputError, match=rf"{re.escape(str(root / 'train.csv'))}: .*{image_id}") as raised:
        uwmgi.load(root)
    assert re.search(problem, str(raised.value))


def test_bad_train_csv_layout_names_the_file(root: Path) -> None:
    with open(root / "train.csv", "a") as csv:
        csv.write("case2_day3_slice_0001,stomach,\n")  # a class listed twice
    with pytest.raises(InputError, match=r"train\.csv: image case2_day3_slice_0001 lists class stomach twice"):
        uwmgi.load(root)
    (root / "train.csv").write_text("id,segmentation\n")
    with pytest.raises(InputError, match=r"train\.csv: expected the columns id,class,segmentation"):
        uwmgi.load(root)


def test_a_scan_without_rows_or_with_another_name_is_named(root: Path) -> None:
    name = _scan_name("train", "case2_day3", 7, (310, 360))
    _write_scan(root / name, np.zeros((310, 360)), seed=0)
    with pytest.raises(InputError, match=rf"train\.csv: no rows for these scans \(1; .*\): {re.escape(name)}"):
        uwmgi.load(root)
    (root / name).rename((root / name).with_name("slice_7.png"))
    with pytest.raises(InputError, match=r"/train: expected case<N>/.*, found .*case2_day3/scans/slice_7\.png"):
        uwmgi.load(root)


def test_a_size_in_the_name_that_is_not_the_png_s_names_the_file_and_the_id(root: Path) -> None:
    real = root / _scan_name("train", "case2_day20", 1, (310, 360))
    wrong = real.with_name("slice_0001_266_266_1.50_1.50.png")
    real.rename(wrong)
    competition = uwmgi.load(root)  # slice 1 has no organ, so its RLEs fit either size
    assert competition.read_mask(competition.train["mask"][3]).shape == (266, 266)
    with pytest.raises(InputError, match=rf"{re.escape(str(wrong))}: scan case2_day20_slice_0001 is 360x310 \(WxH\) "
                                         r"but its file name says 266x266"):
        competition.read_image(wrong)


def test_reads_the_competition_zip_in_place(root: Path, tmp_path: Path) -> None:
    archive = tmp_path / "uw-madison-gi-tract-image-segmentation.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(root.rglob("*")):
            out.write(path, path.relative_to(root))
    competition = uwmgi.load(archive)
    assert competition.train["id"].tolist() == _ids()
    assert rle_labels.mask_file(competition.train["mask"][0]) == f"{archive}!train.csv"
    for image_id, mask in _masks(competition).items():
        volume, number = image_id.rsplit("_slice_", 1)
        np.testing.assert_array_equal(mask, _expected(volume, int(number)), err_msg=image_id)
    assert competition.read_image(competition.train["image"][4])[1] == (310, 360)


def _checksums(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_source_is_only_read(root: Path) -> None:
    _add_test_scans(root, ["case7_day1_slice_0001"])
    before = _checksums(root)
    competition = uwmgi.load(root)
    _masks(competition)
    for image in [*competition.train["image"], *competition.test["image"]]:
        competition.read_image(image)
    assert _checksums(root) == before  # not one file added, removed or changed


def test_dvc_exp_run_writes_the_competitions_submission(tmp_path: Path) -> None:
    """`dvc exp run -S base.dataset=uwmgi -S uwmgi.source=...`: `id,class,predicted`, 3 rows a slice, row-major."""
    from dvc_repo import make_repo, run

    source = _build(tmp_path / "uwmgi")
    listed = ["case7_day2_slice_0001", "case7_day1_slice_0002", "case7_day1_slice_0001"]
    _add_test_scans(source, listed)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.rglob("*") if p.is_file()}
    repo = make_repo(tmp_path / "repo", {})
    run(["dvc", "exp", "run", "-S", "base.dataset=uwmgi", "-S", f"uwmgi.source={source}",
         "-S", "uwmgi.holdout_patients=0"], repo)
    text = gzip.decompress((repo / "submissions/submit.csv.gz").read_bytes()).decode()
    rows = [line.split(",") for line in text.splitlines()]
    assert rows[0] == ["id", "class", "predicted"]
    assert [(r[0], r[1]) for r in rows[1:]] == [(i, name) for i in listed for name in uwmgi.CLASSES]
    for row in rows[1:]:
        rle.validate(row[2], 266 * 266)
    scores = json.loads((repo / "metrics/cv.json").read_text())["volumes"]  # the competition's metric, OOF
    assert scores["volumes"] == len(VOLUMES) and set(scores["classes"]) == set(uwmgi.CLASSES)
    assert scores["score"] == pytest.approx(0.4 * scores["dice"] + 0.6 * (1 - scores["hausdorff"]))
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.rglob("*") if p.is_file()} == before
