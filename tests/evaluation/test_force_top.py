"""The top class forced on (every image labelled): the rule, its out-of-fold search, its rule file, submit."""
import json

import cv2
import numpy as np
import pandas as pd
import pytest

from segpipe import rle
from segpipe.core.labels import Labels
from segpipe.datasets import SubmissionSpec
from segpipe.evaluation.force_top import apply_classes, search_force_top, top_class
from segpipe.evaluation.postprocess import Rule, read_force_top, read_rules, write_rules
from segpipe.inference.probmaps import write_maps
from segpipe.submission.submit import Blend, write_submission

GATED = Rule(0.5, 0.5, gate_area=30)  # an image needs 30 sure pixels to keep the class


def maps(*peaks: tuple[int, int]) -> np.ndarray:
    """(C, 16, 16) uint8 maps: class k a square of `side` pixels at probability `value`, 0 elsewhere."""
    out = np.zeros((len(peaks), 16, 16), np.uint8)
    for k, (value, side) in enumerate(peaks):
        out[k, :side, :side] = value
    return out


def test_an_image_left_with_no_class_gets_its_surest_class_under_its_rule_without_the_gate():
    probs = maps((200, 4), (230, 3))  # both under the gate; class 1 is the surer
    plain = apply_classes(probs, [GATED, GATED])
    assert not any(m.any() for m in plain)
    forced = apply_classes(probs, [GATED, GATED], force_top=True)
    assert not forced[0].any() and forced[1].sum() == 9 and top_class(probs) == 1
    kept = maps((200, 8), (230, 3))  # class 0 passes its gate: nothing is forced
    assert [m.sum() for m in apply_classes(kept, [GATED, GATED], force_top=True)] == [64, 0]
    faint = maps((100, 4), (90, 4))  # the top class has nothing over its threshold: it stays empty
    assert not any(m.any() for m in apply_classes(faint, [GATED, GATED], force_top=True))
    assert top_class(maps((200, 2), (200, 5))) == 0  # a tie goes to the lower class


def labelled(probs, truth_bits):
    return [(p, t) for p, t in zip(probs, truth_bits)]


def test_the_search_keeps_it_only_where_it_raises_the_mean_dice_and_only_if_every_image_is_labelled():
    truth = np.zeros((16, 16), np.uint8)
    truth[:3, :3] = 2  # class 1 on the 3 x 3 square
    good = search_force_top(labelled([maps((200, 4), (230, 3))], [truth]), [GATED, GATED], Labels(("a", "b")))
    assert good["kept"] and good["images_changed"] == 1
    assert (good["dice_without"], good["dice"]) == (pytest.approx(0.5), pytest.approx(1.0))  # class a empty-empty
    wrong = np.zeros((16, 16), np.uint8)
    wrong[8:, 8:] = 2  # the truth is elsewhere: forcing adds a false class-1 mask, and b scores 0 either way
    bad = search_force_top(labelled([maps((200, 4), (230, 3))], [wrong]), [GATED, GATED], Labels(("a", "b")))
    assert not bad["kept"] and bad["dice"] == bad["dice_without"] == pytest.approx(0.5)
    empty = np.zeros((16, 16), np.uint8)
    assert search_force_top(labelled([maps((200, 4), (230, 3))] * 2, [truth, empty]), [GATED, GATED],
                            Labels(("a", "b"))) is None  # an unlabelled image: the rule does not apply


def test_the_rule_file_says_it_only_when_it_was_searched(tmp_path):
    rules = [Rule(0.4), Rule(0.6)]
    write_rules(tmp_path / "searched.json", rules, Labels(("a", "b")), force_top=True)
    write_rules(tmp_path / "not.json", rules, Labels(("a", "b")))
    assert json.loads((tmp_path / "searched.json").read_text())["force_top"] is True
    assert "force_top" not in json.loads((tmp_path / "not.json").read_text())
    assert read_force_top(tmp_path / "searched.json") and not read_force_top(tmp_path / "not.json")
    assert read_rules(tmp_path / "searched.json", Labels(("a", "b"))) == rules
    write_rules(tmp_path / "binary.json", [Rule(0.5)], Labels())
    assert not read_force_top(tmp_path / "binary.json")


def test_submit_forces_the_top_class_on_and_writes_masks_at_the_specs_size(tmp_path):
    write_maps(tmp_path / "test.npz", [np.stack([maps((200, 4), (230, 3)), maps((200, 8), (10, 2))])])
    index = pd.DataFrame({"id": ["p", "q"], "height": [64, 64], "width": [64, 64]})
    spec = SubmissionSpec("Image_Label", "EncodedPixels", "F", None, id_format="{id}_{label}", mask_size=(32, 32))
    for force_top in (False, True):
        out = tmp_path / f"{force_top}.csv.gz"
        write_submission(Blend({"m": tmp_path / "test.npz"}, {"m": 1}, Labels(("a", "b"))), index, spec, [GATED, GATED], out,
                         workers=1, force_top=force_top)
        table = pd.read_csv(out, dtype=str, keep_default_na=False)
        assert table.Image_Label.tolist() == ["p_a", "p_b", "q_a", "q_b"]
        masks = [rle.decode(code, (32, 32), "F") for code in table.EncodedPixels]  # at 32 x 32, not the 64 x 64
        forced = cv2.resize(maps((200, 4), (230, 3))[1], (32, 32), interpolation=cv2.INTER_LINEAR) >= 128
        big = cv2.resize(maps((200, 8), (10, 2))[0], (32, 32), interpolation=cv2.INTER_LINEAR) >= 128
        # p: nothing passes the gates, so only the forced class b shows; q keeps its class a: nothing forced
        np.testing.assert_array_equal(masks[1], forced if force_top else np.zeros((32, 32), bool))
        np.testing.assert_array_equal(masks[2], big)
        assert forced.sum() > 30 and not masks[0].any() and not masks[3].any()
