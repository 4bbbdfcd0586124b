"""The generic RLE-csv adapter: Kaggle's label csv formats from params alone, on trees made here."""
import numpy as np
import pytest
from formats import SIZE, airbus, severstal, union_mask, write_png

from segpipe import rle
from segpipe.core.errors import InputError
from segpipe.datasets.adapters import rle_csv
from segpipe.datasets.adapters.rle_csv import union
from segpipe.datasets.tree import natural_key
from segpipe.submission.validate import check_uploadable

AIRBUS = dict(labels="train_ship_segmentations_v2.csv", train_images="train_v2/{id}", test_images="test_v2/{id}",
              sample_submission="sample_submission_v2.csv", instances=True, metric="object_f2")


def test_a_row_per_instance_is_ored_and_submitted_a_row_per_instance(tmp_path):
    truth = airbus(tmp_path)
    competition = rle_csv.load(tmp_path, **AIRBUS)
    assert competition.train.id.tolist() == sorted(truth, key=natural_key)  # digit runs compared as numbers
    for image_id, key in zip(competition.train.id, competition.train["mask"]):
        assert np.array_equal(competition.read_mask(key) != 0, union_mask(truth[image_id]))
    assert any(not ships for ships in truth.values())  # an empty row: an image with no ship
    assert competition.test.id.tolist() == [f"{i:04x}cd.png" for i in range(4)]  # the sample's order
    spec = competition.submission
    assert spec.rows == "instance" and spec.header() == ["ImageId", "EncodedPixels"]
    assert spec.competition is None  # make submit refuses it unless rle_csv.competition names the slug
    named = rle_csv.load(tmp_path, **AIRBUS, competition="airbus-ship-detection")
    assert check_uploadable("rle_csv", named.submission) == "airbus-ship-detection"
    assert competition.metric == "object_f2" and competition.classes == ()


def test_a_row_per_image_and_class_with_unlisted_images_empty(tmp_path):
    truth = severstal(tmp_path)
    competition = rle_csv.load(tmp_path, train_images="train_images/{id}", every_image=True, class_column="ClassId",
                               classes=["1", "2", "3", "4"], test_images="test_images/{id}",
                               sample_submission="sample_submission.csv")
    assert competition.train.id.tolist() == sorted(truth)  # listed in train.csv or not
    for image_id, key in zip(competition.train.id, competition.train["mask"]):
        assert np.array_equal(competition.read_mask(key), truth[image_id])
    assert competition.submission.header() == ["ImageId", "EncodedPixels", "ClassId"]
    assert competition.submission.labels == ("1", "2", "3", "4") and competition.submission.rows == "image"


def test_ids_that_name_the_class_are_split(tmp_path):
    truth = severstal(tmp_path)
    lines = ["Image_Label,EncodedPixels"] + [f"{i}_{name},{rle.encode((bits >> k) & 1 > 0, order='F')}"
                                              for i, bits in truth.items() for k, name in enumerate("abcd")]
    (tmp_path / "clouds.csv").write_text("\n".join(lines) + "\n")
    competition = rle_csv.load(tmp_path, labels="clouds.csv", train_images="train_images/{id}", id_column="Image_Label",
                               id_split="_", classes=["a", "b", "c", "d"], mask_size=[20, 24])
    for image_id, key in zip(competition.train.id, competition.train["mask"]):
        assert np.array_equal(competition.read_mask(key), truth[image_id])
    assert competition.submission.id_format == "{id}_{label}" and competition.submission.class_column is None
    assert competition.submission.mask_size == (20, 24)  # Clouds' rule: submitted at a quarter of the images
    assert competition.test.empty  # no test set: a holdout is made from the training images


def test_a_row_per_image_with_empty_cells_and_row_major_runs(tmp_path):
    rng = np.random.default_rng(3)
    lines, truth = ["id,rle_mask"], {}
    for i in range(6):
        mask = np.zeros(SIZE, bool)
        if i % 2:
            mask[5:9 + i, 3:20] = True
        truth[f"s{i}"] = mask
        write_png(tmp_path / "train/images" / f"s{i}.png", rng.integers(0, 255, (*SIZE, 3)).astype(np.uint8))
        lines.append(f"s{i},{rle.encode(mask, order='C')}")
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    competition = rle_csv.load(tmp_path, train_images="train/images/{id}.png", id_column="id", rle_column="rle_mask",
                               rle_order="C", metric="iou_hits")
    for image_id, key in zip(competition.train.id, competition.train["mask"]):
        assert np.array_equal(competition.read_mask(key) != 0, truth[image_id])
    assert competition.submission.header() == ["id", "rle_mask"] and competition.submission.rle_order == "C"


def test_rle_variants_become_one_absolute_one_indexed_union():
    assert union(["1 3", "10 2"]) == "1 3 10 2"
    assert union(["3 4", "1 3"]) == "1 6"  # overlapping instances: one run
    assert union(["1 3", "4 2"]) == "1 5"  # touching runs join
    assert union(["0 3 9 2"], start=0) == "1 3 10 2"
    assert union(["0 3 6 2"], start=0, relative=True) == "1 3 10 2"  # SIIM-ACR: 6 after the end of the first run
    assert union(["-1"], empty=("", "-1")) == "" and union([]) == ""
    with pytest.raises(ValueError, match="odd number"):
        union(["1 2 3"])
    with pytest.raises(ValueError, match="length below 1"):
        union(["1 0"])


def test_zero_indexed_relative_runs_decode_as_the_competition_meant(tmp_path):
    mask = np.zeros(SIZE, bool)
    mask[2:5, 7] = mask[10:12, 30] = True  # column-major runs: two
    flat = np.flatnonzero(mask.T.ravel())  # 0-indexed, column-major
    runs = [(flat[0], 3), (flat[3], 2)]
    relative = f"{runs[0][0]} 3 {runs[1][0] - runs[0][0] - 3} 2"
    write_png(tmp_path / "train" / "a.png", np.zeros((*SIZE, 3), np.uint8))
    (tmp_path / "train.csv").write_text(f"ImageId,EncodedPixels\na, {relative}\n")
    competition = rle_csv.load(tmp_path, train_images="train/{id}.png", rle_start=0, rle_relative=True)
    assert np.array_equal(competition.read_mask(competition.train["mask"][0]) != 0, mask)


def test_bad_labels_are_errors_naming_the_file_and_the_image(tmp_path):
    airbus(tmp_path)
    with pytest.raises(InputError, match=r"image .* has \d rows; if each row is one object, set instances: true"):
        rle_csv.load(tmp_path, **{**AIRBUS, "instances": False})
    with pytest.raises(InputError, match="no column 'Encoded'"):
        rle_csv.load(tmp_path, **{**AIRBUS, "rle_column": "Encoded"})
    with pytest.raises(InputError, match=r"rows for images with no file 'train/\{id\}'"):
        rle_csv.load(tmp_path, **{**AIRBUS, "train_images": "train/{id}"})
    with pytest.raises(InputError, match="object metrics are for one class"):
        rle_csv.load(tmp_path, **{**AIRBUS, "class_column": "ImageId", "classes": ["a"]})
    with pytest.raises(InputError, match="class_column / id_split name each row's class"):
        rle_csv.load(tmp_path, **{**AIRBUS, "class_column": "ImageId"})
    csv = tmp_path / AIRBUS["labels"]
    csv.write_text(csv.read_text() + "0000ab.png,5 99999\n")
    with pytest.raises(InputError, match=r"train_ship_segmentations_v2.csv: image 0000ab.png: malformed RLE"):
        rle_csv.load(tmp_path, **AIRBUS)
