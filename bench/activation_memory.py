"""Bytes a U-Net's training saves per input pixel: the figure the GPU plan sizes its batch by.

The tensors autograd saves in the forward pass for the backward pass are what grows with the
batch and the input size; the plan's TRAIN_BYTES_PER_PIXEL (`segpipe.plan.device_rules`) is
this count with room for the backward pass and the allocator. Counted on the CPU, without a GPU:
a training-mode forward of the planned GPU network (resnet34, smp's decoder widths) at two
sizes, under bf16 autocast and in fp32, every saved tensor's storage counted once. The
difference between the sizes over the difference in pixels leaves out what does not grow with
them (the weights, cast once a step).

    python bench/activation_memory.py
"""
from __future__ import annotations

import torch

from segpipe.network.model import ModelSpec, build_model
from segpipe.plan.device_rules import CPU_DECODER, CPU_ENCODER, GPU_DECODER, GPU_ENCODER

SIDES = (256, 512)
BATCH = 2


def saved_bytes(model: torch.nn.Module, x: torch.Tensor, autocast: bool) -> int:
    """Bytes of the distinct storages autograd saves for backward in one forward pass."""
    storages = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            model(x)
    return sum(storages.values())


def per_pixel(encoder: str, decoder: tuple[int, ...], autocast: bool) -> float:
    model = build_model(ModelSpec("Unet", encoder, 5, decoder, 3)).train().to(memory_format=torch.channels_last)
    counts = []
    for side in SIDES:
        x = torch.randn(BATCH, 3, side, side).contiguous(memory_format=torch.channels_last)
        counts.append(saved_bytes(model, x, autocast))
    return (counts[1] - counts[0]) / (BATCH * (SIDES[1] ** 2 - SIDES[0] ** 2))


def main() -> None:
    torch.manual_seed(0)
    print(f"bytes saved for backward per input pixel (U-Net, batch {BATCH}, {SIDES[0]}² vs {SIDES[1]}²)")
    for encoder, decoder in ((GPU_ENCODER, GPU_DECODER), (CPU_ENCODER, CPU_DECODER)):
        for autocast in (True, False):
            print(f"  {encoder:26s} {'bf16 autocast' if autocast else 'fp32':14s} "
                  f"{per_pixel(encoder, decoder, autocast):7.0f}")


if __name__ == "__main__":
    main()
