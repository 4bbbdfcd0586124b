"""Per-instance submission rows (Airbus, DSB 2018): written, validated and scored on objects."""
import gzip
import hashlib

import numpy as np
import pandas as pd
import pytest

from segpipe import rle
from segpipe.core.errors import InputError
from segpipe.datasets import SubmissionSpec
from segpipe.datasets.base import Competition
from segpipe.evaluation.holdout import score_holdout
from segpipe.evaluation.postprocess import Rule
from segpipe.inference.probmaps import write_maps
from segpipe.submission.submit import probability_to_mask, write_submission
from segpipe.submission.validate import validate_submission


@pytest.fixture
def case(tmp_path):
    """Three test maps: two blobs, none, one blob; a sample submission listing them in another order."""
    probs = np.zeros((3, 32, 32), np.uint8)
    probs[0, 2:6, 2:6] = probs[0, 20:30, 10:14] = 240
    probs[2, 8:12, 8:20] = 200
    write_maps(tmp_path / "test.npz", probs)
    index = pd.DataFrame({"id": ["b.jpg", "a.jpg", "c.jpg"], "height": [32, 32, 64], "width": [32, 32, 64]})
    sample = tmp_path / "sample.csv"
    pd.DataFrame({"ImageId": index.id, "EncodedPixels": "1 1"}).to_csv(sample, index=False)
    return tmp_path, probs, index, SubmissionSpec("ImageId", "EncodedPixels", "F", sample, rows="instance")


def test_each_component_is_a_row_and_an_image_without_one_an_empty_row(case):
    tmp_path, probs, index, spec = case
    out = tmp_path / "submit.csv.gz"
    write_submission(tmp_path / "test.npz", index, spec, Rule(0.5), out_path=out, workers=2)
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert table.ImageId.tolist() == ["b.jpg", "b.jpg", "a.jpg", "c.jpg"]
    assert table.EncodedPixels[2] == ""
    for image, (i, row) in zip(("b.jpg", "a.jpg", "c.jpg"), index.iterrows()):
        shape = (row.height, row.width)
        decoded = [rle.decode(code, shape, "F") for code in table.EncodedPixels[table.ImageId == image] if code]
        union = np.logical_or.reduce(decoded) if decoded else np.zeros(shape, bool)
        assert np.array_equal(union, probability_to_mask(probs[i], *shape, Rule(0.5)))
    first, second = (rle.decode(code, (32, 32), "F") for code in table.EncodedPixels[:2])
    assert first[2, 2] and second[20, 10] and not (first & second).any()  # label order: the first pixel met
    again = tmp_path / "again.csv.gz"
    write_submission(tmp_path / "test.npz", index, spec, Rule(0.5), out_path=again, workers=1)
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(out.read_bytes()).digest()


@pytest.mark.parametrize("lines, problem", [
    (["ImageId,EncodedPixels", "a.jpg,", "b.jpg,", "c.jpg,"], "id 'b.jpg' comes first"),
    (["ImageId,EncodedPixels", "b.jpg,1 3", "a.jpg,", "b.jpg,9 2", "c.jpg,"], "rows of id 'b.jpg' are not together"),
    (["ImageId,EncodedPixels", "b.jpg,1 3", "b.jpg,", "a.jpg,", "c.jpg,"], "has instances and an empty row"),
    (["ImageId,EncodedPixels", "b.jpg,1 3", "b.jpg,2 4", "a.jpg,", "c.jpg,"], "two of its instances overlap"),
    (["ImageId,EncodedPixels", "b.jpg,", "a.jpg,"], "no row for id 'c.jpg'"),
    (["ImageId,EncodedPixels", "b.jpg,", "a.jpg,", "c.jpg,0 1"], "row 3, id 'c.jpg': malformed RLE"),
    (["ImageId,EncodedPixels", "b.jpg,", "x.jpg,"], "'x.jpg', which is not a test image"),
])
def test_validation_names_the_problem(case, lines, problem):
    tmp_path, _, index, spec = case
    path = tmp_path / "bad.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=problem):
        validate_submission(path, spec, dict(zip(index.id, index.height * index.width)))


def test_a_sample_id_without_a_test_image_is_named(case):
    tmp_path, _, index, spec = case
    path = tmp_path / "submit.csv"
    path.write_text("ImageId,EncodedPixels\nb.jpg,\na.jpg,\nc.jpg,1 2\n")
    n_pixels = dict(zip(index.id[:2], index.height[:2] * index.width[:2]))  # c.jpg: in the sample, no test image
    with pytest.raises(InputError, match="row 3 has id 'c.jpg', which is not a test image"):
        validate_submission(path, spec, n_pixels)


def test_the_holdout_scores_the_submitted_instances_against_the_true_objects(tmp_path):
    truth = np.zeros((16, 16), bool)
    truth[2:6, 2:10] = True  # one object, 32 px
    split = [truth.copy(), truth.copy()]
    split[0][:, 6:] = False
    split[1][:, :6] = False  # the same pixels as two touching instances: IoU 0.5 each, no hit
    test = pd.DataFrame({"id": ["a"], "image": ["a.png"], "group": ["a"], "mask": ["a"]})
    spec = SubmissionSpec("ImageId", "EncodedPixels", "F", None, rows="instance")
    competition = Competition("held", test.iloc[:0], test, spec, read_image=None, read_mask=lambda _: truth,
                              metric="object_ap")
    for rows, score in (([truth], 1.0), (split, 0.0)):
        path = tmp_path / "submit.csv"
        path.write_text("ImageId,EncodedPixels\n" + "".join(f"a,{rle.encode(m, 'F')}\n" for m in rows))
        scored = score_holdout(path, competition)
        assert scored["metric"] == "object_ap" and scored["score"] == pytest.approx(score)
        assert scored["dice"] == pytest.approx(1.0)  # the pixels are the same
