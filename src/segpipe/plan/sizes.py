"""The training sizes the plan chooses from: sides that are multiples of 32, the images' aspect kept."""
from __future__ import annotations

# candidate training sizes, by their short side (those under the images' short side, and the native size)
SIDES = (32, 64, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024)


def scaled_sides(height: int, width: int, short: int) -> tuple[int, int]:
    """(H, W) scaled so that the short side is `short`, each side rounded to a multiple of 32 (at least 32)."""
    scale = short / min(height, width)
    return tuple(max(32, int(round(side * scale / 32)) * 32) for side in (height, width))


def candidate_sides(height: int, width: int) -> list[int]:
    """The short sides tried: every one of SIDES below the native short side, then the native size itself."""
    short = min(height, width)
    return [side for side in SIDES if side < short] + [short]
