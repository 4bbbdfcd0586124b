import errno
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import zlib

import numpy as np
import pandas as pd
import pytest

from segpipe import rle
from segpipe.core.errors import InputError
from segpipe.core.labels import Labels, argmax_first
from segpipe.datasets import SubmissionSpec, hold_out_patients
from segpipe.evaluation.blend import blend_maps
from segpipe.evaluation.holdout import score_holdout
from segpipe.evaluation.postprocess import Rule
from segpipe.evaluation.tune import rule_counts
from segpipe.inference.probmaps import write_maps
from segpipe.submission.submit import ROWS_PER_MEMBER, Blend, gzip_member, probability_to_mask, write_submission
from segpipe.submission.validate import validate_submission


@pytest.fixture
def case(tmp_path):
    """Five test images of assorted original sizes, a sample submission in shuffled order."""
    rng = np.random.default_rng(0)
    probs = rng.integers(0, 256, (5, 32, 32), dtype=np.uint8)
    probs[2] = 0  # one image predicts nothing
    write_maps(tmp_path / "test.npz", probs)
    index = pd.DataFrame({"id": ["7", "3", "12", "1", "5"], "height": [40, 32, 40, 64, 20], "width": [48, 32, 48, 30, 20]})
    sample = tmp_path / "sample_submission.csv"
    pd.DataFrame({"img": index.id, "pixels": "1 1"}).to_csv(sample, index=False)
    return tmp_path, probs, index, SubmissionSpec("img", "pixels", "F", sample)


def rows(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_rows_follow_the_sample_and_decode_to_the_resized_masks(case):
    tmp_path, probs, index, spec = case
    out = tmp_path / "submit.csv.gz"
    write_submission(tmp_path / "test.npz", index, spec, Rule(0.5, 0.5, 0), out_path=out, workers=2)
    table = rows(out)
    assert list(table.columns) == ["img", "pixels"] and table.img.tolist() == index.id.tolist()
    for i, row in index.iterrows():
        expected = probability_to_mask(probs[i], row.height, row.width, Rule(0.5, 0.5, 0))
        np.testing.assert_array_equal(rle.decode(table.pixels[i], (row.height, row.width), order="F"), expected)
    assert table.pixels[2] == ""


def test_same_inputs_same_bytes(case):
    tmp_path, _, index, spec = case
    digests = []
    for name in ("a.csv.gz", "b.csv.gz"):
        write_submission(tmp_path / "test.npz", index, spec, Rule(0.4, 0.4, 10), tmp_path / name, workers=2)
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_min_area_is_scaled_to_the_original_size():
    prob = np.zeros((32, 32), np.uint8)
    prob[:3, :3] = 255  # 9 training-size pixels, 36 at twice the size
    assert probability_to_mask(prob, 64, 64, Rule(0.5, 0.5, 9)).sum() == 36
    assert probability_to_mask(prob, 64, 64, Rule(0.5, 0.5, 10)).sum() == 0


def write_rows(path, lines):
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "lines, problem",
    [
        (["id,pixels", "7,", "3,", "12,", "1,", "5,"], "header"),
        (["img,pixels", "3,", "7,", "12,", "1,", "5,"], "row 1 has id '3'"),
        (["img,pixels", "7,", "3,", "12,", "1,"], "4 rows"),
        (["img,pixels", "7,", "3,", "12,", "1,", "5,", "9,"], "end of file"),
        (["img,pixels", "7,1 2 2 2", "3,", "12,", "1,", "5,"], "'7': malformed RLE"),
        (["img,pixels", "7,", "3,1020 10", "12,", "1,", "5,"], "'3': malformed RLE"),
    ],
)
def test_validation_names_the_problem(case, lines, problem):
    tmp_path, _, index, spec = case
    path = tmp_path / "bad.csv.gz"
    write_rows(path, lines)
    sizes = dict(zip(index.id, index.height * index.width))
    with pytest.raises(InputError, match=problem):
        validate_submission(path, spec, sizes)


def test_a_failed_validation_publishes_nothing(case, monkeypatch):
    tmp_path, _, index, spec = case
    monkeypatch.setattr("segpipe.submission.submit.rle.encode", lambda mask, order: "0 5")  # malformed: 0-indexed
    with pytest.raises(InputError, match="malformed RLE"):
        write_submission(tmp_path / "test.npz", index, spec, Rule(0.5, 0.5, 0), tmp_path / "submit.csv.gz",
                         workers=1)
    assert not list(tmp_path.glob("*submit*"))


def _old_submission(tmp_path):
    out = tmp_path / "submissions" / "submit.csv.gz"
    out.parent.mkdir()
    out.write_bytes(b"yesterday's submission")
    return out


@pytest.mark.parametrize("fault, problem", [
    ("unknown id", "row 3 has id '99', the sample submission has '12'"),
    ("a row short", "5 rows, the sample submission has 6"),
    ("malformed RLE", "'7': malformed RLE"),
])
def test_a_bad_submission_never_reaches_submissions_and_the_old_one_is_kept(case, monkeypatch, fault, problem):
    tmp_path, _, index, spec = case
    if fault == "unknown id":
        index = index.assign(id=index.id.replace("12", "99"))
    elif fault == "a row short":  # the sample lists an id the test set lacks
        with open(spec.sample_submission, "a") as sample:
            sample.write("42,1 1\n")
    else:
        monkeypatch.setattr("segpipe.submission.submit.rle.encode", lambda mask, order: "0 5")
    out = _old_submission(tmp_path)
    with pytest.raises(InputError, match=problem):
        write_submission(tmp_path / "test.npz", index, spec, Rule(0.5, 0.5, 0), out, workers=1)
    assert [p.name for p in out.parent.iterdir()] == ["submit.csv.gz"]
    assert out.read_bytes() == b"yesterday's submission"


def test_stale_probabilities_are_refused(case):
    tmp_path, probs, index, spec = case
    write_maps(tmp_path / "test.npz", probs[:4])
    with pytest.raises(InputError, match=r"test.npz: 4 probability maps for the 5 test images.*dvc repro predict"):
        write_submission(tmp_path / "test.npz", index, spec, Rule(0.5, 0.5, 0), tmp_path / "submit.csv.gz",
                         workers=1)
    assert not list(tmp_path.glob("*submit*"))


def test_the_test_maps_are_blended_as_the_oof_maps_were(case):
    """Submit blends each model's maps with the OOF formula; a model weighted 0 is never read."""
    tmp_path, probs, index, spec = case
    other = np.ascontiguousarray(probs[:, ::-1])
    write_maps(tmp_path / "other.npz", other)
    blend = Blend({"a": tmp_path / "test.npz", "b": tmp_path / "other.npz", "c": tmp_path / "absent.npz"},
                  {"a": 2, "b": 1, "c": 0})
    for row in range(len(probs)):
        np.testing.assert_array_equal(blend.read(row), blend_maps([probs[row], other[row]], [2, 1]))
    write_submission(blend, index, spec, Rule(0.5, 0.5, 0), tmp_path / "blend.csv.gz", workers=2)
    expected = [rle.encode(probability_to_mask(blend.read(i), h, w, Rule(0.5, 0.5, 0)), order="F")
                for i, (h, w) in enumerate(zip(index.height, index.width))]
    assert rows(tmp_path / "blend.csv.gz").pixels.tolist() == expected
    write_maps(tmp_path / "other.npz", other[:3])
    with pytest.raises(InputError, match=r"other.npz: 3 probability maps .*`dvc repro predict@b`"):
        write_submission(blend, index, spec, Rule(0.5, 0.5, 0), tmp_path / "stale.csv.gz", workers=1)


def test_a_full_disk_names_the_submission_and_keeps_the_old_one(case, monkeypatch):
    tmp_path, _, index, spec = case

    class FullDisk(io.FileIO):
        def write(self, data):  # the header member is already on disk: the file is half-written
            if self.tell():
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return super().write(data)

    monkeypatch.setattr("segpipe.submission.submit.open", FullDisk, raising=False)  # the parent's writes only
    out = _old_submission(tmp_path)
    with pytest.raises(InputError, match=re.escape(str(out)) + r": no room to write it \(No space left on device"):
        write_submission(tmp_path / "test.npz", index, spec, Rule(0.5, 0.5, 0), out, workers=1)
    assert [p.name for p in out.parent.iterdir()] == ["submit.csv.gz"]
    assert out.read_bytes() == b"yesterday's submission"


@pytest.fixture
def many(tmp_path):
    """More test images than fit in one gzip member: 3 full members and a short one."""
    count = 3 * ROWS_PER_MEMBER + 5
    probs = np.random.default_rng(1).integers(0, 256, (count, 8, 8), dtype=np.uint8)
    write_maps(tmp_path / "test.npz", probs)
    index = pd.DataFrame({"id": [f"car{i:03d}" for i in range(count)], "height": 10 + np.arange(count) % 3,
                          "width": 12})
    pd.DataFrame({"img": index.id, "pixels": ""}).to_csv(tmp_path / "sample.csv", index=False)
    lines = [f"{image_id},{rle.encode(probability_to_mask(prob, h, 12, Rule(0.5, 0.5, 0)), order='F')}\n"
             for image_id, prob, h in zip(index.id, probs, index.height)]
    return tmp_path, index, SubmissionSpec("img", "pixels", "F", tmp_path / "sample.csv"), lines


def gzip_members(data: bytes) -> list[bytes]:
    """The decompressed text of each member of a gzip stream, in order."""
    members = []
    while data:
        member = zlib.decompressobj(wbits=31)  # 31: one gzip member, header and trailer checked
        members.append(member.decompress(data))
        assert member.eof, "truncated member"
        data = member.unused_data
    return members


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_the_bytes_do_not_depend_on_the_number_of_workers(many, workers):
    """Rows are chunked by count, not by worker; 1 against 1 is the same inputs run twice."""
    tmp_path, index, spec, _ = many
    write_submission(tmp_path / "test.npz", index, spec, Rule(0.5, 0.5, 0), tmp_path / "one.csv.gz", workers=1)
    write_submission(tmp_path / "test.npz", index, spec, Rule(0.5, 0.5, 0), tmp_path / "n.csv.gz", workers=workers)
    assert (tmp_path / "n.csv.gz").read_bytes() == (tmp_path / "one.csv.gz").read_bytes()


def test_the_file_is_a_header_member_then_one_member_per_chunk_of_rows(many):
    tmp_path, index, spec, lines = many
    out = tmp_path / "submit.csv.gz"
    write_submission(tmp_path / "test.npz", index, spec, Rule(0.5, 0.5, 0), out, workers=2)
    chunks = ["".join(lines[start:start + ROWS_PER_MEMBER]) for start in range(0, len(lines), ROWS_PER_MEMBER)]
    assert gzip_members(out.read_bytes()) == [text.encode() for text in ["img,pixels\n", *chunks]]
    assert out.read_bytes() == b"".join(gzip_member(text) for text in ["img,pixels\n", *chunks])


def test_gzip_pandas_and_zcat_read_every_member(many):
    tmp_path, index, spec, lines = many
    out = tmp_path / "submit.csv.gz"
    write_submission(tmp_path / "test.npz", index, spec, Rule(0.5, 0.5, 0), out, workers=2)
    with gzip.open(out, "rt", newline="") as handle:
        assert handle.readlines() == ["img,pixels\n", *lines]
    table = pd.read_csv(out, compression="gzip", dtype=str, keep_default_na=False)
    assert table.values.tolist() == [line.rstrip("\n").split(",") for line in lines]
    if shutil.which("zcat"):
        assert subprocess.run(["zcat", str(out)], capture_output=True, check=True).stdout.decode().splitlines(
            keepends=True) == ["img,pixels\n", *lines]


def test_submit_applies_the_rule_exactly_as_the_search_scores_it(competition, tmp_path):
    """Scoring a labelled holdout from the written submission gives the Dice the search computes."""
    held = hold_out_patients(competition, 0.5, seed=3)
    masks = [held.read_mask(path) for path in held.test["mask"]]
    rng = np.random.default_rng(1)
    probs = []
    for mask in masks:  # the truth, a little eroded at 0.5, plus specks that a component rule removes
        prob = (mask * 180 + rng.integers(0, 60, mask.shape) * (rng.random(mask.shape) < 0.02)).astype(np.uint8)
        probs.append(prob)
    write_maps(tmp_path / "test.npz", probs)
    index = pd.DataFrame({"id": held.test.id, "height": [m.shape[0] for m in masks],
                          "width": [m.shape[1] for m in masks]})
    rule = Rule(threshold=0.2, gate_threshold=0.6, gate_area=3, min_component=2)
    write_submission(tmp_path / "test.npz", index, held.submission, rule, tmp_path / "submit.csv.gz", workers=2)
    scored = score_holdout(tmp_path / "submit.csv.gz", held)
    searched = rule_counts(zip(probs, [m.astype(np.uint8) for m in masks]), rule).image_dice().mean()
    assert scored["dice"] == pytest.approx(searched) and scored["images"] == len(masks)
    plain = rule_counts(zip(probs, masks), Rule(threshold=0.2)).image_dice().mean()
    assert plain < searched  # the rule did something here


def test_maps_of_other_images_are_refused_by_id(case):
    """Maps stored with their ids are matched to the test index by id, not by position alone."""
    tmp_path, probs, index, spec = case
    write_maps(tmp_path / "test.npz", probs, ids=index.id.tolist())
    write_submission(tmp_path / "test.npz", index, spec, Rule(0.5, 0.5, 0), tmp_path / "ok.csv.gz", workers=1)
    write_maps(tmp_path / "test.npz", probs, ids=["7", "3", "1", "12", "5"])  # two swapped
    with pytest.raises(InputError, match=r"test.npz: map 2 is of image 1, but test image 2 .* is 12; it is stale"):
        write_submission(tmp_path / "test.npz", index, spec, Rule(0.5, 0.5, 0), tmp_path / "bad.csv.gz", workers=1)


def test_exclusive_classes_take_the_argmax_before_their_rules(tmp_path):
    """Two classes both above their low thresholds on the same pixels: the argmax gives each pixel one."""
    rng = np.random.default_rng(3)
    probs = rng.integers(40, 120, (4, 2, 16, 16), dtype=np.uint8)  # softmax-like: the classes sum under 255
    write_maps(tmp_path / "test.npz", [probs])  # one (B, C, H, W) batch: a (C, H, W) map per image
    index = pd.DataFrame({"id": ["a", "b", "c", "d"], "height": [16, 32, 16, 20], "width": [16, 32, 24, 20]})
    spec = SubmissionSpec("id", "rle", "F", None, class_column="class")
    rules = [Rule(0.1, 0.1, 0), Rule(0.1, 0.1, 0)]  # every pixel of every class passes on its own
    for exclusive in (False, True):
        blend = Blend({"m": tmp_path / "test.npz"}, {"m": 1}, Labels(("x", "y"), exclusive))
        out = tmp_path / f"{exclusive}.csv.gz"
        write_submission(blend, index, spec, rules, out, workers=1)
        table = rows(out)
        for i, (h, w) in enumerate(zip(index.height, index.width)):
            x, y = (rle.decode(table.rle[2 * i + k], (h, w), order="F") for k in (0, 1))
            assert (x & y).any() != exclusive  # sigmoid classes overlap; exclusive ones never do
            if exclusive and i == 0:  # at the maps' own size: each pixel to the class that beats the others
                won = argmax_first(probs[0]) > 0  # and the background (255 minus their sum)
                np.testing.assert_array_equal(x, won[0])
                np.testing.assert_array_equal(y, won[1])
