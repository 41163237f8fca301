"""torchrun integration: rank and world size from the environment, process group, cross-rank sums.

Shared by training (DDP) and batch upscaling (each rank takes its share of the files). torch is imported by
the functions that talk to other ranks only: a batch upscale reads its rank from the environment, and may run
on an engine that needs no torch."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .runtime import local_rank

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.active:
            import torch.distributed as dist

            t = t.clone()
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def any(self, flag: bool) -> bool:
        import torch

        return bool(self.sum(torch.tensor([float(flag)])).item() > 0) if self.active else flag


def from_env() -> Dist:
    """Read torchrun's variables; a plain process is rank 0 of 1."""
    return Dist(
        rank=int(os.environ.get("RANK", 0)),
        world=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=local_rank(),
    )


def init(device: str) -> Dist:
    import torch.distributed as dist

    env = from_env()
    if env.active and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return env


def shutdown(env: Dist) -> None:
    import torch.distributed as dist

    if env.active and dist.is_initialized():
        dist.destroy_process_group()
