"""dvc.yaml spells out the paths that `segpipe.paths.artifacts` gives the stages reading them."""
from pathlib import Path

import yaml

from segpipe.paths import artifacts

ROOT = Path(__file__).resolve().parents[2]


def resolved(text: str, model: str, fold: int) -> str:
    return text.replace("${item.model}", model).replace("${item.fold}", str(fold)).replace("${key}", model)


def test_train_and_predict_outputs_are_where_the_readers_look():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in stages["train"]["outs"]]
    train = {resolved(out, "fpn", 3) for out in outs}
    assert str(artifacts.checkpoint(Path("models"), "fpn", 3)) in train
    assert str(artifacts.oof_dir(Path("oof"), "fpn", 3)) in train
    assert resolved(stages["train"]["cmd"], "fpn", 3).split("--model ")[1].split()[0] == "fpn"
    assert set(stages["train"]["matrix"]) == {"model", "fold"}  # stage names train@<model>-<fold>
    predict = stages["predict"]["do"]
    assert {resolved(out, "fpn", 0) for out in predict["outs"]} == {str(artifacts.test_probs(Path("preds"), "fpn"))}
    assert artifacts.train_stage("fpn", 3) == "train@fpn-3"
