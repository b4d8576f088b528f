"""Learning-rate schedule and optimiser parameter groups (MAE/BEiT recipes)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from torch import nn
from torch.optim import Optimizer

__all__ = ["WarmupCosineScheduler", "param_groups", "warmup_cosine"]


def warmup_cosine(
    step: int, *, base_lr: float, min_lr: float, warmup_steps: int, total_steps: int
) -> float:
    """Learning rate at an iteration: linear warm-up from 0, then half-cosine to ``min_lr``.

    ``lr = base_lr · step / warmup_steps`` during warm-up, then
    ``min_lr + (base_lr - min_lr) · (1 + cos(π · (step - warmup_steps) / (total_steps -
    warmup_steps))) / 2``, held at ``min_lr`` past ``total_steps`` (MAE's ``lr_sched``).

    Args:
        step: Iteration index, from 0.
        base_lr: Peak learning rate.
        min_lr: Final learning rate.
        warmup_steps: Iterations of warm-up.
        total_steps: Iterations in the whole run.

    Returns:
        The learning rate.

    Examples:
        >>> from skelmask.training import warmup_cosine
        >>> [
        ...     warmup_cosine(s, base_lr=1.0, min_lr=0.0, warmup_steps=2, total_steps=4)
        ...     for s in range(5)
        ... ]
        [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / decay_steps, 1.0)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosineScheduler:
    """Sets every param group's lr to ``warmup_cosine(step) · group["lr_scale"]`` each iteration.

    Its only state is the iteration counter, so the schedule is a pure function of the
    configuration and the step: a resumed run with a longer ``total_steps`` follows the new
    schedule from where it stopped, and the state loads with ``weights_only=True``.

    Args:
        optimizer: Optimiser whose groups may carry an ``"lr_scale"`` (layer-wise lr decay).
        base_lr: Peak learning rate.
        min_lr: Final learning rate.
        warmup_steps: Iterations of warm-up.
        total_steps: Iterations in the whole run.

    Examples:
        >>> from skelmask.training import WarmupCosineScheduler
        >>> optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> scheduler = WarmupCosineScheduler(
        ...     optimizer, base_lr=1.0, min_lr=0.0, warmup_steps=2, total_steps=4
        ... )
        >>> scheduler.step()
        >>> scheduler.get_last_lr()
        [0.5]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        *,
        base_lr: float,
        min_lr: float,
        warmup_steps: int,
        total_steps: int,
    ) -> None:
        self.optimizer = optimizer
        self.schedule: Callable[[int], float] = lambda step: warmup_cosine(
            step,
            base_lr=base_lr,
            min_lr=min_lr,
            warmup_steps=warmup_steps,
            total_steps=total_steps,
        )
        self.last_step = 0
        self._apply()

    def _apply(self) -> None:
        lr = self.schedule(self.last_step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)

    def step(self) -> None:
        """Advances one iteration and sets the learning rates for the next one."""
        self.last_step += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        """Current learning rate of each param group."""
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, int]:
        """``{"last_step": int}``."""
        return {"last_step": self.last_step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restores the iteration counter and the learning rates that go with it."""
        self.last_step = int(state["last_step"])
        self._apply()


def _no_weight_decay_names(model: nn.Module) -> set[str]:
    """Full names listed by every submodule's ``no_weight_decay()``, prefixed by its path."""
    names: set[str] = set()
    for prefix, module in model.named_modules():
        method = getattr(module, "no_weight_decay", None)
        if callable(method):
            names.update(f"{prefix}.{name}" if prefix else name for name in method())
    return names


def _layer_ids(model: nn.Module) -> dict[str, int]:
    """BEiT layer index of every parameter from the (first) submodule with ``layer_id``.

    Parameters outside that submodule (a classification head) share the top layer's index, so
    they train at the full learning rate like BEiT's head.
    """
    found = [
        (prefix, module.layer_id)
        for prefix, module in model.named_modules()
        if callable(getattr(module, "layer_id", None))
    ]
    if not found:
        raise ValueError(
            "layer_decay needs a submodule with layer_id(name) (e.g. SkeletonEncoder); "
            f"{type(model).__name__} has none"
        )
    prefix, layer_id = found[0]
    start = f"{prefix}." if prefix else ""
    inner = {
        name: int(layer_id(name[len(start) :]))
        for name, _ in model.named_parameters()
        if name.startswith(start)
    }
    top = max(inner.values(), default=0)
    return {name: inner.get(name, top) for name, _ in model.named_parameters()}


def param_groups(
    model: nn.Module, *, lr: float, weight_decay: float, layer_decay: float | None = None
) -> list[dict[str, Any]]:
    """AdamW parameter groups with timm's weight-decay exemptions and BEiT layer-wise lr decay.

    Biases, every parameter with ``ndim <= 1`` (norm weights, scalars) and the names returned
    by any submodule's ``no_weight_decay()`` (embeddings, prefixed with the submodule's path) get
    no weight decay. With ``layer_decay``, the submodule that defines ``layer_id(name)`` (the
    encoder) assigns layer ``i``; the top layer ``n`` (and parameters outside the encoder, i.e.
    the head) keep ``lr``, and layer ``i`` gets ``lr · layer_decay ** (n - i)``. Frozen
    parameters are left out.

    Args:
        model: The module to optimise.
        lr: Base learning rate of the top layer.
        weight_decay: Decay of the decayed groups.
        layer_decay: Factor per layer; ``None`` for no layer-wise decay.

    Returns:
        Groups ``{"params", "param_names", "weight_decay", "lr", "lr_scale"}`` for
        ``torch.optim`` (``lr = lr · lr_scale``; ``WarmupCosineScheduler`` keeps that ratio).

    Raises:
        ValueError: If ``layer_decay`` is set but no submodule defines ``layer_id``.

    Examples:
        >>> from skelmask.training import param_groups
        >>> groups = param_groups(torch.nn.Linear(3, 2), lr=1e-3, weight_decay=0.05)
        >>> [(g["param_names"], g["weight_decay"]) for g in groups]
        [(['weight'], 0.05), (['bias'], 0.0)]
    """
    exempt = _no_weight_decay_names(model)
    layers = _layer_ids(model) if layer_decay is not None else {}
    top = max(layers.values(), default=0)
    groups: dict[tuple[bool, int], dict[str, Any]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        decay = not (parameter.ndim <= 1 or name.endswith(".bias") or name in exempt)
        layer = layers.get(name, top)
        scale = 1.0 if layer_decay is None else layer_decay ** (top - layer)
        group = groups.setdefault(
            (decay, layer),
            {
                "params": [],
                "param_names": [],
                "weight_decay": weight_decay if decay else 0.0,
                "lr": lr * scale,
                "lr_scale": scale,
            },
        )
        group["params"].append(parameter)
        group["param_names"].append(name)
    return list(groups.values())
