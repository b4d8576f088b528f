"""The one training loop of skelmask, shared by pre-training, the linear probe and fine-tuning.

A ``Loop`` owns what the three stages have in common: the epoch batches, the optimiser, the
per-iteration warm-up + cosine schedule, autocast, gradient clipping and the epoch record. Each
stage only says how a batch becomes a loss. The module also holds the distributed helpers the
stages share (DDP wrapping, sharded evaluation loaders, gathers and means over ranks).

The loop never reads a value back from the device during an epoch: the loss is summed on the
device and checked once, after the epoch's mean over ranks, so a NaN or infinite loss stops
every rank at the same point (and before a checkpoint of that epoch is written).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim import Optimizer
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from skelmask._checks import check_positive_int
from skelmask.training.config import FinetuneConfig, PretrainConfig, ProbeConfig
from skelmask.training.dist import DistributedContext
from skelmask.training.logging import progress
from skelmask.training.schedule import WarmupCosineScheduler
from skelmask.training.seed import epoch_seed, worker_init_fn

__all__ = [
    "BatchLoss",
    "EpochLoader",
    "Loop",
    "LoopSettings",
    "SampleDataset",
    "autocast",
    "forward_features",
    "gather_strided",
    "mean_over_ranks",
    "shard_loader",
    "wrap",
]

# Variadic so that TensorDataset (yielding tuple[Tensor, ...]) type-checks as well.
SampleDataset = Dataset[tuple[Tensor, ...]]


@dataclass(frozen=True)
class LoopSettings:
    """What the loop reads from a stage's configuration; absent fields take the defaults.

    ``ProbeConfig`` has no ``min_lr``, ``warmup_epochs``, ``grad_clip`` or ``amp``: the probe
    decays to 0 without warm-up, clipping or autocast.
    """

    epochs: int
    batch_size: int
    lr: float
    seed: int
    num_workers: int
    min_lr: float = 0.0
    warmup_epochs: int = 0
    grad_clip: float | None = None
    amp: bool = False

    @classmethod
    def of(cls, config: PretrainConfig | ProbeConfig | FinetuneConfig) -> LoopSettings:
        """The fields of ``config`` that the loop uses."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in config.to_dict().items() if key in names})


class EpochLoader:
    """Training batches whose order and worker seeds depend only on ``(seed, rank, epoch)``.

    A ``DistributedSampler`` is used even in a single process: its permutation comes from
    ``seed + epoch`` alone, so a resumed run sees the same batches as an uninterrupted one, and
    ``R`` ranks with batch ``b`` see, step for step, the same samples as one process with batch
    ``R·b``. ``drop_last`` keeps every step's batch full (BatchNorm heads need more than one
    sample, and DDP ranks must run the same number of steps).

    Raises:
        ValueError: If the dataset makes no full batch per rank.
    """

    def __init__(
        self,
        dataset: SampleDataset,
        *,
        batch_size: int,
        seed: int,
        num_workers: int,
        context: DistributedContext,
    ) -> None:
        self.sampler: DistributedSampler[tuple[Tensor, ...]] = DistributedSampler(
            dataset,
            num_replicas=context.world_size,
            rank=context.rank,
            shuffle=True,
            seed=seed,
            drop_last=True,
        )
        # The loader draws its workers' base seed from this generator (never the global RNG),
        # reseeded every epoch.
        self.generator = torch.Generator()
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=num_workers,
            worker_init_fn=worker_init_fn,
            generator=self.generator,
            drop_last=True,
            pin_memory=context.device.type == "cuda",
        )
        self.seed = seed
        self.rank = context.rank
        if len(self.loader) == 0:
            raise ValueError(
                f"{len(cast(Sized, dataset))} samples make no full batch of {batch_size} "
                f"per rank over {context.world_size} rank(s)"
            )

    def __len__(self) -> int:
        return len(self.loader)

    def epoch(self, epoch: int) -> DataLoader[tuple[Tensor, ...]]:
        """The loader, set up for ``epoch``."""
        self.sampler.set_epoch(epoch)
        self.generator.manual_seed(epoch_seed(self.seed, self.rank, epoch))
        return self.loader


BatchLoss = Callable[[Tensor, Tensor], Tensor]
"""``(x, labels)`` on the device → scalar loss; runs under the loop's autocast."""


class Loop:
    """The batches, optimiser and per-iteration schedule of one stage, and its epoch loop.

    Args:
        dataset: Yields ``(x, label)``.
        optimizer: Over ``parameters``; its learning rate is driven by ``scheduler``.
        parameters: What gradient clipping measures.
        settings: Epochs, batch size, learning rates, warm-up, seed, workers, clipping, amp.
        context: From ``setup_distributed``.
        name: Labels progress reports and errors (``"pretrain"``, ``"linear_probe"``, …).

    Attributes:
        batches: The ``EpochLoader``.
        scheduler: Linear warm-up over ``warmup_epochs`` then cosine from ``lr`` to ``min_lr``
            at ``epochs``, stepped every iteration.
    """

    def __init__(
        self,
        dataset: SampleDataset,
        optimizer: Optimizer,
        parameters: Sequence[Tensor],
        settings: LoopSettings,
        *,
        context: DistributedContext,
        name: str,
    ) -> None:
        self.settings = settings
        self.context = context
        self.name = name
        self.optimizer = optimizer
        self.parameters = list(parameters)
        self.batches = EpochLoader(
            dataset,
            batch_size=settings.batch_size,
            seed=settings.seed,
            num_workers=settings.num_workers,
            context=context,
        )
        steps = len(self.batches)
        self.scheduler = WarmupCosineScheduler(
            optimizer,
            base_lr=settings.lr,
            min_lr=settings.min_lr,
            warmup_steps=settings.warmup_epochs * steps,
            total_steps=settings.epochs * steps,
        )

    def epoch(self, epoch: int, batch_loss: BatchLoss) -> dict[str, float]:
        """Runs one optimisation step per batch of ``epoch``.

        Args:
            epoch: Epoch index (chooses the batches; the schedule continues from its state).
            batch_loss: Computes a batch's loss; the model's train/eval mode is the caller's.

        Returns:
            ``{"epoch", "loss", "lr"}``: the loss averaged over steps and ranks, the largest
            learning rate of the optimiser's groups after the epoch.

        Raises:
            FloatingPointError: If the epoch's mean loss is NaN or infinite (on every rank).
        """
        device = self.context.device
        total = torch.zeros((), device=device)
        for x, y, *_ in progress(
            self.batches.epoch(epoch),
            total=len(self.batches),
            desc=f"{self.name} {epoch}",
            enabled=self.context.is_main,
        ):
            with autocast(device, self.settings.amp):
                loss = batch_loss(x.to(device, non_blocking=True), y.to(device, non_blocking=True))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            if self.settings.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.parameters, self.settings.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            total += loss.detach().float()
        mean = mean_over_ranks(total / len(self.batches), self.context)
        if not math.isfinite(mean):
            raise FloatingPointError(
                f"{self.name} loss is {mean} at epoch {epoch}; stopping (look for NaN or "
                "infinite values in the data, or lower the learning rate)"
            )
        return {"epoch": epoch, "loss": mean, "lr": max(self.scheduler.get_last_lr())}


def shard_loader(
    dataset: SampleDataset, batch_size: int, num_workers: int, context: DistributedContext
) -> tuple[DataLoader[tuple[Tensor, ...]], int]:
    """In-order loader over samples ``rank, rank + R, …`` (no padding, unlike the sampler)."""
    batch_size = check_positive_int(batch_size, "batch_size")
    size = len(cast(Sized, dataset))
    if size < context.world_size:
        raise ValueError(f"{size} samples cannot be split over {context.world_size} ranks")
    loader = DataLoader(
        Subset(dataset, range(context.rank, size, context.world_size)),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        worker_init_fn=worker_init_fn,
        # A fixed generator, so that evaluation never advances the global RNG of training.
        generator=torch.Generator().manual_seed(0),
        pin_memory=context.device.type == "cuda",
    )
    return loader, size


def gather_strided(local: Tensor, size: int, context: DistributedContext) -> Tensor:
    """Reassembles rows ``rank::R`` of every rank into the full ``(size, ...)`` tensor."""
    if context.world_size == 1:
        return local
    rows = math.ceil(size / context.world_size)
    padded = local.new_zeros((rows, *local.shape[1:]))
    padded[: len(local)] = local
    parts = [torch.empty_like(padded) for _ in range(context.world_size)]
    dist.all_gather(parts, padded)
    full = local.new_empty((size, *local.shape[1:]))
    for rank, part in enumerate(parts):
        count = len(range(rank, size, context.world_size))
        full[rank :: context.world_size] = part[:count]
    return full


def mean_over_ranks(value: Tensor, context: DistributedContext) -> float:
    """The mean of a 0-d tensor over ranks, read back once."""
    if context.world_size > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= context.world_size
    return float(value)


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA (no GradScaler needed: bf16 has float32's exponent range)."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def wrap(module: nn.Module, context: DistributedContext, *, compile: bool = False) -> nn.Module:
    """DDP (and optionally ``torch.compile``) around ``module``; checkpoints use ``module``."""
    wrapped = module
    if context.world_size > 1:
        if not dist.is_initialized():
            raise ValueError(
                f"context says world_size={context.world_size} but no process group is "
                "initialised; create the context with setup_distributed()"
            )
        wrapped = DistributedDataParallel(
            module,
            device_ids=[context.device.index] if context.device.type == "cuda" else None,
            find_unused_parameters=False,
        )
    if compile:
        wrapped = cast(nn.Module, torch.compile(wrapped))
    return wrapped


def forward_features(encoder: nn.Module, x: Tensor) -> Tensor:
    """``encoder.forward_features(x)``: ``(B, ...)`` → ``(B, D)``."""
    forward = cast(Callable[[Tensor], Tensor], encoder.forward_features)
    return forward(x)
