"""Masked-autoencoder pre-training with checkpoints after every epoch and exact resume."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from skelmask.training.checkpoint import load_weights, save_checkpoint
from skelmask.training.config import PretrainConfig, check_config
from skelmask.training.dist import DistributedContext
from skelmask.training.logging import MetricLogger
from skelmask.training.loop import Loop, LoopSettings, SampleDataset, wrap
from skelmask.training.schedule import param_groups
from skelmask.training.seed import rng_state, seed_everything, set_rng_state

__all__ = ["CHECKPOINT_NAME", "pretrain"]

CHECKPOINT_NAME = "checkpoint-last.pt"
"""File name of the checkpoint ``pretrain`` rewrites after every epoch."""

_RESUME_KEYS = ("model", "optimizer", "scheduler", "epoch", "rng", "config", "history")


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
        TypeError: If ``config`` is not a ``PretrainConfig`` (a dict, say).
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
    check_config(config, PretrainConfig)
    seed_everything(config.seed, context.rank)
    model.to(context.device)
    optimizer = torch.optim.AdamW(
        param_groups(model, lr=config.lr, weight_decay=config.weight_decay),
        lr=config.lr,
        betas=config.betas,
    )
    parameters = [p for p in model.parameters() if p.requires_grad]
    loop = Loop(
        dataset, optimizer, parameters, LoopSettings.of(config), context=context, name="pretrain"
    )
    start = 0
    history: list[dict[str, float]] = []
    if resume is not None:
        start, history = _resume(resume, model, loop, model_config)
    train_model = wrap(model, context, compile=config.compile)
    for epoch in range(start, config.epochs):
        model.train()
        record = loop.epoch(epoch, lambda x, _: train_model(x).loss)
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
                        "scheduler": loop.scheduler.state_dict(),
                        "scaler": None,
                        "epoch": epoch,
                        "rng": rng,
                        "config": config.to_dict(),
                        "model_config": None if model_config is None else dict(model_config),
                        "history": history,
                    },
                )
    return history


def _gather_rng_states(context: DistributedContext) -> list[dict[str, Any]]:
    """Every rank's RNG state, in rank order (ranks draw different masks)."""
    state = rng_state()
    if context.world_size == 1:
        return [state]
    states: list[Any] = [None] * context.world_size
    dist.all_gather_object(states, state)
    return states


def _resume(
    path: Path, model: nn.Module, loop: Loop, model_config: Mapping[str, Any] | None
) -> tuple[int, list[dict[str, float]]]:
    """Loads a ``pretrain`` checkpoint; returns the next epoch and the history so far."""
    state = load_weights(model, path, model_config=model_config, required=_RESUME_KEYS)
    loop.optimizer.load_state_dict(state["optimizer"])
    loop.scheduler.load_state_dict(state["scheduler"])
    rng, context = state["rng"], loop.context
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
