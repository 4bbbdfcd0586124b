"""Which submissions `make submit` may upload, and how a multi-label file names its classes."""
import pytest

from segpipe.core.errors import InputError
from segpipe.datasets import SubmissionSpec
from segpipe.datasets.adapters import severstal, uwmgi
from segpipe.submission.validate import check_uploadable, row_labels

CARVANA = SubmissionSpec("img", "rle_mask", "C", None, competition="carvana-image-masking-challenge")


def test_a_competition_uploads_to_its_slug():
    assert check_uploadable("carvana", CARVANA) == "carvana-image-masking-challenge"


def test_a_local_holdout_is_not_uploaded():
    with pytest.raises(InputError, match="lgg is not a Kaggle competition"):
        check_uploadable("lgg", SubmissionSpec("id", "rle_mask", "F", None))


@pytest.mark.parametrize("name, spec", [("severstal", severstal.SUBMISSION), ("severstal", severstal.ORIGINAL_SUBMISSION),
                                        ("uwmgi", uwmgi.SUBMISSION)])
def test_code_competitions_refuse_a_csv_upload(name, spec):
    with pytest.raises(InputError, match=f"{spec.competition} is a code competition"):
        check_uploadable(name, spec)


def test_rows_name_classes_by_the_competitions_labels():
    assert row_labels(severstal.SUBMISSION, severstal.CLASSES) == ["1", "2", "3", "4"]
    assert row_labels(uwmgi.SUBMISSION, uwmgi.CLASSES) == ["large_bowel", "small_bowel", "stomach"]
    assert row_labels(SubmissionSpec("id", "rle_mask", "F", None), ("core", "spot")) == ["core", "spot"]
    assert row_labels(CARVANA, ()) == []
