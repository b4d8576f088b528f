"""Training loops: masked pre-training, feature extraction, kNN, linear probe and fine-tuning.

The loops work with any module that follows the skelmask interfaces, so they import neither
``skelmask.models`` nor ``skelmask.data``:

* pre-training: ``model(x)`` returns an object with a scalar ``.loss`` (``MAEOutput``);
* evaluation: the encoder has ``forward_features(x) -> (N, D)`` and an ``embed_dim`` attribute;
* fine-tuning: ``classifier(x)`` returns logits ``(N, num_classes)``;
* datasets yield ``(x, label)`` with ``x`` of any shape (``(C, T, V, M)`` for skeletons) and a
  0-d int64 label.

Every loop runs single-process or under ``torchrun`` (see ``
setup_distributed``); batch sizes are per rank. Data order depends only on ``(seed, epoch)``,
the test split is only ever reported (last epoch first), and only rank 0 logs and writes.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim import Optimizer
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from skelmask.training.checkpoint import load_weights, save_checkpoint
from skelmask.training.config import FinetuneConfig, PretrainConfig, ProbeConfig
from skelmask.training.dist import DistributedContext
from skelmask.training.logging import MetricLogger, progress
from skelmask.training.schedule import WarmupCosineScheduler, param_groups
from skelmask.training.seed import (
    epoch_seed,
    rng_state,
    seed_everything,
    set_rng_state,
    worker_init_fn,
)

__all__ = [
    "CHECKPOINT_NAME",
    "EvalResult",
    "extract_features",
    "finetune",
    "knn_accuracy",
    "labelled_subset",
    "linear_probe",
    "pretrain",
]

CHECKPOINT_NAME = "checkpoint-last.pt"
"""File name of the checkpoint ``pretrain`` rewrites after every epoch."""

_RESUME_KEYS = ("model", "optimizer", "scheduler", "epoch", "rng", "config", "history")

# Variadic so that TensorDataset (yielding tuple[Tensor, ...]) type-checks as well.
SampleDataset = Dataset[tuple[Tensor, ...]]


@dataclass
class EvalResult:
    """Test accuracy of a linear probe or fine-tuning run.

    ``last_accuracy`` is **the** result: the model after the final epoch, chosen without looking
    at the test split. ``best_accuracy``/``best_epoch`` are the maximum over epochs of the test
    accuracy; they are given for comparison with papers that report it (MAMP, HA-CM, ``hacm.md``
    B32) and are optimistic, since picking them uses the test split.

    Attributes:
        last_accuracy: Test accuracy in ``[0, 1]`` after the last epoch.
        best_accuracy: Highest per-epoch test accuracy (test-selected, for reference only).
        best_epoch: Epoch (from 0) of ``best_accuracy``; the earliest on ties.
        history: One record per epoch: ``epoch``, ``loss``, ``lr``, ``test_accuracy``.

    Examples:
        >>> from skelmask.training import EvalResult
        >>> result = EvalResult.from_history([{"test_accuracy": 0.5}, {"test_accuracy": 0.4}])
        >>> result.last_accuracy, result.best_accuracy, result.best_epoch
        (0.4, 0.5, 0)
    """

    last_accuracy: float
    best_accuracy: float
    best_epoch: int
    history: list[dict[str, float]]

    @classmethod
    def from_history(cls, history: list[dict[str, float]]) -> EvalResult:
        """Builds the result from per-epoch records that hold ``"test_accuracy"``."""
        accuracies = [record["test_accuracy"] for record in history]
        best_epoch = int(np.argmax(accuracies))
        return cls(accuracies[-1], accuracies[best_epoch], best_epoch, history)

    def summary(self) -> str:
        """One line that puts the last-epoch accuracy first and labels the best-epoch one."""
        return (
            f"test accuracy (last epoch): {100 * self.last_accuracy:.2f}%; "
            f"best epoch {self.best_epoch} (selected on test, reference only): "
            f"{100 * self.best_accuracy:.2f}%"
        )


class _EpochLoader:
    """Training batches whose order and worker seeds depend only on ``(seed, rank, epoch)``.

    A ``DistributedSampler`` is used even in a single process: its permutation comes from
    ``seed + epoch`` alone, so a resumed run sees the same batches as an uninterrupted one, and
    ``R`` ranks with batch ``b`` see, step for step, the same samples as one process with batch
    ``R·b``. ``drop_last`` keeps every step's batch full (BatchNorm heads need more than one
    sample, and DDP ranks must run the same number of steps).
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


def _shard_loader(
    dataset: SampleDataset, batch_size: int, num_workers: int, context: DistributedContext
) -> tuple[DataLoader[tuple[Tensor, ...]], int]:
    """In-order loader over samples ``rank, rank + R, …`` (no padding, unlike the sampler)."""
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


def _gather_strided(local: Tensor, size: int, context: DistributedContext) -> Tensor:
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


def _mean_over_ranks(value: Tensor, context: DistributedContext) -> float:
    if context.world_size > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= context.world_size
    return float(value)


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA (no GradScaler needed: bf16 has float32's exponent range)."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _wrap(module: nn.Module, context: DistributedContext, *, compile: bool = False) -> nn.Module:
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


def _optimise(
    loss: Tensor,
    parameters: Sequence[Tensor],
    optimizer: Optimizer,
    scheduler: WarmupCosineScheduler,
    grad_clip: float | None,
    epoch: int,
) -> None:
    value = float(loss.detach())
    if not math.isfinite(value):
        raise FloatingPointError(f"loss is {value} at epoch {epoch}; stopping")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    optimizer.step()
    scheduler.step()


def _forward_features(encoder: nn.Module, x: Tensor) -> Tensor:
    forward = cast(Callable[[Tensor], Tensor], encoder.forward_features)
    return forward(x)


def _gather_rng_states(context: DistributedContext) -> list[dict[str, Any]]:
    """Every rank's RNG state, in rank order (ranks draw different masks)."""
    state = rng_state()
    if context.world_size == 1:
        return [state]
    states: list[Any] = [None] * context.world_size
    dist.all_gather_object(states, state)
    return states


def _resume(
    path: Path,
    model: nn.Module,
    optimizer: Optimizer,
    scheduler: WarmupCosineScheduler,
    context: DistributedContext,
    model_config: Mapping[str, Any] | None,
) -> tuple[int, list[dict[str, float]]]:
    """Loads a ``pretrain`` checkpoint; returns the next epoch and the history so far."""
    state = load_weights(model, path, model_config=model_config, required=_RESUME_KEYS)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    if len(rng) == context.world_size:
        set_rng_state(rng[context.rank])
    else:
        warnings.warn(
            f"checkpoint {path} was written by {len(rng)} rank(s), this run has "
            f"{context.world_size}: RNG states are not restored, so masks will differ from an "
            "uninterrupted run",
            RuntimeWarning,
            stacklevel=3,
        )
    return int(state["epoch"]) + 1, list(state["history"])


def pretrain(
    model: nn.Module,
    dataset: SampleDataset,
    config: PretrainConfig,
    *,
    context: DistributedContext,
    output_dir: Path | None = None,
    resume: Path | None = None,
    logger: MetricLogger | None = None,
    model_config: Mapping[str, Any] | None = None,
) -> list[dict[str, float]]:
    """Masked-autoencoder pre-training with AdamW and a per-iteration warm-up + cosine schedule.

    Seeds everything from ``config.seed`` (plus the rank), then trains ``model`` in place: AdamW
    with ``param_groups`` (no decay for biases, 1-D parameters and
    ``no_weight_decay()`` names), bf16 autocast on CUDA when ``config.amp``, optional gradient
    clipping, DDP under ``torchrun``. After every epoch rank 0 writes
    ``output_dir/checkpoint-last.pt`` (atomically) with ``model`` (unwrapped state dict),
    ``optimizer``, ``scheduler``, ``scaler`` (``None``: bf16 needs none), ``epoch``, ``rng`` (one
    state per rank), ``config`` (plain dict), ``model_config`` and ``history``; it loads with
    ``torch.load(weights_only=True)``. Resuming from it continues exactly as if never stopped.
    Before resuming, the checkpoint's zip CRCs, its ``model_config`` (against the one given)
    and the names and shapes of its weights are checked, so a damaged file or one written for
    another model is a ``CheckpointError`` naming the file and each mismatch.

    Args:
        model: ``model(x)`` on a batch ``x`` of shape ``(B, ...)`` (``(B, C, T, V, M)`` for
            skeletons) returns an object whose ``.loss`` is a scalar tensor.
        dataset: Yields ``(x, label)``; labels are ignored.
        config: Hyper-parameters; ``batch_size`` is per rank.
        context: From ``setup_distributed``.
        output_dir: Folder for the checkpoint; ``None`` writes none.
        resume: Checkpoint to continue from (its epoch + 1 onwards, up to ``config.epochs``).
        logger: Receives one record per epoch (rank 0 only).
        model_config: How ``model`` was built (plain numbers, strings, lists), stored in the
            checkpoint and compared with the checkpoint's on resume; ``None`` skips both.

    Returns:
        One record per epoch since the start of the run (including resumed ones): ``epoch``,
        ``loss`` (mean over steps and ranks) and ``lr`` (at the end of the epoch).

    Raises:
        CheckpointError: If ``resume`` cannot be loaded, is damaged, or was written for a model
            of another configuration or shape.
        FloatingPointError: If the loss becomes NaN or infinite.
        ValueError: If the dataset is too small for one batch per rank.

    Examples:
        >>> from types import SimpleNamespace
        >>> from skelmask.training import DistributedContext, PretrainConfig, pretrain
        >>> class Toy(torch.nn.Module):
        ...     def __init__(self) -> None:
        ...         super().__init__()
        ...         self.net = torch.nn.Linear(2, 2)
        ...
        ...     def forward(self, x: torch.Tensor) -> SimpleNamespace:
        ...         return SimpleNamespace(loss=(self.net(x) - x).pow(2).mean())
        >>> data = torch.utils.data.TensorDataset(torch.randn(8, 2), torch.zeros(8))
        >>> config = PretrainConfig(epochs=2, batch_size=4, warmup_epochs=1)
        >>> history = pretrain(Toy(), data, config, context=DistributedContext())
        >>> [record["epoch"] for record in history]
        [0, 1]
    """
    seed_everything(config.seed, context.rank)
    device = context.device
    model.to(device)
    batches = _EpochLoader(
        dataset,
        batch_size=config.batch_size,
        seed=config.seed,
        num_workers=config.num_workers,
        context=context,
    )
    optimizer = torch.optim.AdamW(
        param_groups(model, lr=config.lr, weight_decay=config.weight_decay),
        lr=config.lr,
        betas=config.betas,
    )
    scheduler = WarmupCosineScheduler(
        optimizer,
        base_lr=config.lr,
        min_lr=config.min_lr,
        warmup_steps=config.warmup_epochs * len(batches),
        total_steps=config.epochs * len(batches),
    )
    start = 0
    history: list[dict[str, float]] = []
    if resume is not None:
        start, history = _resume(resume, model, optimizer, scheduler, context, model_config)
    train_model = _wrap(model, context, compile=config.compile)
    parameters = [p for p in model.parameters() if p.requires_grad]
    for epoch in range(start, config.epochs):
        model.train()
        total = torch.zeros((), device=device)
        for x, _ in progress(
            batches.epoch(epoch),
            total=len(batches),
            desc=f"pretrain {epoch}",
            enabled=context.is_main,
        ):
            with _autocast(device, config.amp):
                loss = train_model(x.to(device, non_blocking=True)).loss
            _optimise(loss, parameters, optimizer, scheduler, config.grad_clip, epoch)
            total += loss.detach().float()
        record: dict[str, float] = {
            "epoch": epoch,
            "loss": _mean_over_ranks(total / len(batches), context),
            "lr": max(scheduler.get_last_lr()),
        }
        history.append(record)
        if logger is not None and context.is_main:
            logger.log(record)
        if output_dir is not None:
            rng = _gather_rng_states(context)  # collective: every rank takes part
            if context.is_main:
                save_checkpoint(
                    Path(output_dir) / CHECKPOINT_NAME,
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "scaler": None,
                        "epoch": epoch,
                        "rng": rng,
                        "config": config.to_dict(),
                        "model_config": None if model_config is None else dict(model_config),
                        "history": history,
                    },
                )
    return history


@torch.no_grad()
def extract_features(
    encoder: nn.Module,
    dataset: SampleDataset,
    *,
    batch_size: int,
    context: DistributedContext,
    num_workers: int = 0,
) -> tuple[Tensor, Tensor]:
    """Runs ``encoder.forward_features`` over a dataset in eval mode, in dataset order.

    Under DDP each rank encodes samples ``rank, rank + R, …`` and the results are all-gathered,
    so every rank returns the whole set, with no duplicates. The encoder's train/eval mode is
    restored afterwards.

    Args:
        encoder: Has ``forward_features(x) -> (B, D)``.
        dataset: Yields ``(x, label)``; ``N`` samples.
        batch_size: Samples per forward pass.
        context: From ``setup_distributed``.
        num_workers: DataLoader worker processes.

    Returns:
        ``features`` float32 ``(N, D)`` and ``labels`` int64 ``(N,)``, both on the CPU.

    Examples:
        >>> from skelmask.training import DistributedContext, extract_features
        >>> encoder = torch.nn.Linear(3, 2)
        >>> encoder.forward_features = encoder.forward
        >>> data = torch.utils.data.TensorDataset(torch.randn(5, 3), torch.arange(5))
        >>> features, labels = extract_features(
        ...     encoder, data, batch_size=2, context=DistributedContext()
        ... )
        >>> features.shape, labels.tolist()
        (torch.Size([5, 2]), [0, 1, 2, 3, 4])
    """
    loader, size = _shard_loader(dataset, batch_size, num_workers, context)
    was_training = encoder.training
    encoder.to(context.device).eval()
    features, labels = [], []
    for x, y in progress(loader, desc="features", enabled=context.is_main):
        features.append(_forward_features(encoder, x.to(context.device)).float())
        labels.append(y.to(context.device, torch.int64))
    encoder.train(was_training)
    return (
        _gather_strided(torch.cat(features), size, context).cpu(),
        _gather_strided(torch.cat(labels), size, context).cpu(),
    )


@torch.no_grad()
def knn_accuracy(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    *,
    k: int = 20,
    temperature: float = 0.1,
) -> float:
    """Weighted k-nearest-neighbour accuracy on cosine similarity (InstDisc/DINO protocol).

    Each test sample's ``k`` most cosine-similar training samples vote for their labels with
    weight ``exp(similarity / temperature)``; the class with the largest total wins (the lowest
    class index on ties).

    Args:
        train_features: ``(N, D)``.
        train_labels: ``(N,)`` integer.
        test_features: ``(M, D)``.
        test_labels: ``(M,)`` integer.
        k: Neighbours per test sample (capped at ``N``).
        temperature: Softness of the vote weights.

    Returns:
        Fraction of test samples classified correctly, in ``[0, 1]``.

    Raises:
        ValueError: On mismatched shapes, empty inputs or non-positive ``k``/``temperature``.

    Examples:
        >>> from skelmask.training import knn_accuracy
        >>> train = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> knn_accuracy(train, torch.tensor([0, 1]), train, torch.tensor([0, 1]), k=1)
        1.0
    """
    if train_features.ndim != 2 or test_features.ndim != 2:
        raise ValueError("train_features and test_features must be (N, D) and (M, D)")
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError("train and test features must have the same dimension D")
    if (
        train_labels.shape != train_features.shape[:1]
        or test_labels.shape != test_features.shape[:1]
    ):
        raise ValueError("labels must be (N,) and (M,), one per feature row")
    if len(train_features) == 0 or len(test_features) == 0:
        raise ValueError("knn_accuracy needs at least one training and one test sample")
    if k < 1 or temperature <= 0:
        raise ValueError(
            f"k must be >= 1 and temperature > 0, got k={k}, temperature={temperature}"
        )
    train = F.normalize(train_features.float(), dim=1)
    test = F.normalize(test_features.float(), dim=1).to(train.device)
    train_labels = train_labels.to(train.device, torch.int64)
    test_labels = test_labels.to(train.device, torch.int64)
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    k = min(k, len(train))
    correct = 0
    # Chunks bound the (chunk, N) similarity matrix for large training sets.
    for start in range(0, len(test), 1024):
        similarity, neighbours = (test[start : start + 1024] @ train.T).topk(k, dim=1)
        votes = torch.zeros(len(similarity), num_classes, device=train.device)
        votes.scatter_add_(1, train_labels[neighbours], (similarity / temperature).exp())
        correct += int((votes.argmax(dim=1) == test_labels[start : start + 1024]).sum())
    return correct / len(test)


def _accuracy(
    predict: Callable[[Tensor], Tensor],
    dataset: SampleDataset,
    *,
    batch_size: int,
    num_workers: int,
    amp: bool,
    context: DistributedContext,
) -> float:
    """Exact accuracy over a dataset sharded across ranks (each sample counted once)."""
    loader, _ = _shard_loader(dataset, batch_size, num_workers, context)
    counts = torch.zeros(2, dtype=torch.int64, device=context.device)
    with torch.no_grad():
        for x, y in progress(loader, desc="test", enabled=context.is_main):
            with _autocast(context.device, amp):
                logits = predict(x.to(context.device))
            counts[0] += (logits.argmax(dim=1) == y.to(context.device)).sum()
            counts[1] += len(y)
    if context.world_size > 1:
        dist.all_reduce(counts)
    return int(counts[0]) / int(counts[1])


def _train_and_report(
    *,
    forward: Callable[[Tensor], Tensor],
    predict: Callable[[Tensor], Tensor],
    set_training: Callable[[bool], object],
    parameters: Sequence[Tensor],
    optimizer: Optimizer,
    scheduler: WarmupCosineScheduler,
    batches: _EpochLoader,
    test: SampleDataset,
    criterion: nn.Module,
    epochs: int,
    batch_size: int,
    num_workers: int,
    grad_clip: float | None,
    amp: bool,
    context: DistributedContext,
    logger: MetricLogger | None,
    name: str,
) -> EvalResult:
    """Supervised epochs, each followed by a test evaluation that is only recorded."""
    history: list[dict[str, float]] = []
    for epoch in range(epochs):
        set_training(True)
        total = torch.zeros((), device=context.device)
        for x, y in progress(
            batches.epoch(epoch),
            total=len(batches),
            desc=f"{name} {epoch}",
            enabled=context.is_main,
        ):
            with _autocast(context.device, amp):
                logits = forward(x.to(context.device, non_blocking=True))
            loss = criterion(logits.float(), y.to(context.device, non_blocking=True))
            _optimise(loss, parameters, optimizer, scheduler, grad_clip, epoch)
            total += loss.detach()
        set_training(False)
        record: dict[str, float] = {
            "epoch": epoch,
            "loss": _mean_over_ranks(total / len(batches), context),
            "lr": max(scheduler.get_last_lr()),
            "test_accuracy": _accuracy(
                predict,
                test,
                batch_size=batch_size,
                num_workers=num_workers,
                amp=amp,
                context=context,
            ),
        }
        history.append(record)
        if logger is not None and context.is_main:
            logger.log(record)
    result = EvalResult.from_history(history)
    if logger is not None and context.is_main:
        logger.log(
            {
                "protocol": name,
                "last_epoch_test_accuracy": result.last_accuracy,
                "best_epoch": result.best_epoch,
                "best_epoch_test_accuracy_reference_only": result.best_accuracy,
            }
        )
    return result


def linear_probe(
    encoder: nn.Module,
    train: SampleDataset,
    test: SampleDataset,
    num_classes: int,
    config: ProbeConfig,
    *,
    context: DistributedContext,
    logger: MetricLogger | None = None,
) -> EvalResult:
    """Trains a linear classifier on a frozen encoder (MAMP/HA-CM protocol, ``hacm.md`` §4.2).

    The encoder runs in eval mode without gradients (its parameters are not touched, and its
    train/eval mode is restored at the end); the head is ``BatchNorm1d(D, affine=False)`` then
    ``Linear(D, num_classes)``, trained with SGD + momentum and a per-iteration cosine schedule
    from ``config.lr`` to 0. Features are recomputed every epoch, so training augmentation of the
    dataset applies. The test split is evaluated after every epoch and never used to choose
    anything.

    Args:
        encoder: Has ``forward_features(x) -> (B, D)`` and ``embed_dim == D``.
        train: Yields ``(x, label)``.
        test: Yields ``(x, label)``.
        num_classes: Number of classes.
        config: Hyper-parameters; ``batch_size`` is per rank.
        context: From ``setup_distributed``.
        logger: Receives per-epoch records and a final summary (rank 0 only).

    Returns:
        Last-epoch test accuracy, and the best epoch's (labelled, for reference).

    Examples:
        >>> from skelmask.training import DistributedContext, ProbeConfig, linear_probe
        >>> encoder = torch.nn.Identity()
        >>> encoder.forward_features, encoder.embed_dim = encoder.forward, 2
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).repeat(4, 1)
        >>> data = torch.utils.data.TensorDataset(x, torch.tensor([0, 1]).repeat(4))
        >>> config = ProbeConfig(epochs=5, batch_size=4)
        >>> linear_probe(encoder, data, data, 2, config, context=DistributedContext()).last_accuracy
        1.0
    """
    seed_everything(config.seed, context.rank)
    device = context.device
    was_training = encoder.training
    encoder.to(device).eval()
    embed_dim = int(cast(int, encoder.embed_dim))
    linear = nn.Linear(embed_dim, num_classes)
    # MAE's linear-probe initialisation: small weights so the BN-normalised logits start near 0.
    nn.init.normal_(linear.weight, std=0.01)
    nn.init.zeros_(linear.bias)
    head = nn.Sequential(nn.BatchNorm1d(embed_dim, affine=False), linear).to(device)
    train_head = _wrap(head, context)
    optimizer = torch.optim.SGD(
        head.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    batches = _EpochLoader(
        train,
        batch_size=config.batch_size,
        seed=config.seed,
        num_workers=config.num_workers,
        context=context,
    )
    scheduler = WarmupCosineScheduler(
        optimizer,
        base_lr=config.lr,
        min_lr=0.0,
        warmup_steps=0,
        total_steps=config.epochs * len(batches),
    )

    def forward(x: Tensor) -> Tensor:
        with torch.no_grad():
            features = _forward_features(encoder, x)
        return cast(Tensor, train_head(features.float()))

    def predict(x: Tensor) -> Tensor:
        return cast(Tensor, head(_forward_features(encoder, x).float()))

    result = _train_and_report(
        forward=forward,
        predict=predict,
        set_training=head.train,
        parameters=list(head.parameters()),
        optimizer=optimizer,
        scheduler=scheduler,
        batches=batches,
        test=test,
        criterion=nn.CrossEntropyLoss(),
        epochs=config.epochs,
        batch_size=config.batch_size,
        num_workers=config.num_workers,
        grad_clip=None,
        amp=False,
        context=context,
        logger=logger,
        name="linear_probe",
    )
    encoder.train(was_training)
    return result


def _labels_of(dataset: SampleDataset) -> np.ndarray:
    """Labels without augmenting: ``dataset.arrays.labels`` if present (``SkeletonDataset``)."""
    arrays = getattr(dataset, "arrays", None)
    if arrays is not None:
        return np.asarray(arrays.labels)
    return np.array([int(dataset[i][1]) for i in range(len(cast(Sized, dataset)))])


def finetune(
    classifier: nn.Module,
    train: SampleDataset,
    test: SampleDataset,
    config: FinetuneConfig,
    *,
    context: DistributedContext,
    logger: MetricLogger | None = None,
) -> EvalResult:
    """End-to-end fine-tuning, or semi-supervised training on a labelled subset (``hacm.md`` §4.3).

    AdamW with the same weight-decay exemptions as pre-training and BEiT layer-wise lr decay
    (``config.layer_decay``; it needs a submodule with ``layer_id``, i.e. the encoder),
    per-iteration warm-up + cosine to ``min_lr``, label-smoothed cross-entropy, optional
    gradient clipping, bf16 autocast on CUDA, DDP under ``torchrun``. With
    ``config.labelled_ratio`` the training set is first cut to
    ``labelled_subset(labels, ratio, config.seed)``, identical on every rank (fixes B31). The
    test split is evaluated after every epoch and never used to choose anything.

    Args:
        classifier: ``classifier(x)`` returns logits ``(B, num_classes)``; trained in place.
        train: Yields ``(x, label)``; labels are read from ``train.arrays.labels`` when present.
        test: Yields ``(x, label)``.
        config: Hyper-parameters; ``batch_size`` is per rank.
        context: From ``setup_distributed``.
        logger: Receives per-epoch records and a final summary (rank 0 only).

    Returns:
        Last-epoch test accuracy, and the best epoch's (labelled, for reference).

    Examples:
        >>> from skelmask.training import DistributedContext, FinetuneConfig, finetune
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).repeat(4, 1)
        >>> data = torch.utils.data.TensorDataset(x, torch.tensor([0, 1]).repeat(4))
        >>> config = FinetuneConfig(
        ...     epochs=3, batch_size=4, lr=0.1, warmup_epochs=0, layer_decay=None
        ... )
        >>> _ = torch.manual_seed(0)  # the classifier's initial weights
        >>> finetune(
        ...     torch.nn.Linear(2, 2), data, data, config, context=DistributedContext()
        ... ).last_accuracy
        1.0
    """
    seed_everything(config.seed, context.rank)
    if config.labelled_ratio is not None:
        chosen = labelled_subset(_labels_of(train), config.labelled_ratio, config.seed)
        train = Subset(train, chosen.tolist())
    classifier.to(context.device)
    optimizer = torch.optim.AdamW(
        param_groups(
            classifier,
            lr=config.lr,
            weight_decay=config.weight_decay,
            layer_decay=config.layer_decay,
        ),
        lr=config.lr,
    )
    batches = _EpochLoader(
        train,
        batch_size=config.batch_size,
        seed=config.seed,
        num_workers=config.num_workers,
        context=context,
    )
    scheduler = WarmupCosineScheduler(
        optimizer,
        base_lr=config.lr,
        min_lr=config.min_lr,
        warmup_steps=config.warmup_epochs * len(batches),
        total_steps=config.epochs * len(batches),
    )
    train_classifier = _wrap(classifier, context)
    return _train_and_report(
        forward=train_classifier,
        predict=classifier,
        set_training=classifier.train,
        parameters=[p for p in classifier.parameters() if p.requires_grad],
        optimizer=optimizer,
        scheduler=scheduler,
        batches=batches,
        test=test,
        criterion=nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
        epochs=config.epochs,
        batch_size=config.batch_size,
        num_workers=config.num_workers,
        grad_clip=config.grad_clip,
        amp=config.amp,
        context=context,
        logger=logger,
        name="finetune",
    )


def labelled_subset(labels: np.ndarray | Tensor, ratio: float, seed: int) -> np.ndarray:
    """Class-balanced labelled subset for semi-supervised training (fixes ``hacm.md`` B31).

    From each class with ``n_c`` samples, ``max(1, round(ratio · n_c))`` indices are drawn
    without replacement by ``numpy.random.default_rng(seed)``, classes in ascending order. The
    result depends only on ``(labels, ratio, seed)``: never on the rank, the global RNG or
    the process count, so every rank trains on the same subset and each trial seed gives its own.

    Args:
        labels: ``(N,)`` integer class labels.
        ratio: Fraction to keep per class, in ``(0, 1]``.
        seed: Trial seed.

    Returns:
        Sorted int64 indices into ``labels``.

    Raises:
        ValueError: If ``labels`` is not a non-empty 1-D array or ``ratio`` is outside ``(0, 1]``.

    Examples:
        >>> from skelmask.training import labelled_subset
        >>> labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2])
        >>> subset = labelled_subset(labels, 0.5, seed=0)
        >>> labels[subset].bincount().tolist()
        [2, 2, 1]
    """
    values = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {values.shape}")
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(values):
        members = np.flatnonzero(values == label)
        count = max(1, round(ratio * len(members)))
        chosen.append(rng.choice(members, size=count, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)
