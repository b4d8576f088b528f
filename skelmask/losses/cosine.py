"""Scaled cosine error: GraphMAE's reconstruction loss, SkeletonMAE's re-weighted cosine error.

References:
    - GraphMAE: Hou et al., "GraphMAE: Self-Supervised Masked Graph Autoencoders", KDD 2022
      (the scaled cosine error, SCE).
    - SkeletonMAE: Yan et al., ICCV 2023, arXiv:2307.08476 (Sec. 3.2, "re-weighted cosine
      error", β = 2). Its printed formula puts ``1/|V̄|`` inside the power; its stated intent,
      the mean similarity gap over masked joints, is GraphMAE's form, implemented here.
"""

from __future__ import annotations

import math
from typing import Literal, TypeAlias

import torch
from torch import nn

from skelmask._checks import check_tensor
from skelmask.losses._numerics import float32_maths, normalize_rows

__all__ = ["Reduction", "ScaledCosineError"]

Reduction: TypeAlias = Literal["mean", "sum", "none"]

_REDUCTIONS: tuple[Reduction, ...] = ("mean", "sum", "none")

# Zero rows normalise to zero instead of dividing by zero (cosine 0, error 1, finite gradient).
_NORM_EPS = 1e-8


class ScaledCosineError(nn.Module):
    """``mean_i (1 − cos(pred_i, target_i))^β`` over the scored rows.

    Rows are the last-axis vectors: every position of the leading axes is one row (a joint of
    one frame, a token). ``β > 1`` down-weights rows that are already well reconstructed and
    concentrates the loss on the hard ones. The error is computed in float32 with autocast
    switched off inside; ``1 − cos`` is clamped at 0 so that rounding never feeds a negative base
    to the power, and the gradient at ``pred == target`` is finite (zero). Rows are normalised
    without overflow, so rows of 1e20 are scored like any other.

    What is checked: ``beta`` and ``reduction`` at construction; shapes and the mask's dtype on
    every call. Not checked: NaN or infinity in ``pred`` or ``target`` (a host synchronisation
    per step); they give a non-finite loss, which ``skelmask.training.pretrain`` stops on.

    Args:
        beta: Exponent ``β ≥ 1`` (GraphMAE and SkeletonMAE: 2).
        reduction: ``"mean"`` over the scored rows (0 when none is scored), ``"sum"``, or
            ``"none"`` for the per-row errors with unscored rows set to 0.

    Raises:
        ValueError: If ``beta`` is not a finite number ≥ 1 or ``reduction`` is unknown.

    Examples:
        >>> loss = ScaledCosineError(beta=2.0)
        >>> pred = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> target = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        >>> loss(pred, target)  # rows: (1 - 1)^2 = 0 and (1 - 0)^2 = 1
        tensor(0.5000)
        >>> loss(pred, target, mask=torch.tensor([False, True]))
        tensor(1.)
    """

    def __init__(self, beta: float = 2.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        value = float(beta)
        if not (math.isfinite(value) and value >= 1.0):
            raise ValueError(f"beta must be a finite number >= 1, got {beta!r}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {list(_REDUCTIONS)}, got {reduction!r}")
        self.beta = value
        self.reduction: Reduction = reduction

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scores the rows of ``pred`` against ``target``.

        Args:
            pred: ``(..., D)`` predictions, any float dtype.
            target: ``(..., D)`` targets, the shape of ``pred``.
            mask: Optional bool ``(...)`` (``pred.shape[:-1]``); True rows are scored (e.g. the
                hidden joints). None scores every row.

        Returns:
            Float32 scalar for ``"mean"``/``"sum"``; float32 ``(...)`` for ``"none"``.

        Raises:
            TypeError: If an input is not a ``torch.Tensor``.
            ValueError: If the shapes differ, ``pred`` has no feature axis (``D ≥ 1``) or
                ``mask`` has the wrong shape or dtype.
        """
        for name, value in (("pred", pred), ("target", target), ("mask", mask)):
            if value is not None:
                check_tensor(value, name)
        if pred.shape != target.shape:
            raise ValueError(
                f"pred and target must have the same shape (..., D), got {tuple(pred.shape)} "
                f"and {tuple(target.shape)}"
            )
        if pred.dim() < 1 or pred.shape[-1] == 0:
            raise ValueError(
                f"pred must have a non-empty last (feature) axis, got shape {tuple(pred.shape)}"
            )
        if mask is not None and (mask.dtype != torch.bool or mask.shape != pred.shape[:-1]):
            raise ValueError(
                f"mask must be a bool tensor of shape pred.shape[:-1] = {tuple(pred.shape[:-1])}, "
                f"got dtype {mask.dtype} and shape {tuple(mask.shape)}"
            )
        with float32_maths(pred.device):
            unit_pred = normalize_rows(pred.float(), eps=_NORM_EPS)
            cosine = (unit_pred * normalize_rows(target.float(), eps=_NORM_EPS)).sum(dim=-1)
            errors = (1.0 - cosine).clamp(min=0.0).pow(self.beta)
        if mask is not None:
            errors = errors * mask.to(errors.dtype)
        if self.reduction == "none":
            return errors
        total = errors.sum()
        if self.reduction == "sum":
            return total
        # Divide by a Python int or a device tensor: a tensor made from an int on the GPU would
        # be a blocking copy from the host every step.
        if mask is None:
            return total / max(errors.numel(), 1)
        return total / mask.sum().clamp(min=1)

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        return f"beta={self.beta}, reduction={self.reduction!r}"
