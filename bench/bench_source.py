"""Time reading a source's zip members in place against reading the same files extracted.

A Kaggle Notebook mounts Carvana as per-file zips (train.zip of JPEGs, stored: zipping JPEGs
gains nothing) and a hand download of LGG is one deflated zip of TIFFs. The usual way is to
extract them first (~17 GB for Carvana, which a notebook's 20 GB disk cannot spare) and
read the files; ours reads each member in place (`segpipe.datasets.tree`). Each case
decodes every image the way prepare does (`readers.read_rgb`, JPEGs at a reduced scale
that still covers 320x480), so the ratio is what a prepare run would see. The extraction
itself is timed once: prepare reads each image once per run, so a first run pays it.
Target: a first prepare run in place >= 0.9x extracting then reading (reading in place must
not make prepare slower); the "every pass" row says what a rerun of prepare (a new
`prepare.size`) would gain from files extracted earlier, at the cost of their disk.
Run as `python bench/bench_source.py`.
"""
from __future__ import annotations

import tempfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
from side_by_side import median_seconds, paired_speedup, print_table, write_car_jpegs

from segpipe.datasets import readers
from segpipe.datasets.tree import Tree

COUNT, REPEATS = 60, 5


def lgg_tiffs(folder: Path, count: int) -> list[Path]:
    """`count` 256x256 3-channel TIFFs of smooth anatomy-like texture (LZW-free, as in the dataset)."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        base = cv2.resize(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), (256, 256), interpolation=cv2.INTER_CUBIC)
        path = folder / f"TCGA_CS_4941_19960909_{i + 1}.tif"
        cv2.imwrite(str(path), cv2.add(base, rng.integers(0, 6, base.shape, dtype=np.uint8)))
        paths.append(path)
    return paths


def zip_of(paths: list[Path], out: Path, compression: int) -> Path:
    with zipfile.ZipFile(out, "w", compression) as archive:
        for path in paths:
            archive.write(path, f"train/{path.name}")
    return out


def decode_all(locators: list, at_least: tuple[int, int] | None) -> None:
    for locator in locators:
        readers.read_rgb(locator, at_least=at_least)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for case, make, compression, at_least in (
                ("Carvana (stored zip)", write_car_jpegs, zipfile.ZIP_STORED, (320, 480)),
                ("LGG (deflated zip)", lgg_tiffs, zipfile.ZIP_DEFLATED, None)):
            files = tmp / case.split()[0] / "files"
            files.mkdir(parents=True)
            paths = make(files, COUNT)
            archive = zip_of(paths, tmp / case.split()[0] / "train.zip", compression)
            start = time.perf_counter()
            with zipfile.ZipFile(archive) as opened:
                opened.extractall(tmp / case.split()[0] / "extracted")
            extract = time.perf_counter() - start
            tree = Tree.scan(archive)
            members = [tree.locate(f"train/{p.name}") for p in paths]
            seconds = median_seconds({"files": lambda: decode_all(paths, at_least),
                                      "zip": lambda: decode_all(members, at_least)}, REPEATS)
            per_pass = paired_speedup(seconds, "files", "zip")  # files' time / in place's = in place's speed / files'
            files_rate, zip_rate = COUNT / seconds["files"].wall, COUNT / seconds["zip"].wall
            rows.append((f"{case}: every pass", files_rate, zip_rate, per_pass, "(info)", True))
            first = COUNT / (seconds["files"].wall + extract)  # prepare reads each image once per run
            rows.append((f"{case}: extract+1", first, zip_rate, zip_rate / first, ">= 0.9", zip_rate / first >= 0.9))
    print_table(f"sources: decode {COUNT} images from extracted files (usual) or from the zip in place (ours), "
                f"{REPEATS} interleaved rounds", "images/s, median over rounds; ratio = ours / usual (every pass: "
                "median of the rounds' ratios)", rows,
                columns=("extracted", "in place"))


if __name__ == "__main__":
    main()
