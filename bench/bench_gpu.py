"""On CUDA: time a resnet34 U-Net's training step and inference, the usual way against ours.

The usual way: fp32, NCHW, cudnn.benchmark off, float32 batches normalised on the host and
copied from pageable memory. Ours, as segpipe.training.loop and segpipe.inference.maps run it: bf16
autocast (fp16 with a GradScaler where bf16 is missing), channels_last, cudnn.benchmark,
uint8 batches in pinned memory copied with non_blocking=True and normalised on the device
(`segpipe.network.inputs.to_model_input`). Training images/s (forward, loss, backward, AdamW step)
and inference images/s at 256x256 and 512x512, median of interleaved runs.
Target: ours faster than the usual way. Without CUDA it prints "no CUDA device: skipped".
Run as `python bench/bench_gpu.py`.
"""
from __future__ import annotations

import torch
from side_by_side import median_seconds, print_table

from segpipe.network.inputs import MEAN, STD, autocast, to_model_input
from segpipe.network.model import ModelSpec, WeightedLoss, build_model

CASES, STEPS, REPEATS = [(256, 32), (512, 8)], 20, 5  # (size, batch)


def runner(size: int, batch: int, ours: bool, training: bool, device: torch.device):
    """A callable that runs STEPS steps (training or inference) the usual way or ours."""
    model = build_model(ModelSpec("Unet", "resnet34", 5, (256, 128, 64, 32, 16), 3)).to(device)
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
    print_table(f"GPU: Unet resnet34 on {torch.cuda.get_device_name(device)}, {STEPS} steps per run, "
                f"median of {REPEATS} interleaved runs", "images/s (usual = fp32, NCHW, host-normalised float "
                "batches; ours = bf16/fp16 autocast, channels_last, cudnn.benchmark, pinned uint8)", rows)


if __name__ == "__main__":
    main()
