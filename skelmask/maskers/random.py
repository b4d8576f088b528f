"""Uniform random masking (MAE) at token, joint ("tube") or frame granularity."""

from __future__ import annotations

from typing import Literal

import torch

from skelmask.maskers.base import MaskDecision, Masker
from skelmask.sampling import gumbel_topk, num_hidden_tokens, sample_hidden

__all__ = ["Granularity", "RandomMasker"]

Granularity = Literal["token", "joint", "frame"]

_GRANULARITIES: tuple[Granularity, ...] = ("token", "joint", "frame")


class RandomMasker(Masker):
    """Hides a uniformly random subset of tokens, joints or frames.

    * ``"token"``: MAE's random masking (He et al., 2022) over the flat ``Tp·Vp`` tokens; hides
      ``round(mask_ratio·L)`` tokens.
    * ``"joint"``: "tube" masking; the same ``round(mask_ratio·Vp)`` joint patches are hidden in
      every time patch (joint-level masking of Wu et al.'s SkeletonMAE).
    * ``"frame"``: ``round(mask_ratio·Tp)`` whole time patches are hidden (frame-level masking).

    Counts are clamped so that at least one unit is hidden and one kept. Each sample draws its
    own subset. ``MaskResult.scores`` is None; ``probs`` is the uniform distribution.

    Args:
        mask_ratio: Fraction hidden, in (0, 1).
        granularity: ``"token"``, ``"joint"`` or ``"frame"``.

    Raises:
        ValueError: If an argument is out of range, or at call time if the grid has fewer than
            two joints (``"joint"``) or time patches (``"frame"``).

    Examples:
        >>> masker = RandomMasker(mask_ratio=0.9)
        >>> result = masker(torch.randn(2, 30, 25, 256))
        >>> result.ids_keep.shape
        torch.Size([2, 75])
        >>> RandomMasker(0.4, granularity="joint")(torch.randn(2, 30, 25, 8)).num_hidden
        300
    """

    def __init__(self, mask_ratio: float = 0.9, granularity: Granularity = "token") -> None:
        super().__init__(mask_ratio)
        if granularity not in _GRANULARITIES:
            raise ValueError(
                f"granularity must be one of {list(_GRANULARITIES)}, got {granularity!r}"
            )
        self.granularity: Granularity = granularity

    def num_hidden(self, grid_size: tuple[int, int]) -> int:
        """Tokens hidden per sample on a ``(Tp, Vp)`` grid."""
        time_patches, joint_patches = grid_size
        if self.granularity == "token":
            return num_hidden_tokens(time_patches * joint_patches, self.mask_ratio)
        return self._hidden_units(grid_size) * (
            time_patches if self.granularity == "joint" else joint_patches
        )

    def _hidden_units(self, grid_size: tuple[int, int]) -> int:
        """Whole joints (``"joint"``) or time patches (``"frame"``) hidden per sample."""
        axis = "joint" if self.granularity == "joint" else "time"
        axis_len = grid_size[1] if self.granularity == "joint" else grid_size[0]
        if axis_len < 2:
            raise ValueError(
                f"granularity={self.granularity!r} needs at least 2 {axis} patches, got {axis_len}"
            )
        return num_hidden_tokens(axis_len, self.mask_ratio)

    def decide(
        self,
        tokens: torch.Tensor,
        *,
        coords: torch.Tensor | None,
        generator: torch.Generator | None,
        region: torch.Tensor | None,
        num_hidden: int,
        region_size: int | None = None,
    ) -> MaskDecision:
        """Draws the hidden tokens uniformly (see ``Masker.decide``)."""
        batch, time_patches, joint_patches, _ = tokens.shape
        if self.granularity == "token":
            uniform = torch.zeros(batch, time_patches * joint_patches, device=tokens.device)
            hidden, probs = sample_hidden(
                uniform,
                num_hidden,
                temperature=1.0,
                direction="hide_high",
                region=region,
                region_size=region_size,
                generator=generator,
            )
            return MaskDecision(hidden=hidden, probs=probs)
        if region is not None:
            raise ValueError(
                f"granularity={self.granularity!r} hides whole joints or frames and cannot mask "
                "inside a region of the grid; use granularity='token' inside a CrossMasker"
            )
        axis_len = joint_patches if self.granularity == "joint" else time_patches
        hidden_units = self._hidden_units((time_patches, joint_patches))
        chosen = gumbel_topk(
            torch.zeros(batch, axis_len, device=tokens.device), hidden_units, generator=generator
        )
        unit_hidden = torch.zeros(batch, axis_len, dtype=torch.bool, device=tokens.device)
        unit_hidden.scatter_(1, chosen, True)
        if self.granularity == "joint":
            grid = unit_hidden.unsqueeze(1).expand(batch, time_patches, joint_patches)
        else:
            grid = unit_hidden.unsqueeze(2).expand(batch, time_patches, joint_patches)
        hidden = grid.reshape(batch, time_patches * joint_patches)
        probs = torch.full(hidden.shape, 1.0 / hidden.shape[1], device=tokens.device)
        return MaskDecision(hidden=hidden, probs=probs)

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        return f"mask_ratio={self.mask_ratio}, granularity={self.granularity!r}"
