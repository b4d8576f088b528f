"""The masker contract: base classes every masker derives from.

A masker decides which tokens of a ``(Tp, Vp)`` grid the encoder sees. It never owns the encoder,
so it drops into any masked autoencoder::

    result = masker(tokens, coords=coords)  # tokens (B, Tp, Vp, D), coords (B, T, V, C)
    visible = gather_tokens(flatten_grid(tokens), result.ids_keep)

Subclasses implement ``Masker.decide``, which hides an exact number of tokens inside an
optional *region* of the grid. The region lets ``CrossMasker`` run any masker over
one part of a partitioned grid while each part keeps its own ratio.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import torch
from torch import nn

from skelmask._checks import check_mask_ratio, check_positive, check_token_grid
from skelmask.sampling import Direction, check_direction, num_hidden_tokens, sample_hidden
from skelmask.tokens import MaskResult, mask_result_from_bool

__all__ = ["MaskDecision", "Masker", "ScoreGuidedMasker"]


class MaskDecision(NamedTuple):
    """A masker's raw decision, before it is turned into a ``MaskResult``.

    Attributes:
        hidden: Bool ``(B, L)``; True = hidden. Exactly ``num_hidden`` per row inside the region,
            and nothing hidden outside it.
        scores: Float32 ``(B, L)`` scores the decision was made from, or None.
        probs: Float32 ``(B, L)`` sampling weights, or None.
    """

    hidden: torch.Tensor
    scores: torch.Tensor | None = None
    probs: torch.Tensor | None = None


class Masker(nn.Module, ABC):
    """Base class of all maskers.

    Args:
        mask_ratio: Fraction of tokens hidden, in (0, 1). The exact count per sample is
            ``num_hidden_tokens`` of the grid size.

    Raises:
        ValueError: If ``mask_ratio`` is outside (0, 1).
    """

    def __init__(self, mask_ratio: float) -> None:
        super().__init__()
        self.mask_ratio = check_mask_ratio(mask_ratio)

    def forward(
        self,
        tokens: torch.Tensor,
        *,
        coords: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> MaskResult:
        """Decides which tokens of the grid are hidden.

        Args:
            tokens: Token grid ``(B, Tp, Vp, D)``. Only its shape, device and (for maskers that
                score tokens) values are read; it is not modified.
            coords: Raw coordinates ``(B, T, V, C)``, for maskers that read them.
            generator: Optional ``torch.Generator`` on the tokens' device for reproducible
                masks. Eager mode only: leave it None under ``torch.compile``.

        Returns:
            The mask result; every sample keeps the same number of tokens.
        """
        return self._run(tokens, coords=coords, generator=generator)

    def _run(
        self,
        tokens: torch.Tensor,
        *,
        coords: torch.Tensor | None,
        generator: torch.Generator | None,
        **decide_kwargs: Any,
    ) -> MaskResult:
        """Checks the grid, decides over all of it and packs the result.

        Subclasses whose ``forward`` takes extra inputs (e.g. caller-supplied attention) pass
        them on to their ``decide`` through ``decide_kwargs``.
        """
        _, time_patches, joint_patches, _ = check_token_grid(tokens)
        num_tokens = time_patches * joint_patches
        num_hidden = self.num_hidden((time_patches, joint_patches))
        decision = self.decide(
            tokens,
            coords=coords,
            generator=generator,
            region=None,
            num_hidden=num_hidden,
            **decide_kwargs,
        )
        return mask_result_from_bool(
            decision.hidden,
            num_tokens - num_hidden,
            (time_patches, joint_patches),
            scores=decision.scores,
            probs=decision.probs,
            validate=False,
        )

    def num_hidden(self, grid_size: tuple[int, int]) -> int:
        """Tokens this masker hides per sample on a ``(Tp, Vp)`` grid."""
        return num_hidden_tokens(grid_size[0] * grid_size[1], self.mask_ratio)

    @abstractmethod
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
        """Hides exactly ``num_hidden`` tokens per sample inside ``region``.

        Args:
            tokens: Token grid ``(B, Tp, Vp, D)``, already checked.
            coords: Raw coordinates ``(B, T, V, C)`` or None.
            generator: Optional RNG (eager mode only).
            region: Bool ``(L,)`` of the tokens this masker decides over, or None for the whole
                grid. Tokens outside it must stay visible.
            num_hidden: Tokens to hide per sample inside the region.
            region_size: Number of True entries of ``region`` when known.

        Returns:
            The decision.
        """

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        return f"mask_ratio={self.mask_ratio}"


class ScoreGuidedMasker(Masker):
    """A masker that scores every token and samples the mask from the scores.

    Subclasses implement ``score``; sampling is the shared temperature → softmax →
    Gumbel-top-k sampler of ``skelmask.sampling``.

    Args:
        mask_ratio: Fraction of tokens hidden, in (0, 1).
        temperature: Positive temperature ``tau`` (see ``scores_to_logits``).
            Lower is greedier; the most likely token is at most ``exp(1/tau)`` times as likely as
            the least likely one.
        direction: ``"hide_high"`` hides high-score tokens preferentially, ``"keep_high"`` keeps
            them visible preferentially.

    Raises:
        ValueError: If an argument is out of range.
    """

    def __init__(self, mask_ratio: float, temperature: float, direction: Direction) -> None:
        super().__init__(mask_ratio)
        self.temperature = check_positive(temperature, "temperature")
        self.direction: Direction = check_direction(direction)

    @abstractmethod
    def score(self, tokens: torch.Tensor, *, coords: torch.Tensor | None = None) -> torch.Tensor:
        """Scores every token of the grid.

        Args:
            tokens: Token grid ``(B, Tp, Vp, D)``.
            coords: Raw coordinates ``(B, T, V, C)`` or None.

        Returns:
            Float32 ``(B, Tp, Vp)`` scores, detached from the autograd graph.
        """

    def decide(
        self,
        tokens: torch.Tensor,
        *,
        coords: torch.Tensor | None,
        generator: torch.Generator | None,
        region: torch.Tensor | None,
        num_hidden: int,
        region_size: int | None = None,
        **score_kwargs: Any,
    ) -> MaskDecision:
        """Scores the grid and samples the hidden tokens (see ``Masker.decide``).

        ``score_kwargs`` are extra scoring inputs of a subclass (e.g. caller-supplied attention),
        passed on to ``_decision_scores``.
        """
        with torch.no_grad():
            scores = (
                self._decision_scores(tokens, coords=coords, region=region, **score_kwargs)
                .float()
                .flatten(1)
            )
        hidden, probs = sample_hidden(
            scores,
            num_hidden,
            temperature=self.temperature,
            direction=self.direction,
            region=region,
            region_size=region_size,
            generator=generator,
        )
        return MaskDecision(hidden=hidden, scores=scores, probs=probs)

    def _decision_scores(
        self,
        tokens: torch.Tensor,
        *,
        coords: torch.Tensor | None,
        region: torch.Tensor | None,
        **score_kwargs: Any,
    ) -> torch.Tensor:
        """Scores that ``decide`` samples from; override to use the region or extra inputs.

        Returns:
            ``(B, Tp, Vp)`` scores. The default is ``score`` of the whole grid.
        """
        return self.score(tokens, coords=coords, **score_kwargs)

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        return (
            f"mask_ratio={self.mask_ratio}, temperature={self.temperature}, "
            f"direction={self.direction!r}"
        )
