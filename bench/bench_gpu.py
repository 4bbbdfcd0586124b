"""On CUDA: time a resnet34 U-Net's training step and inference, the usual way against ours.

The usual way: fp32, NCHW, cudnn.benchmark off, float32 batches normalised on the host and
copied from pageable memory. Ours, as segpipe.training.epoch and segpipe.inference.maps run it: bf16
autocast (fp16 with a GradScaler where bf16 is missing), channels_last, cudnn.benchmark,
uint8 batches in pinned memory copied with non_blocking=True and normalised on the device
(`segpipe.network.inputs.to_model_input`). Training images/s (forward, loss, backward, AdamW step)
and inference images/s at 256x256 and 512x512, median of interleaved runs.
Target: ours faster than the usual way.

Then sliding windows at 1024x1024 (`segpipe.inference.windows.stitch`: a 3072x3072 image,
step 1/2, hflip TTA, the Gaussian blend and the uint8 map on the device) against the same
ensemble on exactly those windows with no stitching: the blending's own cost, as
bench_windows.py measures it on the CPU. Target: ours >= 0.9x the network alone.
Without CUDA it prints "no CUDA device: skipped". Run as `python bench/bench_gpu.py`.
"""
from __future__ import annotations

import numpy as np
import torch
from side_by_side import median_seconds, print_table

from segpipe.inference import windows
from segpipe.inference.ensemble import Ensemble
from segpipe.network.inputs import MEAN, STD, autocast, to_model_input
from segpipe.network.model import ModelSpec, WeightedLoss, build_model

CASES, STEPS, REPEATS = [(256, 32), (512, 8)], 20, 5  # (size, batch)
SPEC = ModelSpec("Unet", "resnet34", 5, (256, 128, 64, 32, 16), 3)
WINDOW, WINDOW_IMAGE, WINDOW_BATCH = (1024, 1024), (3072, 3072), 4


def runner(size: int, batch: int, ours: bool, training: bool, device: torch.device):
    """A callable that runs STEPS steps (training or inference) the usual way or ours."""
    model = build_model(SPEC).to(device)
    memory_format = torch.channels_last if ours else torch.contiguous_format
    model = model.to(memory_format=memory_format).train(training)
    criterion = WeightedLoss({"bce": 0.7, "dice": 0.3}).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    use_fp16 = ours and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=use_fp16)
    images = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8)
    target = (torch.rand(batch, 1, size, size) > 0.5).float().to(device)
    if ours:
        images = images.pin_memory()
    else:
        mean, std = (torch.as_tensor(v, dtype=torch.float32).view(1, 3, 1, 1) for v in (MEAN, STD))
        images = (images.permute(0, 3, 1, 2).float() - mean) / std

    def step() -> None:
        x = to_model_input(images, device, True) if ours else images.to(device)
        with autocast(device, ours):
            logits = model(x)
        if training:
            loss = criterion(logits.float(), target)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    def run() -> None:
        torch.backends.cudnn.benchmark = ours
        with torch.inference_mode(not training):
            for _ in range(STEPS):
                step()
        torch.cuda.synchronize(device)
    run()  # warm-up: cudnn autotuning, allocator
    return run


def sliding_windows(device: torch.device) -> tuple[str, float, float, float, str, bool]:
    """Windows/s of the network alone on the windows of step 1/2, and of `windows.stitch` over them."""
    torch.manual_seed(0)
    ensemble = Ensemble([build_model(SPEC)], device, in_channels=3)
    image = np.random.default_rng(0).integers(0, 256, (*WINDOW_IMAGE, 3), dtype=np.uint8)
    corners = [(y, x) for y in windows.window_starts(image.shape[0], WINDOW[0], 0.5)
               for x in windows.window_starts(image.shape[1], WINDOW[1], 0.5)]

    def network_only() -> None:
        for start in range(0, len(corners), WINDOW_BATCH):
            batch = np.stack([image[y:y + WINDOW[0], x:x + WINDOW[1]] for y, x in corners[start:start + WINDOW_BATCH]])
            ensemble(torch.from_numpy(batch))
        torch.cuda.synchronize(device)

    def ours() -> None:
        windows.stitch(ensemble, image, WINDOW, 0.5, WINDOW_BATCH, device)  # ends with the map on the host

    torch.backends.cudnn.benchmark = True
    network_only(), ours()  # warm-up
    seconds = median_seconds({"usual": network_only, "ours": ours}, REPEATS)
    usual, own = (len(corners) / seconds[way].wall for way in ("usual", "ours"))
    case = f"windows {WINDOW[0]}x{WINDOW[1]} over {WINDOW_IMAGE[0]}x{WINDOW_IMAGE[1]}, step 1/2, TTA"
    return case, usual, own, own / usual, ">= 0.9", own / usual >= 0.9


def main() -> None:
    if not torch.cuda.is_available():
        print("no CUDA device: skipped")
        return
    device = torch.device("cuda")
    rows = []
    for size, batch in CASES:
        for training in (True, False):
            seconds = median_seconds({way: runner(size, batch, way == "ours", training, device)
                                      for way in ("usual", "ours")}, REPEATS)
            usual, ours = (STEPS * batch / seconds[way].wall for way in ("usual", "ours"))
            case = f"{'train' if training else 'infer'} {size}x{size}, batch {batch}"
            rows.append((case, usual, ours, ours / usual, "> 1", ours > usual))
    rows.append(sliding_windows(device))
    print_table(f"GPU: Unet resnet34 on {torch.cuda.get_device_name(device)}, {STEPS} steps per run, "
                f"median of {REPEATS} interleaved runs", "images/s (usual = fp32, NCHW, host-normalised float "
                "batches; ours = bf16/fp16 autocast, channels_last, cudnn.benchmark, pinned uint8); windows/s "
                "for the windows row (usual = the ensemble alone on the same windows; ours = stitched)", rows)


if __name__ == "__main__":
    main()
