"""Helpers for losses that compare samples across ``torch.distributed`` ranks.

Contrastive losses such as ``CrossContrastLoss`` compare
every sample with every other sample of the batch. Under data-parallel training each rank only
holds its own shard, so the loss can all-gather the keys of every rank (with gradient) to compare
against the whole global batch, as lightly's ``NTXentLoss(gather_distributed=True)`` does.

Every function here is a no-op (a world of one rank) when ``torch.distributed`` is unavailable or
no process group is initialised, so single-process code needs no special casing.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

__all__ = ["eye_rank", "gather", "is_distributed", "rank", "world_size"]


def is_distributed() -> bool:
    """Whether ``torch.distributed`` is available and a default process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of ranks in the default process group; 1 without one."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """Rank of this process in the default process group; 0 without one."""
    return dist.get_rank() if is_distributed() else 0


class _AllGather(torch.autograd.Function):
    """All-gather whose backward hands every rank the gradient of its own slice.

    Each rank's loss depends on the tensors of all ranks, so the gradient that reaches a rank's
    input must be the sum over ranks of the gradients w.r.t. its slice: all-reduce, then slice.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> tuple[torch.Tensor, ...]:
        output = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(output, tensor.contiguous())
        return tuple(output)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> torch.Tensor:
        stacked = torch.stack(grads)
        dist.all_reduce(stacked)
        return stacked[dist.get_rank()]


def gather(tensor: torch.Tensor) -> list[torch.Tensor]:
    """All-gathers a tensor from every rank, keeping the autograd graph.

    Every rank must pass a tensor of the same shape. The backward pass sums the gradients of all
    ranks' losses w.r.t. each slice and sends every rank the part for its own input, so a loss
    computed against the gathered tensor trains each rank's encoder correctly under DDP.

    Args:
        tensor: Any shape, identical on every rank.

    Returns:
        One tensor per rank, in rank order, each shaped like ``tensor``. Without an initialised
        process group: ``[tensor]`` itself (no copy).

    Examples:
        >>> keys = torch.randn(8, 128)
        >>> all_keys = torch.cat(gather(keys))  # (world_size·8, 128)
        >>> all_keys.shape
        torch.Size([8, 128])
    """
    if not is_distributed():
        return [tensor]
    gathered: tuple[torch.Tensor, ...] = _AllGather.apply(tensor)  # type: ignore[no-untyped-call]
    return list(gathered)


def eye_rank(size: int, device: torch.device | None = None) -> torch.Tensor:
    """Identity target between this rank's rows and the gathered columns.

    Row ``i`` (local sample ``i``) is True at column ``rank()·size + i``, its own position in the
    batch gathered by ``gather``.

    Args:
        size: Local batch size ``B``.
        device: Device of the result.

    Returns:
        Bool ``(B, world_size()·B)``; equal to ``torch.eye(B, dtype=bool)`` without a process
        group.

    Examples:
        >>> eye_rank(2)
        tensor([[ True, False],
                [False,  True]])
    """
    rows = torch.arange(size, device=device)
    columns = torch.arange(world_size() * size, device=device)
    return columns.unsqueeze(0) == (rows + rank() * size).unsqueeze(1)
