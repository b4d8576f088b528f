"""Evaluating an encoder: features, kNN accuracy, the linear probe, and supervised epochs.

The linear probe and fine-tuning (``skelmask.training.finetune``) train with ``Loop`` and test
after every epoch with ``supervised_epochs``: the test split is only ever reported, last epoch
first, and never used to choose anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from skelmask.training.config import ProbeConfig, check_config
from skelmask.training.dist import DistributedContext
from skelmask.training.logging import MetricLogger, progress
from skelmask.training.loop import (
    BatchLoss,
    Loop,
    LoopSettings,
    SampleDataset,
    autocast,
    forward_features,
    gather_strided,
    shard_loader,
    wrap,
)
from skelmask.training.seed import seed_everything

__all__ = [
    "EvalResult",
    "RawCoordinates",
    "extract_features",
    "knn_accuracy",
    "linear_probe",
    "supervised_epochs",
]


class RawCoordinates(nn.Module):
    """The identity "encoder" of the raw-coordinates baseline: a clip's flattened coordinates.

    A linear probe on it measures what the coordinates alone give, which a pretrained encoder
    should beat.

    Args:
        embed_dim: ``C·T·V·M`` of the clips it will see.

    Examples:
        >>> RawCoordinates(3 * 8 * 20).forward_features(torch.zeros(2, 3, 8, 20, 1)).shape
        torch.Size([2, 480])
    """

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C, T, V, M)`` → ``(N, C·T·V·M)``."""
        return x.flatten(1)


@dataclass
class EvalResult:
    """Test accuracy of a linear probe or fine-tuning run.

    ``last_accuracy`` is **the** result: the model after the final epoch, chosen without looking
    at the test split. ``best_accuracy``/``best_epoch`` are the maximum over epochs of the test
    accuracy; they are given for comparison with papers that report it (MAMP, HA-CM;
    ``docs/hacm.md``, row H15) and are optimistic, since picking them uses the test split.

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
    loader, size = shard_loader(dataset, batch_size, num_workers, context)
    was_training = encoder.training
    encoder.to(context.device).eval()
    features, labels = [], []
    for x, y in progress(loader, desc="features", enabled=context.is_main):
        features.append(forward_features(encoder, x.to(context.device)).float())
        labels.append(y.to(context.device, torch.int64))
    encoder.train(was_training)
    return (
        gather_strided(torch.cat(features), size, context).cpu(),
        gather_strided(torch.cat(labels), size, context).cpu(),
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


def supervised_epochs(
    loop: Loop,
    batch_loss: BatchLoss,
    predict: Callable[[Tensor], Tensor],
    trained: nn.Module,
    test: SampleDataset,
    logger: MetricLogger | None,
) -> EvalResult:
    """Runs every epoch of ``loop``, each followed by a test accuracy that is only recorded.

    Args:
        loop: The stage's loop; its ``name`` labels the records.
        batch_loss: The training loss of a batch (e.g. cross-entropy of the DDP-wrapped head).
        predict: ``(B, ...)`` → logits ``(B, num_classes)``, for testing.
        trained: Put in train mode for each epoch's steps and in eval mode for testing.
        test: Yields ``(x, label)``.
        logger: Receives per-epoch records and a final summary (rank 0 only).

    Returns:
        Last-epoch test accuracy, and the best epoch's (labelled, for reference).
    """
    context = loop.context
    history: list[dict[str, float]] = []
    for epoch in range(loop.settings.epochs):
        trained.train()
        record = loop.epoch(epoch, batch_loss)
        trained.eval()
        record["test_accuracy"] = _accuracy(predict, test, loop)
        history.append(record)
        if logger is not None and context.is_main:
            logger.log(record)
    result = EvalResult.from_history(history)
    if logger is not None and context.is_main:
        logger.log(
            {
                "protocol": loop.name,
                "last_epoch_test_accuracy": result.last_accuracy,
                "best_epoch": result.best_epoch,
                "best_epoch_test_accuracy_reference_only": result.best_accuracy,
            }
        )
    return result


def _accuracy(predict: Callable[[Tensor], Tensor], dataset: SampleDataset, loop: Loop) -> float:
    """Exact accuracy over a dataset sharded across ranks (each sample counted once)."""
    context, settings = loop.context, loop.settings
    loader, _ = shard_loader(dataset, settings.batch_size, settings.num_workers, context)
    counts = torch.zeros(2, dtype=torch.int64, device=context.device)
    with torch.no_grad():
        for x, y, *_ in progress(loader, desc="test", enabled=context.is_main):
            with autocast(context.device, settings.amp):
                logits = predict(x.to(context.device))
            counts[0] += (logits.argmax(dim=1) == y.to(context.device)).sum()
            counts[1] += len(y)
    if context.world_size > 1:
        dist.all_reduce(counts)
    return int(counts[0]) / int(counts[1])


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
    """Trains a linear classifier on a frozen encoder (MAMP/HA-CM protocol).

    The encoder runs in eval mode without gradients (its parameters are not touched, and its
    train/eval mode is restored at the end); the head is ``BatchNorm1d(D, affine=False)`` then
    ``Linear(D, num_classes)``, trained with SGD + momentum and a per-iteration cosine schedule
    from ``config.lr`` to 0. Training features are recomputed every epoch, so training
    augmentation of the dataset applies. The test split is encoded once (the encoder does not
    change; a test dataset that draws random augmentations is drawn once) and the head is
    tested on it after every epoch; it is never used to choose anything.

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

    Raises:
        TypeError: If ``config`` is not a ``ProbeConfig`` (a dict, say).
        ValueError: If ``num_classes < 2``.

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
    if num_classes < 2:
        raise ValueError(
            f"num_classes must be at least 2 (one class makes every accuracy 1.0), got {num_classes}"
        )
    check_config(config, ProbeConfig)
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
    train_head = wrap(head, context)
    optimizer = torch.optim.SGD(
        head.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    loop = Loop(
        train,
        optimizer,
        list(head.parameters()),
        LoopSettings.of(config),
        context=context,
        name="linear_probe",
    )
    criterion = nn.CrossEntropyLoss()

    def batch_loss(x: Tensor, y: Tensor) -> Tensor:
        with torch.no_grad():
            features = forward_features(encoder, x)
        return cast(Tensor, criterion(train_head(features.float()).float(), y))

    # The encoder is frozen, so the test clips' features are the same after every epoch: encode
    # them once (on NTU-sized test splits that was a third of the probe's time) and test the head.
    test_features = TensorDataset(
        *extract_features(
            encoder,
            test,
            batch_size=config.batch_size,
            context=context,
            num_workers=config.num_workers,
        )
    )

    def predict(features: Tensor) -> Tensor:
        return cast(Tensor, head(features))

    result = supervised_epochs(loop, batch_loss, predict, head, test_features, logger)
    encoder.train(was_training)
    return result
