"""Uniform random masking (MAE) at token, joint (joint tube) or frame granularity."""

from __future__ import annotations

from typing import Literal

import torch

from skelmask.maskers.base import MaskContext, Masker, Priority
from skelmask.sampling import gumbel_noise, num_hidden_tokens

__all__ = ["Granularity", "RandomMasker"]

Granularity = Literal["token", "joint", "frame"]

_GRANULARITIES: tuple[Granularity, ...] = ("token", "joint", "frame")


class RandomMasker(Masker):
    """Hides a uniformly random subset of tokens, joints or frames.

    * ``"token"``: MAE's random masking (He et al., 2022) over the flat ``Tp·Vp`` tokens; hides
      ``round(mask_ratio·L)`` tokens.
    * ``"joint"``: joint tubes; the same ``round(mask_ratio·Vp)`` joint patches are hidden in
      every time patch (joint-level masking of Wu et al.'s SkeletonMAE; ``create_masker`` name
      ``"joint-tube"``). Not SLiM's semantic tubes (``SemanticTubeMasker``, name ``"tube"``),
      which cover runs of one body part's joints over runs of time.
    * ``"frame"``: ``round(mask_ratio·Tp)`` whole time patches are hidden (frame-level masking;
      ``create_masker`` name ``"frame"``).

    Counts are clamped so that at least one unit is hidden and one kept, so the share of tokens
    hidden is ``mask_ratio`` rounded to whole units (0.9 of 25 joints hides 23, 92 %; 0.9 of 2
    time patches hides 1, 50 %). Each sample draws its own subset. ``MaskResult.scores`` is
    None; ``probs`` is the uniform distribution for ``"token"`` and None for whole joints or
    frames. Inside a ``CrossMasker`` region the count is the branch's share, so ``"joint"`` and
    ``"frame"`` hide whole units of the region and cut at most one unit.

    Args:
        mask_ratio: Fraction hidden, in (0, 1).
        granularity: ``"token"``, ``"joint"`` or ``"frame"``.

    Raises:
        ValueError: If an argument is out of range, or at call time if the grid has fewer than
            two joints (``"joint"``) or time patches (``"frame"``).

    Token-level masking ignores the grid's shape, so flat tokens ``(B, L, D)`` need no
    ``grid_size`` (as in MAE's ``random_masking(x, mask_ratio)``).

    Examples:
        >>> masker = RandomMasker(mask_ratio=0.9)
        >>> result = masker(torch.randn(2, 30, 25, 256))
        >>> result.ids_keep.shape
        torch.Size([2, 75])
        >>> RandomMasker(0.4, granularity="joint")(torch.randn(2, 30, 25, 8)).num_hidden
        300
        >>> RandomMasker()(torch.randn(2, 750, 256), mask_ratio=0.8).num_keep  # flat tokens
        150
    """

    def __init__(self, mask_ratio: float = 0.9, granularity: Granularity = "token") -> None:
        super().__init__(mask_ratio)
        self.granularity = granularity

    @property
    def granularity(self) -> Granularity:
        """``"token"``, ``"joint"`` or ``"frame"``; checked whenever it is set."""
        return self._granularity

    @granularity.setter
    def granularity(self, value: Granularity) -> None:
        if value not in _GRANULARITIES:
            raise ValueError(f"granularity must be one of {list(_GRANULARITIES)}, got {value!r}")
        self._granularity: Granularity = value

    @property
    def grid_agnostic(self) -> bool:
        """Token-level masking ignores the grid's shape; joint and frame masking do not."""
        return self.granularity == "token"

    def num_hidden(self, grid_size: tuple[int, int], mask_ratio: float | None = None) -> int:
        """Tokens hidden per sample on a ``(Tp, Vp)`` grid (whole joints or frames)."""
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        time_patches, joint_patches = grid_size
        if self.granularity == "token":
            return num_hidden_tokens(time_patches * joint_patches, ratio)
        axis = "joint" if self.granularity == "joint" else "time"
        axis_len = joint_patches if self.granularity == "joint" else time_patches
        if axis_len < 2:
            raise ValueError(
                f"granularity={self.granularity!r} needs at least 2 {axis} patches, got {axis_len}"
            )
        units = num_hidden_tokens(axis_len, ratio)
        return units * (time_patches if self.granularity == "joint" else joint_patches)

    def priority(self, context: MaskContext) -> Priority:
        """Uniform random keys per token, joint patch or time patch."""
        batch, time_patches, joint_patches, _ = context.tokens.shape
        device = context.tokens.device
        if self.granularity == "token":
            shape = (batch, time_patches, joint_patches)
        elif self.granularity == "joint":
            shape = (batch, 1, joint_patches)
        else:
            shape = (batch, time_patches, 1)
        noise = gumbel_noise(shape, device=device, generator=context.generator)
        keys = noise.expand(batch, time_patches, joint_patches).reshape(batch, -1)
        probs = None
        if self.granularity == "token":
            probs = _uniform(context, keys)
        return Priority(keys=keys, probs=probs)

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        return f"mask_ratio={self.mask_ratio}, granularity={self.granularity!r}"


def _uniform(context: MaskContext, keys: torch.Tensor) -> torch.Tensor:
    """The uniform distribution over the region (or the grid), float32 ``(B, L)``."""
    region = context.region
    if region is None:
        return torch.full(keys.shape, 1.0 / keys.shape[1], device=keys.device)
    weights = region.mask.to(torch.float32) / region.size
    return weights.expand(keys.shape)
