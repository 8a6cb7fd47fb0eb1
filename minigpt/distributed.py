"""Training on several processes under torchrun, with rank 0 in charge.

    torchrun --standalone --nproc_per_node=2 -m minigpt train --config config.toml

Every process (rank) holds the whole model and draws its own batches; PyTorch's
DistributedDataParallel averages the gradients, so each optimizer step sees
nproc times the batch. Rank 0 alone is the run: it writes the run directory,
evaluates, samples and serves the control socket, exactly as a single process
does. The other ranks follow it: before each training step rank 0 broadcasts a
plan (train one step with this config, wait, or exit) and they carry it out,
so a pause, a config change or a stop sent to rank 0 reaches every rank at a
step boundary. Gloo on the CPU, NCCL on CUDA.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

STEP, WAIT, EXIT = "step", "wait", "exit"
# Followers block on the next plan; while rank 0 is paused it sends a WAIT this
# often, so a pause of any length never reaches the collectives' timeout.
WAIT_INTERVAL_S = 1.0
COLLECTIVE_TIMEOUT = timedelta(minutes=30)


@dataclass
class Cluster:
    """This process's place in a torchrun job."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    last_plan_sent: float = 0.0

    @property
    def leader(self) -> bool:
        """Rank 0: the process that owns the run directory and the socket."""
        return self.rank == 0

    def send(self, op: str, config: dict[str, Any] | None = None) -> None:
        """Rank 0: tell every rank what to do next."""
        dist.broadcast_object_list([{"op": op, "config": config}], src=0)
        self.last_plan_sent = time.monotonic()

    def keep_alive(self) -> None:
        """Rank 0, not training: a WAIT now and then keeps the followers' collectives alive."""
        if time.monotonic() - self.last_plan_sent >= WAIT_INTERVAL_S:
            self.send(WAIT)

    def receive(self) -> dict[str, Any]:
        """A follower: the next plan from rank 0."""
        plan: list[Any] = [None]
        dist.broadcast_object_list(plan, src=0)
        return plan[0]

    def mean(self, value: float, device: torch.device) -> float:
        """The mean of value over all ranks."""
        total = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(total)
        return total.item() / self.world_size

    def replicate(
        self, model: nn.Module, loss_of: Callable[..., torch.Tensor], device: torch.device
    ) -> nn.parallel.DistributedDataParallel:
        """model's loss behind DistributedDataParallel, which averages the gradients."""
        ids = [device.index if device.index is not None else self.local_rank]
        return nn.parallel.DistributedDataParallel(
            _LossOf(model, loss_of),
            device_ids=ids if device.type == "cuda" else None,
        )

    def close(self) -> None:
        """Leave the job, all ranks together."""
        dist.barrier()
        dist.destroy_process_group()


class _LossOf(nn.Module):
    """A module whose forward is model's loss, so DDP can wrap the loss path."""

    def __init__(self, model: nn.Module, loss_of: Callable[..., torch.Tensor]) -> None:
        """Hold the model (its parameters are what DDP synchronises)."""
        super().__init__()
        self.model = model
        self.loss_of = loss_of

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean loss of a batch."""
        return self.loss_of(x, y)


def join() -> Cluster | None:
    """Join the torchrun job this process was started in; None when it runs alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    return Cluster(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local_rank,
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
    )


def no_sync(
    replicas: nn.parallel.DistributedDataParallel | None, last: bool
) -> contextlib.AbstractContextManager[None]:
    """Skip the gradient all-reduce on every micro-step but the last of an optimizer step."""
    if replicas is None or last:
        return contextlib.nullcontext()
    return replicas.no_sync()
