"""Data-parallel training through PyTorch's own engine: ``torchrun`` + DDP.

``torchrun --nproc-per-node N -m spikeforge train ...`` (or ``spikeforge train
--nproc N``, which execs exactly that) starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR/PORT`` set. :func:`setup`
reads them, joins the process group (NCCL on CUDA, Gloo on the CPU) and returns
a :class:`DistContext`; without those variables it returns the single-process
context and nothing changes.

What each rank does (``spikeforge.train.engine.Trainer``):

- every rank draws the same seeded global order of the epoch and the same
  augmentation and encoding of each global batch of ``data.batch_size``
  samples, then keeps its own contiguous share of the batch
  (:meth:`DistContext.shard`): a distributed sampler at batch granularity;
- the model is wrapped in ``DistributedDataParallel``, whose backward averages
  the gradients over ranks; the local loss is scaled by ``world * n_local /
  n_global``, so that the average is exactly the gradient of the global
  batch's mean loss even when the last batch does not split evenly;
- only rank 0 writes logs, checkpoints, ``metrics.json`` and the final
  weights; every rank loads the checkpoint on ``--resume``.

So N processes follow the same trajectory as one process with the same global
batch, up to the order of floating-point sums (the all-reduce adds gradients
in another order), for models without BatchNorm. BatchNorm normalises each
rank's share with its own statistics (DDP's default, as in the papers'
multi-GPU runs); ``SyncBatchNorm`` would restore the global statistics but
runs on CUDA only.

We do not use ``torch.utils.data.DistributedSampler``: it shards the epoch
(rank r takes samples r, r+N, ...) and pads it to equal length, so its
batches are not the single-process batches, and the equivalence above would
not hold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistContext:
    """This process's place in the job: ``rank`` of ``world_size`` (1: not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True when running under torchrun with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and logs."""
        return self.rank == 0

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` in ``DistributedDataParallel`` (itself when not distributed)."""
        if not self.enabled:
            return model
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def shard(self, n: int) -> tuple[slice, float]:
        """This rank's slice of a global batch of ``n`` samples, and the factor
        ``world * n_local / n`` by which to scale its mean loss."""
        if not self.enabled:
            return slice(0, n), 1.0
        if n < self.world_size:
            raise ValueError(
                f"a batch of {n} samples cannot be split over {self.world_size} processes; "
                "use a data.batch_size (and a training set size) of at least the world size"
            )
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        size = base + (1 if self.rank < extra else 0)
        return slice(start, start + size), self.world_size * size / n

    def all_sum(self, values: list[float]) -> list[float]:
        """Sum of ``values`` over ranks (float64 on the CPU for Gloo; on CUDA for NCCL)."""
        if not self.enabled:
            return values
        dev = torch.device("cuda", self.local_rank) if dist.get_backend() == "nccl" else "cpu"
        t = torch.tensor(values, dtype=torch.float64, device=dev)
        dist.all_reduce(t)
        return t.tolist()

    def broadcast(self, obj):
        """``obj`` as rank 0 has it (e.g. a run directory named from the clock)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait for every rank (e.g. until rank 0 has written a checkpoint)."""
        if self.enabled:
            dist.barrier()


_CONTEXT: DistContext | None = None


def under_torchrun() -> bool:
    """True when torchrun's environment (``WORLD_SIZE`` and ``RANK``) is set."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def setup(device: str = "cpu") -> DistContext:
    """Join the torchrun job (once per process) and return its :class:`DistContext`.

    ``device``: the run's ``device`` key; ``cuda`` (or ``auto`` with CUDA)
    selects NCCL and the GPU ``LOCAL_RANK``, the CPU selects Gloo.
    """
    global _CONTEXT
    if _CONTEXT is not None:
        return _CONTEXT
    if not under_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        _CONTEXT = DistContext()
        return _CONTEXT
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    _CONTEXT = DistContext(rank, world, local)
    return _CONTEXT


def device_for(ctx: DistContext, device: torch.device) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` for a distributed CUDA run."""
    if ctx.enabled and device.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return device


def torchrun_argv(nproc: int, argv: list[str]) -> list[str]:
    """The command ``spikeforge train --nproc N ARGS`` execs: ``python -m
    torch.distributed.run --standalone --nproc-per-node N -m spikeforge train ARGS``."""
    import sys

    if nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {nproc}")
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={nproc}", "-m", "spikeforge", "train", *argv,
    ]
