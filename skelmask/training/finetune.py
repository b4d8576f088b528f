"""End-to-end fine-tuning and semi-supervised training on a class-balanced labelled subset."""

from __future__ import annotations

from collections.abc import Sized
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Subset

from skelmask.training.config import FinetuneConfig, check_config
from skelmask.training.dist import DistributedContext
from skelmask.training.evaluate import EvalResult, supervised_epochs
from skelmask.training.logging import MetricLogger
from skelmask.training.loop import Loop, LoopSettings, SampleDataset, wrap
from skelmask.training.schedule import param_groups
from skelmask.training.seed import seed_everything

__all__ = ["finetune", "labelled_subset"]


def finetune(
    classifier: nn.Module,
    train: SampleDataset,
    test: SampleDataset,
    config: FinetuneConfig,
    *,
    context: DistributedContext,
    logger: MetricLogger | None = None,
) -> EvalResult:
    """End-to-end fine-tuning, or semi-supervised training on a labelled subset (MAMP/HA-CM protocol).

    AdamW with the same weight-decay exemptions as pre-training and BEiT layer-wise lr decay
    (``config.layer_decay``; it needs a submodule with ``layer_id``, i.e. the encoder),
    per-iteration warm-up + cosine to ``min_lr``, label-smoothed cross-entropy, optional
    gradient clipping, bf16 autocast on CUDA, DDP under ``torchrun``. With
    ``config.labelled_ratio`` the training set is first cut to
    ``labelled_subset(labels, ratio, config.seed)``, identical on every rank (``docs/hacm.md``, row H14). The
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

    Raises:
        TypeError: If ``config`` is not a ``FinetuneConfig`` (a dict, say).

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
    check_config(config, FinetuneConfig)
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
    parameters = [p for p in classifier.parameters() if p.requires_grad]
    loop = Loop(
        train, optimizer, parameters, LoopSettings.of(config), context=context, name="finetune"
    )
    train_classifier = wrap(classifier, context)
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def batch_loss(x: Tensor, y: Tensor) -> Tensor:
        return cast(Tensor, criterion(train_classifier(x).float(), y))

    return supervised_epochs(loop, batch_loss, classifier, classifier, test, logger)


def _labels_of(dataset: SampleDataset) -> np.ndarray:
    """Labels without augmenting: ``dataset.arrays.labels`` if present (``SkeletonDataset``)."""
    arrays = getattr(dataset, "arrays", None)
    if arrays is not None:
        return np.asarray(arrays.labels)
    return np.array([int(dataset[i][1]) for i in range(len(cast(Sized, dataset)))])


def labelled_subset(labels: np.ndarray | Tensor, ratio: float, seed: int) -> np.ndarray:
    """Class-balanced labelled subset for semi-supervised training (``docs/hacm.md``, row H14).

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
