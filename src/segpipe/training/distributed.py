"""One fold on several devices: DistributedDataParallel under torchrun (NCCL on GPUs, gloo on CPU).

Rank 0 alone writes files and logs; every rank trains on its shard of each epoch and takes
rank 0's validation score, so all ranks make the same best-checkpoint and early-stop calls.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from segpipe.core.runtime import pick_device


@dataclass(frozen=True)
class Distributed:
    """This process's place in the group; the default is a plain single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self) -> torch.device:
        return pick_device(self.local_rank)

    @contextlib.contextmanager
    def group(self):
        """Join the process group (torchrun's env:// rendezvous) for the block, then leave it."""
        if not self.enabled:
            yield
            return
        if torch.cuda.is_available():
            torch.cuda.set_device(self.local_rank)
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo",
                                rank=self.rank, world_size=self.world_size)
        try:
            yield
        finally:
            dist.destroy_process_group()

    def wrap(self, model: nn.Module, find_unused: bool = False) -> nn.Module:
        """The model the training step runs: DDP-wrapped when there are several processes.

        `find_unused` lets DDP skip parameters the forward never touches (smp keeps the deep
        encoder stages of a shallow `encoder_depth`), at the cost of a graph walk per step.
        """
        if not self.enabled:
            return model
        ids = [self.local_rank] if torch.cuda.is_available() else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)

    def from_main(self, *values: float) -> tuple[float, ...]:
        """Rank 0's `values` on every rank."""
        if not self.enabled:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device())
        dist.broadcast(tensor, src=0)
        return tuple(tensor.tolist())

    def total(self, *values: float) -> tuple[float, ...]:
        """The sum of `values` over the ranks."""
        if not self.enabled:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device())
        dist.all_reduce(tensor)
        return tuple(tensor.tolist())

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()
