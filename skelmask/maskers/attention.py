"""Global temporal attention masking (HA-CM's temporal criterion).

For every joint, the time patches attend to one another; a token's score is the attention it
*receives*. Tokens that many moments attend to are the representative ones, and HA-CM keeps them
visible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange

from skelmask._checks import check_finite, check_flags, check_tensor
from skelmask.maskers.base import MaskContext, ScoreGuidedMasker
from skelmask.sampling import Direction

__all__ = ["GlobalAttentionMasker"]

# The usual LayerNorm epsilon; it also keeps constant (zero-variance) tokens finite.
_LAYER_NORM_EPS = 1e-5

# How far a supplied row may sum from 1: rows of a bf16 softmax of up to a few hundred keys
# stay within a few bf16 ULPs (2^-8) of 1.
_ROW_SUM_TOLERANCE = 2e-2


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
    * **Supplied by the caller.** ``masker(tokens, attention=A)`` takes an attention map ``A``
      of shape ``(B, Vp, Tp, Tp)``, rows = query time patches, each row a distribution over the
      key time patches (e.g. the temporal attention of an EMA teacher or of the model itself).
      Inside a ``CrossMasker`` branch made of whole time patches the map may instead cover only
      the branch's time patches, ``(B, Vp, n, n)`` in ascending order (HA-CM computes one over
      its even time patches). Rows must be distributions (non-negative, summing to 1 within
      2e-2); anything else is an error unless ``normalize_attention=True``, which clips
      negative weights to 0 and rescales each row to sum to 1. The map carries no gradient and
      ``include_self`` does not apply to it.

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

    Differences from the official HA-CM code, on purpose (``docs/hacm.md`` lists each):

    * logits are *divided* by ``sqrt(D)``, and the softmax runs over the keys, as in standard
      attention (the code multiplies by ``sqrt(D)`` and softmaxes over the joint axis);
    * no query/key projections: the code's ``l1``/``l2`` linear layers never receive a gradient
      and stay at their random initialisation; this masker has no parameters at all;
    * scores are returned in the canonical time-major order of the tokens they belong to, and
      ``mask_ratio``, ``temperature`` and ``direction`` are honoured.

    Args:
        mask_ratio: Fraction of tokens hidden, in (0, 1). HA-CM uses 0.9 per branch.
        temperature: ``tau`` of the shared sampler's normalisation (HA-CM hard-codes 0.9).
        direction: ``"keep_high"`` (HA-CM: high-score tokens stay visible) or ``"hide_high"``.
        include_self: Whether a token's attention to itself counts in the parameter-free mode.
        normalize_attention: Renormalise supplied maps whose rows are not distributions
            instead of rejecting them.

    Raises:
        TypeError: If ``include_self`` or ``normalize_attention`` is not a bool.
        ValueError: If an argument is out of range, or at call time if ``attention`` has the
            wrong shape, is not finite or (without ``normalize_attention``) its rows are not
            distributions.

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
        normalize_attention: bool = False,
    ) -> None:
        super().__init__(mask_ratio, temperature, direction)
        check_flags(include_self=include_self, normalize_attention=normalize_attention)
        self.include_self = bool(include_self)
        self.normalize_attention = bool(normalize_attention)

    @property
    def call_inputs(self) -> frozenset[str]:
        """Reads caller-supplied ``attention=`` maps."""
        return frozenset({"attention"})

    def score(self, context: MaskContext) -> torch.Tensor:
        """Attention each token receives from the time patches of its joint.

        Args:
            context: The call's inputs: the token grid ``(B, Tp, Vp, D)``, the optional
                ``attention`` map and the optional region.

        Returns:
            Float32 ``(B, Tp, Vp)`` non-negative scores, detached; 0 outside the region.

        Raises:
            ValueError: If ``attention`` has a wrong shape, is not finite, or its rows are not
                distributions (and ``normalize_attention`` is off).
        """
        tokens = context.tokens
        _, time_patches, joint_patches, width = tokens.shape
        region = context.region
        in_region = None if region is None else region.mask.view(time_patches, joint_patches)
        # Autocast would otherwise run the matmul in bf16/fp16, where the softmax can saturate.
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            if context.attention is None:
                weights = self._token_attention(tokens, in_region, width)
            else:
                supplied = self._supplied_attention(context.attention, context)
                weights = _restrict_attention(supplied, in_region)
            if in_region is not None:
                weights = weights * rearrange(in_region, "t v -> v t 1")
            received = weights.sum(dim=-2)
        return rearrange(received, "b v t -> b t v")

    def _supplied_attention(self, attention: torch.Tensor, context: MaskContext) -> torch.Tensor:
        """A caller's map, checked, as a whole-grid float32 ``(B, Vp, Tp, Tp)`` map."""
        check_tensor(attention, "attention")
        batch, time_patches, joint_patches, _ = context.tokens.shape
        region = context.region
        region_times = None if region is None else region.time_patches
        accepted = [time_patches]
        if region_times is not None:
            accepted.append(len(region_times))
        keys = int(attention.shape[-1]) if attention.dim() == 4 else -1
        if (
            tuple(attention.shape[:2]) != (batch, joint_patches)
            or keys not in accepted
            or (attention.dim() == 4 and attention.shape[2] != keys)
        ):
            over = f"(B, Vp, Tp, Tp) = ({batch}, {joint_patches}, {time_patches}, {time_patches})"
            if region_times is not None and len(region_times) != time_patches:
                n = len(region_times)
                over += f" or, over this branch's {n} time patches, ({batch}, {joint_patches}, {n}, {n})"
            raise ValueError(
                f"attention must have shape {over} (rows = query time patches, each a "
                f"distribution over key time patches), got {tuple(attention.shape)}"
            )
        check_finite(attention, "attention")
        weights = attention.detach().float()
        weights = self._as_distributions(weights)
        if keys == time_patches:
            return weights
        # A map over the region's time patches only: place it in the whole grid's map.
        assert region_times is not None  # keys is in `accepted`
        index = torch.tensor(region_times, device=weights.device)
        full = weights.new_zeros(batch, joint_patches, time_patches, time_patches)
        full[:, :, index.unsqueeze(1), index.unsqueeze(0)] = weights
        return full

    def _as_distributions(self, weights: torch.Tensor) -> torch.Tensor:
        """Checks (or, with ``normalize_attention``, makes) every row a distribution."""
        if self.normalize_attention:
            total = weights.clamp_min(0.0).sum(dim=-1, keepdim=True)
            return weights.clamp_min(0.0) / total.clamp_min(torch.finfo(torch.float32).tiny)
        if torch.compiler.is_compiling():
            return weights
        sums = weights.sum(dim=-1)
        # Rows of a bf16 softmax sum to 1 within a few bf16 ULPs (2^-8 each).
        valid = (weights >= 0).all() & ((sums - 1.0).abs() <= _ROW_SUM_TOLERANCE).all()
        if weights.device.type != "cpu":
            torch._assert_async(valid, "attention rows must be distributions over keys")
        elif not bool(valid):
            raise ValueError(
                "attention rows must be distributions over the key time patches (non-negative, "
                f"each row summing to 1); got row sums in [{float(sums.min()):.4g}, "
                f"{float(sums.max()):.4g}] and minimum {float(weights.min()):.4g}. Pass "
                "normalize_attention=True to renormalise such maps"
            )
        return weights

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
        return (
            f"{super().extra_repr()}, include_self={self.include_self}, "
            f"normalize_attention={self.normalize_attention}"
        )


def _restrict_attention(weights: torch.Tensor, in_region: torch.Tensor | None) -> torch.Tensor:
    """Renormalises ``(B, Vp, Tp, Tp)`` attention over the keys inside the region."""
    if in_region is None:
        return weights
    kept = weights * rearrange(in_region, "t v -> v 1 t")
    total = kept.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
    return kept / total
