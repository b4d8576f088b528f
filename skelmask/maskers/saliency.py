"""Saliency-guided masking (MaskSem): tokens hidden or kept by a caller-supplied saliency map."""

from __future__ import annotations

import torch

from skelmask._checks import check_tensor
from skelmask.maskers.base import MaskContext, ScoreGuidedMasker
from skelmask.sampling import Direction

__all__ = ["SaliencyMasker"]


class SaliencyMasker(ScoreGuidedMasker):
    """Samples the mask from a per-token saliency map passed at call time.

    The saliency is any non-negative or signed per-token map the caller computes: Grad-CAM of a
    classifier (MaskSem), attention rollout, motion energy, a hand-made prior. It goes through
    the shared sampler (``saliency / (tau·max|saliency|)`` → softmax → Gumbel-top-k):
    ``"hide_high"`` hides salient tokens preferentially, so the encoder must infer them
    (MaskSem); ``"keep_high"`` keeps them visible preferentially. Every sample hides exactly
    ``round(mask_ratio · L)`` tokens. ``MaskResult.scores`` is the saliency, ``probs`` the
    softmax it was sampled from.

    Reference: MaskSem, IROS 2025: masked self-supervised skeleton learning guided by
    Grad-CAM saliency of relative motion, reconstructing velocity and acceleration (see
    ``docs/maskers/saliency.md`` for the recipe).

    Args:
        mask_ratio: Fraction of tokens hidden, in (0, 1).
        temperature: Positive temperature ``tau``; lower is greedier.
        direction: ``"hide_high"`` (MaskSem) or ``"keep_high"``.

    Call with ``saliency=`` ``(B, Tp, Vp)`` or flat time-major ``(B, L)``; it is detached and
    read in float32. A ``(B, Tp, Vp)`` map also gives the grid of flat tokens.

    Raises:
        ValueError: On invalid arguments, or at call time when ``saliency`` is missing, has the
            wrong shape or holds NaN/inf.

    Examples:
        >>> masker = SaliencyMasker(mask_ratio=0.9)
        >>> saliency = torch.rand(2, 30, 25)  # e.g. Grad-CAM per token
        >>> result = masker(torch.randn(2, 30, 25, 64), saliency=saliency)
        >>> result.num_keep, result.scores.shape
        (75, torch.Size([2, 750]))
        >>> masker(torch.randn(2, 750, 64), saliency=saliency).num_keep  # flat tokens
        75
    """

    def __init__(
        self,
        mask_ratio: float = 0.9,
        *,
        temperature: float = 1.0,
        direction: Direction = "hide_high",
    ) -> None:
        super().__init__(mask_ratio, temperature, direction)

    @property
    def call_inputs(self) -> frozenset[str]:
        """Reads ``saliency=`` ``(B, Tp, Vp)`` or ``(B, L)``."""
        return frozenset({"saliency"})

    def score(self, context: MaskContext) -> torch.Tensor:
        """The caller's saliency as a float32 ``(B, Tp, Vp)`` grid.

        Raises:
            ValueError: If ``context.saliency`` is missing or does not fit the token grid.
        """
        batch, time_patches, joint_patches, _ = context.tokens.shape
        saliency = context.saliency
        expected = (
            f"(B, Tp, Vp) = ({batch}, {time_patches}, {joint_patches}) or (B, L) = "
            f"({batch}, {time_patches * joint_patches})"
        )
        if saliency is None:
            raise ValueError(f"SaliencyMasker needs saliency= of shape {expected}")
        check_tensor(saliency, "saliency")
        shape = tuple(saliency.shape)
        if shape == (batch, time_patches * joint_patches):
            saliency = saliency.view(batch, time_patches, joint_patches)
        elif shape != (batch, time_patches, joint_patches):
            raise ValueError(f"saliency must have shape {expected}, got {shape}")
        return saliency.detach().float()
