"""Data-parallel training across processes, switched on by torchrun's environment.

`torchrun --nproc-per-node N -m aekit train ...` starts N copies of the
command; each reads RANK / WORLD_SIZE / LOCAL_RANK, joins one process group
(gloo on CPU, NCCL on CUDA) and wraps the model in DistributedDataParallel.
Every rank draws the same shuffled order (same seed) and takes its own slice
of each global batch, so N processes with batch_size B take exactly the steps
of one process with batch_size B. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from aekit.errors import ConfigError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes the run folder and prints."""
        return self.rank == 0

    def shard(self, idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        """This rank's rows of a global batch and the factor that makes DDP's gradient the global mean.

        DDP averages the ranks' gradients, so a rank whose mean loss covers n_r of
        the batch's n rows weighs it by n_r * world / n: the average then equals
        the gradient of the mean over all n rows, whatever the split. A rank left
        without rows (a last batch smaller than the world) still runs the step, on
        one row weighted 0, because every rank must join each gradient all-reduce.
        """
        if not self.enabled:
            return idx, 1.0
        mine = idx[self.rank :: self.world]
        if len(mine) == 0:
            return idx[:1], 0.0
        return mine, len(mine) * self.world / len(idx)

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over all ranks (the identity in one process)."""
        if self.enabled:
            values = values.clone()
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def context(device: torch.device) -> tuple[Context, torch.device]:
    """The process group of this run (joined here when torchrun started us) and the device of this rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context(), device
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)  # one GPU per process
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Context(rank, world, local_rank), device


def wrap(module: torch.nn.Module, ctx: Context, device: torch.device) -> torch.nn.Module:
    """`module` in DistributedDataParallel when running distributed, else unchanged."""
    if not ctx.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)
