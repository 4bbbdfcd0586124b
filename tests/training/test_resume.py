import pandas as pd
import torch

from segpipe.config.train import Train
from segpipe.training.resume import TrainingState, mark_finished, resume, run_fingerprint, trim_live_history

FOLDS = pd.DataFrame({"id": ["a_1", "a_2", "b_1"], "group": ["a", "a", "b"], "fold": [0, 0, 1]})
SHAPES = [(3, 32, 32, 3), (3, 32, 32)]


def test_fingerprint_changes_with_what_changes_results():
    base = run_fingerprint(Train(), 0, 42, FOLDS, SHAPES)
    assert base == run_fingerprint(Train(num_workers=4), 0, 42, FOLDS, SHAPES)  # workers don't change results
    others = [run_fingerprint(Train(lr=0.1), 0, 42, FOLDS, SHAPES), run_fingerprint(Train(), 1, 42, FOLDS, SHAPES),
              run_fingerprint(Train(), 0, 7, FOLDS, SHAPES),
              run_fingerprint(Train(), 0, 42, FOLDS.assign(fold=[0, 1, 1]), SHAPES),
              run_fingerprint(Train(), 0, 42, FOLDS, [(3, 64, 64, 3), (3, 64, 64)])]
    assert base not in others and len(set(others)) == len(others)


def test_an_unreadable_checkpoint_starts_fresh(tmp_path, capsys):
    path = tmp_path / "last.pt"
    path.write_bytes(b"not a checkpoint")
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    state = TrainingState(model, optimizer, torch.optim.lr_scheduler.StepLR(optimizer, 1),
                          torch.amp.GradScaler("cuda", enabled=False), torch.Generator())
    assert resume(path, "abc", state) is None and resume(tmp_path / "none.pt", "abc", state) is None
    assert "unreadable" in capsys.readouterr().out


def test_a_finished_run_starts_fresh_and_says_how_dvc_commit_would_have_kept_it(tmp_path, capsys):
    """DVC reruns a finished fold whose outputs it could not save (its cache disk full): `dvc commit` saves them."""
    path = tmp_path / "last.pt"
    mark_finished(path, "abc", 3)
    assert resume(path, "abc", None) is None  # the state is not touched
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: from a finished run, starting fresh") and "`dvc commit -f train@" in out


def test_trim_live_history_drops_rows_of_unfinished_epochs(tmp_path):
    tsv = tmp_path / "plots" / "metrics" / "val" / "dice.tsv"
    tsv.parent.mkdir(parents=True)
    tsv.write_text("step\tdice\n0\t0.1\n1\t0.2\n2\t0.3\n")
    trim_live_history(tmp_path, 2)
    assert tsv.read_text() == "step\tdice\n0\t0.1\n1\t0.2\n"
