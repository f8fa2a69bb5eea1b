"""Several processes with ``torchrun``: DDP set up from its environment variables (as nanoGPT).

``torchrun --nproc_per_node=N -m vitnirs pretrain ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; without them the run is a single process. Backend: NCCL on CUDA, gloo on CPU.
Each rank draws its own batches (the sampler stream is a function of seed, rank and step),
DDP averages the gradients, and only rank 0 writes logs and checkpoints.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` → ``cuda:<local_rank>`` when CUDA is available, else ``cpu``."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def setup_distributed(device: str = "auto") -> tuple[int, int, int, torch.device]:
    """``(rank, world_size, local_rank, device)``; joins the process group when ``WORLD_SIZE > 1``."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return rank, world_size, local_rank, dev


def is_distributed() -> bool:
    """Whether a process group is up."""
    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def wrap_ddp(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP-wrap ``model`` when a process group is up, else return it unchanged.

    ``find_unused_parameters`` is on: a step without the contrastive or baseline loss leaves
    some parameters (e.g. a projection head) without gradient.
    """
    if not is_distributed():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over ranks (a copy; the tensor itself unchanged in a single process)."""
    if not is_distributed():
        return value
    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / dist.get_world_size()


def cleanup() -> None:
    """Leave the process group (no-op when none)."""
    if is_distributed():
        dist.destroy_process_group()
