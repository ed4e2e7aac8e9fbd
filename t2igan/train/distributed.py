"""torchrun support without per-model code: rank/world from the environment, gradients averaged
across processes after each backward (the same arithmetic as DDP), only rank 0 writes files."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return rank() == 0


def init_from_environment(device: str) -> torch.device:
    """Join the process group torchrun describes (gloo on CPU, nccl on CUDA); pick this rank's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return torch.device(device)
    target = torch.device(device)
    backend = "nccl" if target.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    if target.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return target


def average_gradients(params: Sequence[nn.Parameter]) -> None:
    """All-reduce and average the gradients of `params` in one flat buffer."""
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def shard(indices: Sequence[int]) -> list[int]:
    """This rank's share of a batch-ordered index list (every rank gets the same count)."""
    n = world_size()
    usable = len(indices) - len(indices) % n
    return list(indices[rank() : usable : n])
