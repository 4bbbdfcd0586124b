"""The post-processing rule: from a probability map to a mask, one way everywhere.

The threshold stage chooses a `Rule` on the out-of-fold predictions and writes it to a small
json (as nnU-Net stores its post-processing choice); the report draws with it and submit
applies it to the test maps, read back from that file. The steps, in order:

1. **empty-image gate** (SIIM-ACR pneumothorax, 1st place): the image keeps a mask only if
   at least `gate_area` pixels reach `gate_threshold`; a high gate threshold with a lower
   pixel threshold keeps faint masks on images the model is sure about;
2. **pixel threshold** `threshold`;
3. **small components**: connected components (8-connected) smaller than `min_component`
   pixels are removed;
4. **largest components**: only the `keep_largest` largest are kept (0 = all).

Areas are in training-size pixels, where the rule was tuned; `area_scale` (the pixel-count
ratio) carries them to another resolution. Probabilities are uint8 (0-255) maps.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from segpipe.core.errors import InputError
from segpipe.core.labels import Labels
from segpipe.evaluation.metrics import threshold_to_uint8 as cut


@dataclass(frozen=True)
class Rule:
    threshold: float = 0.5
    gate_threshold: float = 0.5
    gate_area: int = 0  # 0: no gate
    min_component: int = 0  # 0: keep every component
    keep_largest: int = 0  # 0: keep every component

    def describe(self) -> str:
        """One line for logs and submission messages."""
        parts = [f"threshold {self.threshold}"]
        if self.gate_area:
            parts.append(f"gate {self.gate_area} px >= {self.gate_threshold}")
        if self.min_component:
            parts.append(f"components >= {self.min_component} px")
        if self.keep_largest:
            parts.append(f"largest {self.keep_largest}")
        return ", ".join(parts)

    def write(self, path: Path) -> None:
        from segpipe.core.runtime import write_json

        write_json(path, dataclasses.asdict(self))

    @classmethod
    def read(cls, path: Path) -> Rule:
        try:
            return cls(**json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise InputError(f"{path}: no post-processing rule; run `dvc repro threshold`") from None
        except (ValueError, TypeError) as err:
            raise InputError(f"{path}: not a post-processing rule ({err}); rerun `dvc repro threshold`") from None


def write_rules(path: Path, rules: Sequence[Rule], labels: Labels, force_top: bool | None = None) -> None:
    """The rule file: {"classes": {name: rule}} with classes, the one rule's fields without.

    `force_top` (`segpipe.evaluation.force_top`) is written beside the classes' rules when it
    was searched (every image labelled), left out when not.
    """
    if not labels.several:
        rules[0].write(path)
        return
    from segpipe.core.runtime import write_json

    rule_file = {"classes": {name: vars(rule) for name, rule in zip(labels.classes, rules)}}
    write_json(path, rule_file if force_top is None else {**rule_file, "force_top": force_top})


def read_force_top(path: Path) -> bool:
    """Whether the rule file of `write_rules` forces the top class on (False when it does not say)."""
    stored = json.loads(Path(path).read_text())
    return bool(stored.get("force_top", False)) if "classes" in stored else False


def read_rules(path: Path, labels: Labels) -> list[Rule]:
    """The rules of `write_rules`, one per class in class order (one rule without classes)."""
    if not labels.several:
        return [Rule.read(path)]
    classes = labels.classes
    try:
        stored = json.loads(Path(path).read_text())["classes"]
        return [Rule(**stored[name]) for name in classes]
    except FileNotFoundError:
        raise InputError(f"{path}: no post-processing rules; run `dvc repro threshold`") from None
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{path}: not a rule for each of the classes {list(classes)} ({type(err).__name__}: {err}); "
                         "rerun `dvc repro threshold`") from None


def describe_rules(rules: Sequence[Rule], labels: Labels) -> str:
    """One line naming each class's rule."""
    if not labels.several:
        return rules[0].describe()
    return "; ".join(f"{name}: {rule.describe()}" for name, rule in zip(labels.classes, rules))


def apply(prob: np.ndarray, rule: Rule, area_scale: float = 1.0) -> np.ndarray:
    """The (H, W) bool mask of the uint8 map `prob` under `rule`."""
    if rule.gate_area and np.count_nonzero(prob >= cut(rule.gate_threshold)) < rule.gate_area * area_scale:
        return np.zeros(prob.shape, bool)
    mask = prob >= cut(rule.threshold)
    if rule.min_component or rule.keep_largest:
        mask = keep_components(mask, rule.min_component * area_scale, rule.keep_largest)
    return mask


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected components of a bool mask: the (H, W) int32 labels (0 = background) and the
    area of each component 1..n, in label order."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    return labels, stats[1:count, cv2.CC_STAT_AREA]


def kept_components(areas: np.ndarray, min_component: float, keep_largest: int,
                    images: np.ndarray | None = None) -> np.ndarray:
    """Which components (by their areas) a rule keeps, as a bool array.

    With `images` (the image of each component), the largest are counted per image. Ties in
    area keep the lower label (the one met first in row-major order), so the choice is the
    same everywhere.
    """
    keep = areas >= min_component
    if keep_largest:
        images = np.zeros(len(areas), np.int64) if images is None else np.asarray(images)
        order = np.lexsort((np.arange(len(areas)), -areas, images))  # per image: largest first, then label order
        first = np.searchsorted(images[order], images[order])  # where each image's run starts
        rank = np.empty(len(areas), np.int64)
        rank[order] = np.arange(len(areas)) - first
        keep &= rank < keep_largest
    return keep


def keep_components(mask: np.ndarray, min_component: float, keep_largest: int) -> np.ndarray:
    labels, areas = components(mask)
    keep = kept_components(areas, min_component, keep_largest)
    if keep.all():
        return mask
    return np.concatenate([[False], keep])[labels]
