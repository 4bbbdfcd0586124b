"""DVC stage `bundle`: the offline inference bundle for a Kaggle code competition (bundle/, but its wheels).

The blend's models (their fold weights as safetensors, spec and inference contract), the
blend and the post-processing rules, the cache layout, the measured inference speed on this
machine, and the Kaggle dataset and kernel metadata. `make bundle` adds the wheels
(`stages/bundle_wheels.py`), which need the package index.
"""
import dataclasses
import shutil
import time

import numpy as np

from segpipe.bundle import export
from segpipe.bundle.manifest import DatasetEntry, Manifest, Speed
from segpipe.bundle.run import predict
from segpipe.cache.prepare import test_index
from segpipe.config.bundle import load_bundle_params
from segpipe.core.cli import parse_paths, run_stage
from segpipe.core.runtime import pick_device, scratch_folder
from segpipe.datasets import load_chosen, section_of
from segpipe.paths import artifacts
from segpipe.paths.cache_files import TRAIN_IMAGES

PARTS = ("bundle.json", "blend.json", "postprocess.json", "layout.json", "models", "kernel", "dataset-metadata.json",
         "README.md")  # the stage's outs; wheels/ is make bundle's


def main() -> None:
    args = parse_paths(__doc__, "raw", "sources", "prepared", "models", "blend", "rule", "out")
    params = load_bundle_params()
    pick_device()  # before any tensor work: the CPU's flush-to-zero reaches every thread
    competition = load_chosen(params, args.raw, args.sources)
    section = section_of(params)
    dataset = DatasetEntry(params.base.dataset, {k: v for k, v in section.adapter_options().items() if k != "source"},
                           section.holdout_patients, params.base.seed)
    checkpoints = {name: {k: artifacts.checkpoint(args.models, name, k) for k in params.folds.train}
                   for name in params.models}
    channels = int(np.load(args.prepared / TRAIN_IMAGES, mmap_mode="r").shape[-1])
    bundle = params.bundle
    args.out.mkdir(exist_ok=True)
    with scratch_folder(args.out / "building") as building:  # a failure leaves the old outs
        tmp = building / "bundle"
        record = export.write_bundle(tmp, checkpoints=checkpoints, blend_json=args.blend, rules_json=args.rule,
                                       prepared=args.prepared, channels=channels, dataset=dataset,
                                       competition=competition.submission.competition, owner=bundle.owner,
                                       slug=bundle.dataset, kernel_slug=bundle.kernel, limit=bundle.limit,
                                       preinstalled=bundle.preinstalled)
        record = dataclasses.replace(record, batch_size=params.predict.batch_size)  # tile mode: windows a batch
        record = dataclasses.replace(record, speed=speed(Manifest(tmp, record), competition, bundle.speed_images,
                                                         params.predict, building))
        record.write(tmp)
        (tmp / export.README).write_text(export.readme(record))
        for part in PARTS:  # replace the outs, leaving wheels/ (make bundle's) where it is
            target = args.out / part
            if target.is_dir():
                shutil.rmtree(target)
            (tmp / part).replace(target)
    print(f"wrote {args.out}: models {list(record.models)}" + (f" (left out at weight 0: {record.left_out})"
                                                 if record.left_out else "")
          + f", {sum(export.folder_mb(args.out / part) for part in PARTS):.1f} MB without wheels; "
          f"{record.speed.images_per_second:.3g} test images/s on {record.speed.device}")


def speed(manifest: Manifest, competition, images: int, predict_params, work) -> Speed:
    """Inference images/s of the whole bundle (every model, every fold, the TTA views), as segpipe.infer
    runs it, on this machine: what the kernel's time projection starts from.

    Timed on the first `images` test images and on half as many, after an untimed warm-up run:
    the difference is the cost of the images alone, and what is left of the shorter run is the
    fixed cost (loading the networks, starting the decoding workers), `overhead_seconds`.
    """
    import torch

    sizes = test_index(competition.test.head(images).reset_index(drop=True), max(1, predict_params.workers))

    def timed(count: int) -> tuple[int, float]:
        sample = dataclasses.replace(competition, test=competition.test.head(count).reset_index(drop=True))
        index = sizes.head(count)
        start = time.perf_counter()
        for path in predict(manifest, sample, index, work, predict_params.batch_size, predict_params.workers,
                            report=lambda _line: None).values():
            path.unlink()
        return len(index), time.perf_counter() - start

    timed(max(1, images // 2))  # a first run pays for the process's first forward passes: not timed
    few, few_seconds = timed(max(1, images // 2))
    many, many_seconds = timed(images)
    per_image = (many_seconds - few_seconds) / (many - few) if many > few else many_seconds / many
    per_image = max(per_image, many_seconds / many / 10)  # timing noise: never more than 10x the plain mean
    device = pick_device()  # set up at the stage's start
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    return Speed(images=many, seconds=round(many_seconds, 3), images_per_second=1 / per_image,
                 overhead_seconds=round(max(0.0, few_seconds - few * per_image), 3), device=name,
                 device_type=device.type)


if __name__ == "__main__":
    run_stage(main)
