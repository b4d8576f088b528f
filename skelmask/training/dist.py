"""Process-group setup for ``torchrun`` (DDP) that falls back to a single process."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

__all__ = ["DistributedContext", "cleanup_distributed", "setup_distributed"]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a (possibly one-process) data-parallel run.

    Attributes:
        rank: Global rank, ``0 <= rank < world_size``.
        world_size: Number of processes.
        local_rank: Rank on this machine (selects the GPU).
        device: Device this process trains on.

    Examples:
        >>> from skelmask.training import DistributedContext
        >>> context = DistributedContext()
        >>> context.is_main, context.world_size, context.device
        (True, 1, device(type='cpu'))
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the only rank that logs and writes checkpoints."""
        return self.rank == 0


def setup_distributed(device: str | None = None) -> DistributedContext:
    """Initialises the default process group from ``torchrun``'s environment, if any.

    With ``WORLD_SIZE > 1`` in the environment (set by ``torchrun`` together with ``RANK``,
    ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``) this joins the process group (NCCL on
    CUDA, gloo on CPU) and binds CUDA runs to ``cuda:LOCAL_RANK``. Otherwise it returns a
    single-process context and initialises nothing.

    Args:
        device: ``"cpu"``, ``"cuda"`` (``cuda:LOCAL_RANK``), ``"cuda:N"``, or ``None``/``"auto"``
            for CUDA when available.

    Returns:
        The context to pass to the training functions.

    Raises:
        ValueError: If ``device`` is not one of the accepted values.

    Examples:
        >>> from skelmask.training import setup_distributed
        >>> setup_distributed("cpu").world_size  # no torchrun environment here
        1
    """
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N', 'auto' or None, got {device!r}")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    # torchrun assigns one GPU per process through LOCAL_RANK unless an index is explicit.
    torch_device = torch.device("cuda", local_rank) if device == "cuda" else torch.device(device)
    if torch_device.type == "cuda":
        torch.cuda.set_device(torch_device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(
            "nccl" if torch_device.type == "cuda" else "gloo",
            init_method="env://",
            rank=rank,
            world_size=world_size,
        )
    return DistributedContext(rank, world_size, local_rank, torch_device)


def cleanup_distributed() -> None:
    """Destroys the default process group if one is initialised; a no-op otherwise.

    Examples:
        >>> from skelmask.training import cleanup_distributed
        >>> cleanup_distributed()
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
