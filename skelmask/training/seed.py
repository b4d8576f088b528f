"""Seeding and RNG-state capture, so that runs repeat and resumed runs continue exactly."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["epoch_seed", "rng_state", "seed_everything", "set_rng_state", "worker_init_fn"]


def seed_everything(seed: int, rank: int = 0) -> None:
    """Seeds python ``random``, numpy's global RNG and torch (CPU and every CUDA device).

    Each rank gets ``seed + rank`` (timm's ``random_seed``), so that ranks draw different masks
    while the run as a whole stays reproducible. Model weights still agree across ranks because
    ``DistributedDataParallel`` broadcasts rank 0's parameters.

    Args:
        seed: Base seed of the run.
        rank: Rank of this process.

    Examples:
        >>> from skelmask.training import seed_everything
        >>> seed_everything(0)
        >>> a = torch.rand(2)
        >>> seed_everything(0)
        >>> torch.equal(a, torch.rand(2))
        True
    """
    value = seed + rank
    random.seed(value)
    # The legacy global numpy RNG is what third-party augmentation code draws from.
    np.random.seed(value % 2**32)  # noqa: NPY002
    torch.manual_seed(value)


def epoch_seed(seed: int, rank: int, epoch: int) -> int:
    """A well-mixed 63-bit seed that depends only on ``(seed, rank, epoch)``.

    Used to reseed the DataLoader generator every epoch, so that worker RNG streams (random crops,
    rotations) depend on the epoch and not on how many epochs this process has already run, which
    keeps a resumed run identical to an uninterrupted one.

    Args:
        seed: Base seed of the run.
        rank: Rank of this process.
        epoch: Epoch index.

    Returns:
        A non-negative ``int`` below ``2**63``.

    Examples:
        >>> from skelmask.training.seed import epoch_seed
        >>> epoch_seed(0, 0, 1) == epoch_seed(0, 0, 1) != epoch_seed(0, 0, 2)
        True
    """
    words = np.random.SeedSequence([seed, rank, epoch]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def worker_init_fn(worker_id: int) -> None:
    """Seeds numpy and python ``random`` in a DataLoader worker from its torch seed.

    torch seeds each worker with ``base_seed + worker_id`` (``base_seed`` drawn from the loader's
    generator) but leaves numpy and ``random`` as forked copies, so every worker would otherwise
    produce the same "random" augmentations. Module-level so worker processes can unpickle it.

    Args:
        worker_id: Index of the worker (already folded into ``torch.initial_seed()``).

    Examples:
        >>> from skelmask.training import worker_init_fn
        >>> worker_init_fn(0)
    """
    del worker_id  # torch.initial_seed() already includes it
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002


def rng_state() -> dict[str, Any]:
    """Captures every global RNG state as tensors, lists and numbers.

    The result contains no numpy arrays or tuples of python objects, so a checkpoint holding it
    loads with ``torch.load(weights_only=True)``.

    Returns:
        ``{"torch": uint8 tensor, "cuda": list of uint8 tensors (one per device, empty without
        CUDA), "numpy": dict, "python": list}``.

    Examples:
        >>> from skelmask.training.seed import rng_state, set_rng_state
        >>> state = rng_state()
        >>> a = torch.rand(3)
        >>> set_rng_state(state)
        >>> torch.equal(a, torch.rand(3))
        True
    """
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "name": str(name),
            # uint32 keys are stored as int64 because torch tensors have no uint32 arithmetic.
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": [version, list(internal), gauss_next],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restores RNG states captured by ``rng_state``.

    CUDA states are restored only when CUDA is available and the device count matches, since a
    checkpoint may move between machines.

    Args:
        state: A dict returned by ``rng_state`` (possibly after a checkpoint round trip).
    """
    torch.set_rng_state(state["torch"].cpu())
    cuda = state["cuda"]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
    numpy = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            numpy["name"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
