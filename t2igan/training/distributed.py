"""torchrun support without per-model code: rank/world from the environment, gradients averaged
across processes after each backward (the same arithmetic as DDP), only rank 0 writes files."""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from t2igan.errors import ConfigError
from t2igan.nn.interfaces import Batch, TextFeatures

TIMEOUT_ENV = "T2IGAN_DIST_TIMEOUT_MINUTES"
DEFAULT_TIMEOUT_MINUTES = 240


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
    # a bench evaluates on rank 0 while the others wait at the next collective: allow hours, not minutes
    minutes = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_MINUTES))
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=minutes))
    if target.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return target


def shutdown() -> None:
    """Leave the process group, if this process joined one. Left to interpreter exit, the backend's
    threads can outlive Python and abort the process after its work is done ("terminate called without
    an active exception", seen once in CI on a torchrun rank 1)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first (it builds the caches: dataset, encoders, text features); the other
    ranks wait for it, then run the block and find the caches ready."""
    if not is_distributed():
        yield
        return
    if not is_main_process():
        dist.barrier()
    try:
        yield
    finally:  # also when the block raised: a config error then reaches every rank in turn
        if is_main_process():
            dist.barrier()


def all_finite(value: Tensor) -> bool:
    """Whether `value` is finite on every rank: one rank's NaN stops all of them at the same step (a rank
    that stopped alone would leave the others waiting in the next all-reduce)."""
    finite = torch.isfinite(value.detach()).all().float().reshape(1)
    if is_distributed():
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite.item())


def broadcast_flag(value: bool) -> bool:
    """Rank 0's `value` on every rank (a decision only rank 0 can make, e.g. whether it claimed a run)."""
    if not is_distributed():
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    flag = torch.tensor([1.0 if value else 0.0], device=device)
    dist.broadcast(flag, src=0)
    return bool(flag.item())


def barrier() -> None:
    if is_distributed():
        dist.barrier()


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


def shard_batch(batch: Batch) -> Batch:
    """This rank's share of a global batch: every `world_size()`-th sample from `rank()` on. The preset's
    batch size stays the global one, so a run on N processes does the arithmetic of one process."""
    n = world_size()
    if n == 1:
        return batch
    size = len(batch.images)
    if size % n:
        raise ConfigError(f"batch size {size} does not split over {n} processes: use a multiple of {n}")
    pick = slice(rank(), size, n)
    text = batch.text
    return Batch(
        batch.images[pick],
        TextFeatures(
            text.sentence[pick],
            None if text.words is None else text.words[pick],
            None if text.mask is None else text.mask[pick],
        ),
        list(batch.captions[pick]),
        {k: v[pick] if isinstance(v, Tensor) and len(v) == size else v for k, v in batch.extras.items()},
    )


def broadcast_module(module: nn.Module) -> None:
    """Every rank takes rank 0's parameters and buffers (as DDP does when it wraps a model)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def ranks_agree(module: nn.Module) -> bool:
    """True when every rank holds the same parameters (compared through a sum of each tensor's values
    and squares), i.e. the gradient averaging kept the replicas in step."""
    if not is_distributed():
        return True
    with torch.no_grad():
        sums = torch.stack(
            [torch.stack([p.double().sum(), p.double().square().sum()]) for p in module.parameters()]
        ).flatten()
        low, high = sums.clone(), sums.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        return bool(torch.allclose(low, high, rtol=1e-6, atol=1e-9))
