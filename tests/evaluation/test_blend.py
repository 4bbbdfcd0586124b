"""Blend weights by greedy forward selection: known weights found, never below the best model."""
import numpy as np
import pandas as pd
import pytest

from segpipe.core.labels import Labels, argmax_first
from segpipe.evaluation import oof_files
from segpipe.evaluation.blend import (OofSet, Score, blend_maps, blend_models, model_oof, read_counts, select,
                                     select_per_class, write_blend)


def test_maps_blend_in_integers_with_rounding():
    a, b = np.array([[0, 255, 100]], np.uint8), np.array([[1, 254, 101]], np.uint8)
    np.testing.assert_array_equal(blend_maps([a, b], [1, 1]), [[1, 255, 101]])  # halves round up
    np.testing.assert_array_equal(blend_maps([a, b], [3, 1]), [[0, 255, 100]])  # (3a + b + 2) // 4
    np.testing.assert_array_equal(blend_maps([a, b], [0, 2]), b)


def halves(n=40, size=16, seed=0):
    """Truth masks, and models a and b each perfect on one half of the images, noise on the other.

    Only the 1:1 blend is perfect: there a pixel's mean is >= 127.5 exactly on the truth, while any
    other ratio lets the noisy model's pixels cross the cut. c is noise everywhere.
    """
    rng = np.random.default_rng(seed)
    truth = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        y, x = rng.integers(0, size - 6, 2)
        truth[i, y:y + 6, x:x + 6] = 1
    noise = lambda: rng.integers(0, 255, truth.shape).astype(np.uint8)  # noqa: E731 (0-254: no tie at the cut)
    perfect = truth * 255
    first = np.arange(n)[:, None, None] < n // 2
    a = np.where(first, perfect, noise()).astype(np.uint8)
    b = np.where(first, noise(), perfect).astype(np.uint8)
    groups = np.array([f"p{i // 4}" for i in range(n)])
    return OofSet({"a": [a], "b": [b], "c": [noise()]}, [truth], groups)


def test_the_search_finds_the_one_perfect_blend_and_leaves_noise_out():
    oof = halves()
    chosen = select(oof.names, oof.score, iterations=6)
    assert chosen.weights == {"a": 0.5, "b": 0.5, "c": 0.0}
    assert chosen.score.dice == 1.0 and chosen.score.patient_dice == 1.0
    assert max(score.dice for score in chosen.singles.values()) < 0.9
    assert [step["added"] for step in chosen.steps][:2] == ["a", "b"]  # a and b tie alone: a first, by name


@pytest.mark.parametrize("seed", range(4))
def test_the_blend_never_scores_below_the_best_single_model(seed):
    rng = np.random.default_rng(seed)
    truth = (rng.random((30, 12, 12)) < 0.3).astype(np.uint8)
    models = {name: [np.clip(truth * rng.uniform(80, 200) + rng.normal(60, rng.uniform(20, 90), truth.shape),
                             0, 255).astype(np.uint8)] for name in "pqrs"}
    oof = OofSet(models, [truth], np.array([f"g{i % 5}" for i in range(30)]))
    chosen = select(oof.names, oof.score, iterations=8)
    assert chosen.score.dice >= max(score.dice for score in chosen.singles.values())
    assert sum(chosen.weights.values()) == pytest.approx(1) and min(chosen.weights.values()) >= 0
    assert select(oof.names, oof.score, iterations=8).counts == chosen.counts  # deterministic


def test_one_model_gets_weight_one_and_its_own_score():
    oof = halves()
    only = OofSet({"a": oof.probs["a"]}, oof.masks, oof.groups)
    chosen = select(only.names, only.score, iterations=20)
    assert chosen.weights == {"a": 1.0} and chosen.score == chosen.singles["a"]


def test_the_blended_oof_is_written_per_fold_with_its_ids(tmp_path):
    folds = pd.DataFrame({"id": [f"i{n}" for n in range(6)], "group": list("aabbcc"), "fold": [0, 1, 0, 1, 0, 1]})
    masks = np.zeros((6, 4, 4), np.uint8)
    np.save(tmp_path / "masks.npy", masks)
    dirs = {}
    for name, value in (("x", 100), ("y", 201)):
        dirs[name] = {k: tmp_path / "oof" / name / f"fold{k}" for k in (0, 1)}
        for k in (0, 1):
            with oof_files.writing(dirs[name][k], folds.id[folds.fold == k], (4, 4)) as out:
                out[:] = value + k
    oof = model_oof(folds, dirs, tmp_path / "masks.npy")
    write_blend(folds, oof, {"x": 1, "y": 1}, {k: tmp_path / "blend" / f"fold{k}" for k in (0, 1)})
    for k in (0, 1):
        blended = oof_files.read(tmp_path / "blend" / f"fold{k}", folds.id[folds.fold == k])
        assert (np.asarray(blended) == (100 + 201 + 2 * k + 1) // 2).all()


def two_classes(n=40, size=16, seed=1):
    """Bit masks of two classes; model a is perfect on class 0 and inverted on class 1, model b the reverse:
    no one bag draws both classes (1:1 is flat), a bag per class draws each perfectly."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        for k in (0, 1):
            y, x = rng.integers(0, size - 5, 2)
            truth[i, y:y + 5, x:x + 5] |= 1 << k
    perfect = np.stack([(truth >> k & 1) * 255 for k in (0, 1)], axis=1).astype(np.uint8)
    a, b = perfect.copy(), perfect.copy()
    a[:, 1], b[:, 0] = 255 - perfect[:, 1], 255 - perfect[:, 0]
    return OofSet({"a": [a], "b": [b]}, [truth], np.array([f"p{i // 4}" for i in range(n)]), Labels(("x", "y")))


def test_a_bag_per_class_takes_each_class_from_the_model_that_draws_it():
    oof = two_classes()
    shared = select(oof.names, oof.score, iterations=6)
    per_class = select_per_class(oof, iterations=6)
    assert [s.weights for s in per_class] == [{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}]
    assert Score.mean_of([s.score for s in per_class]).dice == 1.0 > shared.score.dice
    assert per_class[0].singles == shared.singles  # each model's own score, over both classes
    maps = blend_models(lambda name: oof.probs[name][0], [s.counts for s in per_class])
    np.testing.assert_array_equal(maps[:, 0], oof.probs["a"][0][:, 0])
    np.testing.assert_array_equal(maps[:, 1], oof.probs["b"][0][:, 1])


def test_the_same_bag_for_every_class_blends_as_one_bag():
    oof = two_classes()
    bag = {"a": 3, "b": 1}
    read = lambda name: oof.probs[name][0]  # noqa: E731
    np.testing.assert_array_equal(blend_models(read, [bag, bag]), blend_models(read, bag))
    assert read_counts({"counts": bag}, Labels(("x", "y"))) == bag
    assert read_counts({"counts": bag, "class_counts": {"y": {"b": 1}, "x": {"a": 2}}}, Labels(("x", "y"))) == [
        {"a": 2}, {"b": 1}]


def test_exclusive_classes_are_blended_then_take_the_argmax_once():
    """The blend of exclusive-class maps goes through the argmax after blending, as scored and as written."""
    rng = np.random.default_rng(4)
    a, b = (rng.integers(0, 120, (7, 3, 4, 5), dtype=np.uint8) for _ in range(2))
    truth = np.zeros((7, 4, 5), np.uint8)
    oof = OofSet({"a": [a], "b": [b]}, [truth], np.array(list("ppqqrrs")), Labels(("x", "y", "z"), exclusive=True))
    [(part, maps)] = list(oof.blended({"a": 1, "b": 1}))
    np.testing.assert_array_equal(maps, argmax_first(blend_maps([a, b], [1, 1])))
    shared = OofSet(oof.probs, oof.masks, oof.groups, Labels(("x", "y", "z")))
    assert not np.array_equal(maps, next(iter(shared.blended({"a": 1, "b": 1})))[1])  # the argmax changed them
