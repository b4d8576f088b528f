"""Global temporal attention masking (HA-CM's temporal criterion).

For every joint, the time patches attend to one another; a token's score is the attention it
*receives*. Tokens that many moments attend to are the representative ones, and HA-CM keeps them
visible.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange

from skelmask._checks import check_finite, check_token_grid
from skelmask.maskers.base import ScoreGuidedMasker
from skelmask.sampling import Direction
from skelmask.tokens import MaskResult

__all__ = ["GlobalAttentionMasker"]

# The usual LayerNorm epsilon; it also keeps constant (zero-variance) tokens finite.
_LAYER_NORM_EPS = 1e-5


class GlobalAttentionMasker(ScoreGuidedMasker):
    """Scores tokens by the temporal attention they receive, per joint (HA-CM's temporal branch).

    For each joint patch ``v`` (a column of the ``(B, Tp, Vp, D)`` grid) the ``Tp`` time patches
    attend to one another::

        P[b, v, t, u] = softmax_u(q[b, t, v] · k[b, u, v] / sqrt(D))    # rows = queries t
        score[b, u, v] = sum_t P[b, v, t, u]                           # attention u receives

    so a score lies in ``[0, Tp]``. Scores go through the shared sampler (``scores / (tau·max)``
    → softmax → Gumbel-top-k); by default high-score tokens preferentially stay **visible**, as
    in HA-CM.

    Where the attention comes from:

    * **Parameter-free (default).** Queries and keys are the tokens themselves after a
      LayerNorm without affine parameters, so ``q · k / sqrt(D)`` is ``sqrt(D)`` times the
      correlation of the two tokens. With queries equal to keys, a token's attention to itself
      is always its row's largest logit and says nothing about the other moments, so the
      diagonal is excluded by default (``include_self=False``); the score then counts how much
      the *other* time patches of the joint attend to a token.
    * **Supplied by the caller.** ``forward(..., attention=A)`` (and ``score``) take an
      attention map ``A`` of shape ``(B, Vp, Tp, Tp)``, rows = query time patches, each row a
      distribution over the key time patches (e.g. the temporal attention of an EMA teacher).
      It is used as given (``include_self`` does not apply) and carries no gradient.

    Inside a ``CrossMasker`` the masker only decides over its
    region (HA-CM: the even time patches). The attention is then restricted to the region:
    keys outside it are excluded (a supplied map is renormalised over the region's keys, which
    equals the softmax over those keys of the same logits) and only in-region queries are
    summed, so the even-patch branch attends among even patches only. Out-of-region tokens score
    0.

    Scores are computed in float32 with autocast disabled, from detached tokens, whatever the
    input dtype.

    Reference: Yin & Cao, "Spatial Hierarchy and Temporal Attention Guided Cross Masking for
    Self-supervised Skeleton-based Action Recognition", arXiv:2409.17951 (HA-CM).

    Differences from the official HA-CM code, on purpose:

    * logits are *divided* by ``sqrt(D)``, and the softmax runs over the keys, as in standard
      attention (the code multiplies by ``sqrt(D)`` and softmaxes over the joint axis: bug B9);
    * no query/key projections: the code's ``l1``/``l2`` linear layers never receive a gradient
      and stay at their random initialisation (B10); this masker has no parameters at all;
    * scores are returned in the canonical time-major order of the tokens they belong to, and
      ``mask_ratio``, ``temperature`` and ``direction`` are honoured (B5, B15).

    Args:
        mask_ratio: Fraction of tokens hidden, in (0, 1). HA-CM uses 0.9 per branch.
        temperature: ``tau`` of the shared sampler's normalisation (HA-CM hard-codes 0.9).
        direction: ``"keep_high"`` (HA-CM: high-score tokens stay visible) or ``"hide_high"``.
        include_self: Whether a token's attention to itself counts in the parameter-free mode.

    Raises:
        ValueError: If an argument is out of range, or at call time if ``attention`` has the
            wrong shape or is not finite.

    Examples:
        >>> masker = GlobalAttentionMasker(mask_ratio=0.9)
        >>> result = masker(torch.randn(2, 24, 18, 64))
        >>> result.ids_keep.shape, result.scores.shape
        (torch.Size([2, 43]), torch.Size([2, 432]))
        >>> teacher = torch.softmax(torch.randn(2, 18, 24, 24), dim=-1)  # (B, Vp, Tp, Tp)
        >>> masker(torch.randn(2, 24, 18, 64), attention=teacher).num_keep
        43
    """

    def __init__(
        self,
        mask_ratio: float = 0.9,
        *,
        temperature: float = 0.9,
        direction: Direction = "keep_high",
        include_self: bool = False,
    ) -> None:
        super().__init__(mask_ratio, temperature, direction)
        self.include_self = bool(include_self)

    def forward(
        self,
        tokens: torch.Tensor,
        *,
        coords: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        attention: torch.Tensor | None = None,
    ) -> MaskResult:
        """Decides which tokens of the grid are hidden.

        Args:
            tokens: Token grid ``(B, Tp, Vp, D)``; read, not modified.
            coords: Ignored (accepted for the masker contract).
            generator: Optional ``torch.Generator`` on the tokens' device (eager mode only).
            attention: Optional ``(B, Vp, Tp, Tp)`` attention map, rows = queries, each row a
                distribution over keys. None scores the tokens parameter-free.

        Returns:
            The mask result; ``scores`` ``(B, L)`` are the received attention.
        """
        return self._run(tokens, coords=coords, generator=generator, attention=attention)

    def _decision_scores(
        self,
        tokens: torch.Tensor,
        *,
        coords: torch.Tensor | None,
        region: torch.Tensor | None,
        **score_kwargs: Any,
    ) -> torch.Tensor:
        """Scores with the attention restricted to ``region`` (HA-CM's even-patch branch)."""
        return self.score(tokens, coords=coords, region=region, **score_kwargs)

    def score(
        self,
        tokens: torch.Tensor,
        *,
        coords: torch.Tensor | None = None,
        attention: torch.Tensor | None = None,
        region: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attention each token receives from the time patches of its joint.

        Args:
            tokens: Token grid ``(B, Tp, Vp, D)``.
            coords: Ignored.
            attention: Optional ``(B, Vp, Tp, Tp)`` attention map (see ``forward``).
            region: Optional bool ``(L,)`` time-major region; attention is restricted to it.

        Returns:
            Float32 ``(B, Tp, Vp)`` non-negative scores, detached; 0 outside ``region``.

        Raises:
            ValueError: If ``attention`` or ``region`` has the wrong shape, or ``attention`` is
                not finite.
        """
        batch, time_patches, joint_patches, width = check_token_grid(tokens)
        in_region = _region_grid(region, time_patches, joint_patches)
        # Autocast would otherwise run the matmul in bf16/fp16, where the softmax can saturate.
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            if attention is None:
                weights = self._token_attention(tokens, in_region, width)
            else:
                weights = _restrict_attention(
                    _check_attention(attention, batch, time_patches, joint_patches), in_region
                )
            if in_region is not None:
                weights = weights * rearrange(in_region, "t v -> v t 1")
            received = weights.sum(dim=-2)
        return rearrange(received, "b v t -> b t v")

    def _token_attention(
        self, tokens: torch.Tensor, in_region: torch.Tensor | None, width: int
    ) -> torch.Tensor:
        """Parameter-free attention ``(B, Vp, Tp, Tp)`` of the tokens, restricted to a region."""
        normed = F.layer_norm(tokens.detach().float(), (width,), eps=_LAYER_NORM_EPS)
        per_joint = rearrange(normed, "b t v d -> b v t d")
        logits = per_joint @ per_joint.transpose(-1, -2) / math.sqrt(width)
        time_patches = tokens.shape[1]
        allowed: torch.Tensor | None = None
        if in_region is not None:
            allowed = rearrange(in_region, "t v -> v 1 t")
        if not self.include_self:
            off_diagonal = ~torch.eye(time_patches, dtype=torch.bool, device=tokens.device)
            allowed = off_diagonal if allowed is None else allowed & off_diagonal
        if allowed is None:
            return torch.softmax(logits, dim=-1)
        # A finite fill, not -inf, so that a row with no allowed key gives no NaN; zeroing the
        # excluded keys afterwards removes the uniform weights such a row gets.
        logits = logits.masked_fill(~allowed, torch.finfo(torch.float32).min)
        return torch.softmax(logits, dim=-1) * allowed

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        return f"{super().extra_repr()}, include_self={self.include_self}"


def _region_grid(
    region: torch.Tensor | None, time_patches: int, joint_patches: int
) -> torch.Tensor | None:
    """A flat ``(L,)`` bool region as a ``(Tp, Vp)`` grid."""
    if region is None:
        return None
    if region.shape != (time_patches * joint_patches,):
        raise ValueError(
            f"region must be a bool tensor of shape (L,) = ({time_patches * joint_patches},) for "
            f"a {time_patches}×{joint_patches} grid, got {tuple(region.shape)}"
        )
    return region.view(time_patches, joint_patches)


def _check_attention(
    attention: torch.Tensor, batch: int, time_patches: int, joint_patches: int
) -> torch.Tensor:
    """Checks a caller-supplied attention map and returns it detached in float32."""
    if not isinstance(attention, torch.Tensor):
        raise TypeError(f"attention must be a torch.Tensor, got {type(attention).__name__}")
    expected = (batch, joint_patches, time_patches, time_patches)
    if tuple(attention.shape) != expected:
        raise ValueError(
            f"attention must have shape (B, Vp, Tp, Tp) = {expected} (rows = query time "
            f"patches, each a distribution over key time patches), got {tuple(attention.shape)}"
        )
    check_finite(attention, "attention")
    return attention.detach().float()


def _restrict_attention(weights: torch.Tensor, in_region: torch.Tensor | None) -> torch.Tensor:
    """Renormalises ``(B, Vp, Tp, Tp)`` attention over the keys inside the region."""
    if in_region is None:
        return weights
    kept = weights * rearrange(in_region, "t v -> v 1 t")
    total = kept.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
    return kept / total
