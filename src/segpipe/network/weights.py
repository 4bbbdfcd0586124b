"""Weights checked before a network predicts with them.

A NaN or an infinity in a state dict (a run that diverged, bytes damaged on disk or in an
upload) loads without complaint; every probability it reaches is then NaN, which a uint8
map stores as 0, so the run writes an empty mask everywhere as if it had predicted one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from segpipe.core.errors import InputError

SHOWN = 3  # tensors named in the message


def check_finite(state: Mapping[str, torch.Tensor], where: Path | str, remedy: str) -> None:
    """InputError naming `where`, the count and the first tensors, if any floating-point weight of `state` is
    NaN or infinite; `remedy` says what to do."""
    floats = {name: tensor for name, tensor in state.items() if tensor.is_floating_point()}
    bad = {name: int((~torch.isfinite(tensor)).sum()) for name, tensor in floats.items()}
    bad = {name: count for name, count in bad.items() if count}
    if not bad:
        return
    names = ", ".join(list(bad)[:SHOWN]) + (f" and {len(bad) - SHOWN} more tensors" if len(bad) > SHOWN else "")
    total = sum(tensor.numel() for tensor in floats.values())
    raise InputError(f"{where}: {sum(bad.values())} of {total} weights are not finite (NaN or infinite), in {names}; "
                     f"{remedy}")
