"""The one sampler every masker shares.

A masker states a *priority* per token; ``hide_top`` hides the highest-priority tokens, exactly
as many as the ratio asks, inside an optional region. Score-guided maskers build their
priorities from scores (``score_priority``) in four steps:

1. **temperature**: ``logits = scores / (temperature · max|scores| + eps)``, the max taken per
   sample over the tokens being sampled (MAMP's ``tau · max`` normalisation; for non-negative
   scores it maps them into ``[0, 1/temperature]``, so the largest probability ratio between two
   tokens is at most ``exp(1/temperature)``);
2. **softmax** over those tokens;
3. **Gumbel noise** added to the log-probabilities;
4. **top-k**: the ``k`` largest perturbed values form a sample *without replacement* from the
   softmax (the Gumbel-top-k trick).

The ``direction`` says which set the top-k draws: ``"hide_high"`` draws the hidden set, so
high-score tokens are preferentially hidden (MAMP: salient motion is masked); ``"keep_high"``
draws the visible set, so high-score tokens preferentially stay visible (HA-CM).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from skelmask._checks import as_integer, check_mask_ratio, check_tensor

__all__ = [
    "Direction",
    "gumbel_noise",
    "hide_top",
    "num_hidden_tokens",
    "score_priority",
    "scores_to_logits",
]

Direction = Literal["hide_high", "keep_high"]

DIRECTIONS: tuple[Direction, ...] = ("hide_high", "keep_high")

# Keeps the division finite when every score of a sample is zero (e.g. a padded, motionless
# second body); such a sample then gets uniform logits.
_NORM_EPS = 1e-10


def check_direction(direction: str) -> Direction:
    """Returns ``direction`` after checking it is ``"hide_high"`` or ``"keep_high"``."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")
    return direction


def num_hidden_tokens(num_tokens: int, mask_ratio: float) -> int:
    """How many of ``num_tokens`` tokens a ratio hides.

    ``round(mask_ratio · num_tokens)`` (halves round up), clamped to ``[1, num_tokens - 1]`` so
    that at least one token is hidden and one stays visible. MAMP's ``int(L · (1 - ratio))``
    truncation keeps 74 of 750 tokens at ratio 0.9 through float error; this keeps 75.

    Args:
        num_tokens: Tokens available, at least 2.
        mask_ratio: Fraction to hide, in (0, 1).

    Returns:
        The number of hidden tokens.

    Raises:
        ValueError: If ``num_tokens`` is not an integer >= 2 or ``mask_ratio`` is not a number
            in (0, 1).
    """
    count = as_integer(num_tokens)
    if count is None or count < 2:
        raise ValueError(
            f"num_tokens must be an integer, at least 2 tokens to hide one and keep one, got "
            f"{num_tokens!r}"
        )
    num_tokens = count
    mask_ratio = check_mask_ratio(mask_ratio)
    hidden = math.floor(mask_ratio * num_tokens + 0.5)
    return min(max(hidden, 1), num_tokens - 1)


def scores_to_logits(
    scores: torch.Tensor, temperature: float, region: torch.Tensor | None = None
) -> torch.Tensor:
    """Applies the temperature normalisation; tokens outside ``region`` get ``-inf``.

    Args:
        scores: ``(B, L)`` scores, any float dtype.
        temperature: Positive temperature ``tau``.
        region: Optional bool ``(L,)``; only these tokens take part (others get ``-inf``), and
            the max is taken over them.

    Returns:
        Float32 ``(B, L)`` logits.
    """
    values = scores.float()
    magnitude = values.abs()
    if region is not None:
        magnitude = magnitude.masked_fill(~region, 0.0)
    scale = magnitude.amax(dim=1, keepdim=True) * temperature + _NORM_EPS
    logits = values / scale
    if region is not None:
        logits = logits.masked_fill(~region, float("-inf"))
    return logits


def gumbel_noise(
    shape: torch.Size | tuple[int, ...],
    *,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Standard Gumbel(0, 1) noise in float32, drawn from ``generator`` or the global RNG."""
    # Passing generator=None explicitly breaks torch.compile with dynamic shapes, so the
    # global-RNG call leaves the argument out.
    if generator is None:
        uniform = torch.rand(shape, device=device, dtype=torch.float32)
    else:
        uniform = torch.rand(shape, device=device, dtype=torch.float32, generator=generator)
    tiny = torch.finfo(torch.float32).tiny
    return -torch.log(-torch.log(uniform.clamp(min=tiny, max=1.0 - 1e-7)))


def score_priority(
    scores: torch.Tensor,
    *,
    temperature: float,
    direction: Direction,
    region: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turns scores into hiding priorities: temperature, softmax and Gumbel noise.

    ``hide_top`` of the result with ``k`` hidden tokens is a Gumbel-top-k sample: with
    ``"hide_high"`` the hidden set is drawn without replacement from the softmax; with
    ``"keep_high"`` the *visible* set is (the hidden tokens are the lowest perturbed
    log-probabilities).

    Args:
        scores: ``(B, L)`` finite per-token scores.
        temperature: Positive temperature ``tau`` of the normalisation.
        direction: ``"hide_high"`` or ``"keep_high"`` (see the module docstring).
        region: Optional bool ``(L,)``; only these tokens take part in the softmax.
        generator: Optional RNG for reproducible draws (eager mode only).

    Returns:
        ``(keys, probs)``: float32 ``(B, L)`` priorities (higher = hidden first; ``-inf`` or
        ``+inf`` outside the region, which ``hide_top`` excludes) and the float32 ``(B, L)``
        softmax the sample is drawn from (0 outside the region).
    """
    logits = scores_to_logits(scores, temperature, region)
    probs = torch.softmax(logits, dim=1)
    noise = gumbel_noise(logits.shape, device=logits.device, generator=generator)
    perturbed = torch.log_softmax(logits, dim=1) + noise
    keys = perturbed if direction == "hide_high" else -perturbed
    return keys, probs


def hide_top(
    keys: torch.Tensor, num_hidden: int, region: torch.Tensor | None = None
) -> torch.Tensor:
    """Hides the ``num_hidden`` highest-priority tokens of every row, inside ``region`` only.

    This is the one place where a mask is cut from priorities, so every masker hides an exact
    count.

    Args:
        keys: Float ``(B, L)`` priorities; higher is hidden first.
        num_hidden: Tokens to hide per row; fewer than the tokens in ``region``.
        region: Optional bool ``(L,)``; tokens outside it are never hidden.

    Returns:
        Bool ``(B, L)`` with exactly ``num_hidden`` True per row, all inside ``region``.

    Raises:
        TypeError: If ``keys`` is not a ``torch.Tensor``.
        ValueError: If ``keys`` is not ``(B, L)`` or ``num_hidden`` is not an integer in
            ``[0, L]``.
    """
    check_tensor(keys, "keys")
    count = as_integer(num_hidden)
    if keys.dim() != 2 or count is None or not 0 <= count <= keys.shape[1]:
        raise ValueError(
            f"hide_top needs keys (B, L) and num_hidden in [0, L], got keys of shape "
            f"{tuple(keys.shape)} and num_hidden={num_hidden!r}"
        )
    num_hidden = count
    if region is not None:
        keys = keys.masked_fill(~region, float("-inf"))
    chosen = torch.topk(keys, num_hidden, dim=1).indices
    hidden = torch.zeros(keys.shape, dtype=torch.bool, device=keys.device)
    return hidden.scatter_(1, chosen, True)
