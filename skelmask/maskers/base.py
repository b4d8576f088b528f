"""The masker contract: a masker states a priority per token, one sampler cuts the mask.

A masker decides which tokens of a ``(Tp, Vp)`` grid the encoder sees. It never owns the encoder,
so it drops into any masked autoencoder, whether that holds a token grid or flat tokens::

    result = masker(tokens, coords=coords)  # tokens (B, Tp, Vp, D), coords (B, T, V, C)
    result = masker(x, coords=x_orig, mask_ratio=0.9, temperature=0.8)  # x (B, L, D)
    x_masked, mask, ids_restore, ids_keep = result.apply(x)

A masker's own job is its criterion, ``priority``: one float per token, the highest hidden
first. ``Masker.forward`` owns everything else: reading flat or grid tokens, the call-time
ratio and temperature, the exact count, the region a ``CrossMasker`` branch decides over, and
the ``MaskResult``. Score-guided maskers implement ``ScoreGuidedMasker.score`` instead, and the
shared temperature → softmax → Gumbel-top-k sampler turns scores into priorities.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import torch
from torch import nn

from skelmask._checks import (
    as_integers,
    check_finite,
    check_mask_ratio,
    check_positive,
    check_tensor,
    check_token_grid,
)
from skelmask.maskers.ratio import (
    RatioSchedule,
    RatioSpec,
    check_ratio_spec,
    draw_ratio,
    nominal_ratio,
)
from skelmask.sampling import (
    Direction,
    check_direction,
    hide_top,
    num_hidden_tokens,
    score_priority,
)
from skelmask.tokens import MaskResult, mask_result_from_bool, unflatten_tokens

__all__ = ["MaskContext", "MaskDecision", "Masker", "Priority", "Region", "ScoreGuidedMasker"]


class Region(NamedTuple):
    """The part of the grid a masker decides over (a ``CrossMasker`` branch).

    Attributes:
        mask: Bool ``(L,)``, time-major; True inside the region.
        size: Number of True entries, known in Python (no read-back from the device).
        time_patches: The time patches the region consists of, ascending, when it is made of
            whole time patches (every joint of them); None otherwise.
    """

    mask: torch.Tensor
    size: int
    time_patches: tuple[int, ...] | None = None


class MaskContext(NamedTuple):
    """Everything a masker's criterion may read for one call.

    Attributes:
        tokens: Token grid ``(B, Tp, Vp, D)`` (flat tokens are viewed as this grid).
        coords: Coordinates as the caller passed them: raw ``(B, T, V, C)`` or patchified
            ``(B, Tp, Vp, P)`` (flat ``(B, L, P)`` is viewed as the grid), or None.
        attention: Caller-supplied attention maps, or None (see ``GlobalAttentionMasker``).
        root_tokens: Root tokens outside the grid ``(B, Tp, R, D)``, or None (see
            ``HyperbolicHierarchyMasker``).
        saliency: Caller-supplied per-token saliency ``(B, Tp, Vp)`` (flat ``(B, L)`` is
            viewed as the grid), or None (see ``SaliencyMasker``).
        temperature: Temperature given for this call, or None for the masker's own.
        generator: Optional ``torch.Generator`` (eager mode only).
        region: The part of the grid to decide over, or None for all of it.
        num_hidden: Tokens the sampler hides inside the region, set by ``Masker.decide``
            before ``priority`` runs (for criteria that depend on the count, e.g. tube sizes);
            None outside ``decide``.
    """

    tokens: torch.Tensor
    coords: torch.Tensor | None = None
    attention: torch.Tensor | None = None
    root_tokens: torch.Tensor | None = None
    saliency: torch.Tensor | None = None
    temperature: float | None = None
    generator: torch.Generator | None = None
    region: Region | None = None
    num_hidden: int | None = None

    @property
    def grid_size(self) -> tuple[int, int]:
        """``(Tp, Vp)`` of the token grid."""
        return int(self.tokens.shape[1]), int(self.tokens.shape[2])


class Priority(NamedTuple):
    """A masker's criterion: which tokens to hide first.

    Attributes:
        keys: Float ``(B, L)`` priorities; the sampler hides the highest ones inside the region.
        scores: Float32 ``(B, L)`` scores the keys were made from, or None.
        probs: Float32 ``(B, L)`` sampling softmax, or None.
    """

    keys: torch.Tensor
    scores: torch.Tensor | None = None
    probs: torch.Tensor | None = None


class MaskDecision(NamedTuple):
    """Hidden tokens decided over a grid or region, before they become a ``MaskResult``.

    Attributes:
        hidden: Bool ``(B, L)``; True = hidden, exactly the asked count inside the region.
        scores: Float32 ``(B, L)`` scores, or None.
        probs: Float32 ``(B, L)`` sampling weights, or None.
    """

    hidden: torch.Tensor
    scores: torch.Tensor | None = None
    probs: torch.Tensor | None = None


class Masker(nn.Module, ABC):
    """Base class of all maskers.

    Subclasses implement ``priority``. They may override ``num_hidden`` (maskers that hide
    whole units, e.g. joints, round to whole units), ``call_inputs`` (the guidance inputs they
    read) and ``decide`` (composites).

    Args:
        mask_ratio: Fraction of tokens hidden: a number in (0, 1), a ``(low, high)`` range
            drawn once per call (every sample of the batch hides the same count), or a
            ``RatioSchedule`` over training steps (see ``skelmask.maskers.ratio``). The exact
            count per sample is ``num_hidden`` of the grid size. The attribute is checked
            whenever it is set, and a ``mask_ratio=`` given to a call overrides it for that
            call.

    Raises:
        ValueError: If a ratio is outside (0, 1) or a range has ``low > high``.
    """

    def __init__(self, mask_ratio: RatioSpec) -> None:
        super().__init__()
        self._ratio_spec = check_ratio_spec(mask_ratio)

    @property
    def mask_ratio(self) -> float:
        """Fraction of tokens hidden, in (0, 1), as one number.

        The fixed ratio, a range's midpoint or a schedule's current value; ``ratio_spec``
        holds the ratio as set.
        """
        return nominal_ratio(self._ratio_spec)

    @mask_ratio.setter
    def mask_ratio(self, value: RatioSpec) -> None:
        spec = check_ratio_spec(value)
        if isinstance(spec, float):
            spec = self.check_ratio(spec)
        else:
            self.check_ratio(nominal_ratio(spec))  # maskers with a fixed count refuse any
        self._ratio_spec = spec

    @property
    def ratio_spec(self) -> RatioSpec:
        """The ratio as set: a number, a ``(low, high)`` range or a ``RatioSchedule``."""
        return self._ratio_spec

    def draw_ratio(self, generator: torch.Generator | None = None) -> float:
        """The ratio the next call would use: a range drawn once, a schedule's current value.

        Under ``torch.compile`` a range cannot be drawn inside the compiled call; draw it here
        and pass ``mask_ratio=masker.draw_ratio()`` instead.
        """
        return draw_ratio(self._ratio_spec, generator)

    def check_ratio(self, value: float) -> float:
        """Returns a ratio this masker can use, checked: a float in (0, 1).

        Raises:
            ValueError: If the ratio is outside (0, 1) or the masker's count is fixed otherwise.
        """
        return check_mask_ratio(value)

    @property
    def call_inputs(self) -> frozenset[str]:
        """Guidance inputs (``"attention"``, ``"root_tokens"``, ``"saliency"``) this masker reads."""
        return frozenset()

    @property
    def takes_temperature(self) -> bool:
        """Whether a call may set ``temperature=`` (maskers that sample from scores)."""
        return False

    @property
    def grid_agnostic(self) -> bool:
        """Whether the decision ignores the grid's shape, so flat tokens need no ``grid_size``."""
        return False

    def forward(
        self,
        tokens: torch.Tensor,
        *,
        grid_size: tuple[int, int] | None = None,
        coords: torch.Tensor | None = None,
        attention: torch.Tensor | None = None,
        root_tokens: torch.Tensor | None = None,
        saliency: torch.Tensor | None = None,
        mask_ratio: RatioSpec | None = None,
        temperature: float | None = None,
        generator: torch.Generator | None = None,
    ) -> MaskResult:
        """Decides which tokens are hidden.

        Args:
            tokens: Token grid ``(B, Tp, Vp, D)`` or flat time-major tokens ``(B, L, D)``.
                Only shape, device and (for maskers that score tokens) values are read.
            grid_size: ``(Tp, Vp)`` of flat tokens. Optional when another input shows it: a
                patchified ``coords`` grid ``(B, Tp, Vp, P)`` (MAMP's ``x_orig``), ``coords``
                in raw form for ``MotionAwareMasker``, ``root_tokens``, ``attention`` or a
                ``(B, Tp, Vp)`` ``saliency``; and
                for grid-agnostic maskers (token-level ``RandomMasker``).
            coords: Coordinates, for maskers that read them (``MotionAwareMasker``): raw
                ``(B, T, V, C)`` or patchified ``(B, Tp, Vp, P)`` / ``(B, L, P)``. Other maskers
                accept and ignore it, so one call site serves every masker.
            attention: Attention maps for ``GlobalAttentionMasker`` (alone or inside a
                ``CrossMasker``); an error for maskers that do not read it.
            root_tokens: ``(B, Tp, R, D)`` root tokens outside the grid for
                ``HyperbolicHierarchyMasker``; an error for maskers that do not read it.
            saliency: Per-token saliency ``(B, Tp, Vp)`` or flat ``(B, L)`` for
                ``SaliencyMasker``; an error for maskers that do not read it.
            mask_ratio: Ratio for this call, overriding the masker's ``mask_ratio``: a number,
                a ``(low, high)`` range or a ``RatioSchedule``. A range (the masker's or this
                one) is drawn once per call from ``generator`` if it is a CPU generator, else
                from the global CPU RNG, never from the device.
            temperature: Temperature for this call, overriding a score-guided masker's own; an
                error for maskers that draw uniformly.
            generator: Optional ``torch.Generator`` on the tokens' device for reproducible
                masks. Eager mode only: leave it None under ``torch.compile``.

        Returns:
            The mask result; every sample keeps the same number of tokens.

        Raises:
            ValueError: On malformed tokens, an unknown grid size of flat tokens, a ratio or
                temperature out of range, or a guidance input the masker does not read.
            TypeError: If ``tokens`` or a given guidance input is not a tensor, or a ratio is
                not a number.
        """
        ratio = None
        spec = self._ratio_spec if mask_ratio is None else check_ratio_spec(mask_ratio)
        if mask_ratio is not None or isinstance(spec, (tuple, RatioSchedule)):
            ratio = self.check_ratio(draw_ratio(spec, generator))
        if temperature is not None:
            if not self.takes_temperature:
                raise ValueError(
                    f"{type(self).__name__} draws its mask without scores and takes no "
                    f"temperature, got temperature={temperature!r}"
                )
            temperature = check_positive(temperature, "temperature")
        given = {"attention": attention, "root_tokens": root_tokens, "saliency": saliency}
        for name, value in {"coords": coords, **given}.items():
            if value is not None:
                check_tensor(value, name)
        unread = [name for name, value in given.items() if value is not None]
        unread = [name for name in unread if name not in self.call_inputs]
        if unread:
            raise ValueError(
                f"{type(self).__name__} does not read {unread[0]}=; only "
                f"{sorted(self.call_inputs) or 'tokens and coords'} are read by this masker"
            )
        grid = self._token_grid(tokens, grid_size, coords, attention, root_tokens, saliency)
        _, time_patches, joint_patches, _ = check_token_grid(grid)
        if coords is not None and coords.dim() == 3:
            coords = _unflatten_coords(coords, (time_patches, joint_patches))
        context = MaskContext(
            tokens=grid,
            coords=coords,
            attention=attention,
            root_tokens=root_tokens,
            saliency=saliency,
            temperature=temperature,
            generator=generator,
        )
        num_hidden = self.num_hidden((time_patches, joint_patches), ratio)
        decision = self.decide(context, num_hidden, ratio)
        return mask_result_from_bool(
            decision.hidden,
            time_patches * joint_patches - num_hidden,
            (time_patches, joint_patches),
            scores=decision.scores,
            probs=decision.probs,
            validate=False,
        )

    def num_hidden(self, grid_size: tuple[int, int], mask_ratio: float | None = None) -> int:
        """Tokens this masker hides per sample on a ``(Tp, Vp)`` grid.

        Args:
            grid_size: ``(Tp, Vp)``.
            mask_ratio: Ratio to use instead of the masker's ``mask_ratio``.
        """
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        return num_hidden_tokens(grid_size[0] * grid_size[1], ratio)

    def decide(
        self, context: MaskContext, num_hidden: int, mask_ratio: float | None = None
    ) -> MaskDecision:
        """Hides the ``num_hidden`` highest-priority tokens inside ``context.region``.

        Args:
            context: The call's inputs and region.
            num_hidden: Tokens to hide per sample inside the region.
            mask_ratio: The call's ratio override, for composites that split counts.

        Returns:
            The decision.

        Raises:
            ValueError: If ``num_hidden`` is not in ``[1, tokens in the region - 1]``.
        """
        region = context.region
        time_patches, joint_patches = context.grid_size
        available = time_patches * joint_patches if region is None else region.size
        if not 1 <= num_hidden < available:
            raise ValueError(
                f"num_hidden must be in [1, {available - 1}] for {available} tokens, got "
                f"{num_hidden}"
            )
        priority = self.priority(context._replace(num_hidden=num_hidden))
        hidden = hide_top(priority.keys, num_hidden, None if region is None else region.mask)
        return MaskDecision(hidden=hidden, scores=priority.scores, probs=priority.probs)

    @abstractmethod
    def priority(self, context: MaskContext) -> Priority:
        """The masker's criterion: a priority per token, the highest hidden first.

        Args:
            context: The call's inputs; ``context.tokens`` is the ``(B, Tp, Vp, D)`` grid.

        Returns:
            ``keys`` float ``(B, L)`` in time-major order, optionally with scores and probs.
            Keys outside ``context.region`` are ignored.
        """

    def grid_size_from_inputs(
        self,
        num_tokens: int,
        coords: torch.Tensor | None,
        attention: torch.Tensor | None,
        root_tokens: torch.Tensor | None,
        saliency: torch.Tensor | None = None,
    ) -> tuple[int, int] | None:
        """The ``(Tp, Vp)`` of ``num_tokens`` flat tokens as other inputs show it, or None.

        A patchified ``coords`` grid ``(B, Tp, Vp, P)``, ``root_tokens`` ``(B, Tp, R, D)``,
        whole-grid ``attention`` ``(B, Vp, Tp, Tp)`` and a ``saliency`` grid ``(B, Tp, Vp)``
        each show it.
        """
        if coords is not None and coords.dim() == 4:
            time_patches, joint_patches = int(coords.shape[1]), int(coords.shape[2])
            if time_patches * joint_patches == num_tokens:
                return time_patches, joint_patches
        if root_tokens is not None and root_tokens.dim() == 4 and root_tokens.shape[1] > 0:
            time_patches = int(root_tokens.shape[1])
            if num_tokens % time_patches == 0:
                return time_patches, num_tokens // time_patches
        if attention is not None and attention.dim() == 4:
            joint_patches, time_patches = int(attention.shape[1]), int(attention.shape[-1])
            if joint_patches * time_patches == num_tokens:
                return time_patches, joint_patches
        if saliency is not None and saliency.dim() == 3:
            time_patches, joint_patches = int(saliency.shape[1]), int(saliency.shape[2])
            if time_patches * joint_patches == num_tokens:
                return time_patches, joint_patches
        return None

    def _token_grid(
        self,
        tokens: torch.Tensor,
        grid_size: tuple[int, int] | None,
        coords: torch.Tensor | None,
        attention: torch.Tensor | None,
        root_tokens: torch.Tensor | None,
        saliency: torch.Tensor | None,
    ) -> torch.Tensor:
        """The tokens as a ``(B, Tp, Vp, D)`` grid (a view of flat tokens)."""
        check_tensor(tokens, "tokens")
        if tokens.dim() == 4:
            if grid_size is not None and tuple(grid_size) != tuple(tokens.shape[1:3]):
                raise ValueError(
                    f"grid_size={tuple(grid_size)} does not match the token grid's (Tp, Vp) = "
                    f"{tuple(tokens.shape[1:3])}"
                )
            return tokens
        if tokens.dim() != 3:
            raise ValueError(
                f"tokens must be a token grid (B, Tp, Vp, D) or flat tokens (B, L, D), got "
                f"{tokens.dim()} dimensions with shape {tuple(tokens.shape)}"
            )
        num_tokens = int(tokens.shape[1])
        if grid_size is None:
            grid_size = self.grid_size_from_inputs(
                num_tokens, coords, attention, root_tokens, saliency
            )
        if grid_size is None:
            if not self.grid_agnostic:
                # Name the inputs that were given: a shape mismatch there is the usual cause.
                given = [
                    f"{name} of shape {tuple(value.shape)}"
                    for name, value in (
                        ("coords", coords),
                        ("attention", attention),
                        ("root_tokens", root_tokens),
                        ("saliency", saliency),
                    )
                    if isinstance(value, torch.Tensor)
                ]
                shown = f"; no grid of {num_tokens} tokens in {', '.join(given)}"
                raise ValueError(
                    f"flat tokens of shape {tuple(tokens.shape)} need grid_size=(Tp, Vp) with "
                    f"Tp·Vp = L = {num_tokens}; {type(self).__name__} reads the grid's shape"
                    + (shown if given else "")
                )
            grid_size = (1, num_tokens)
        sizes = as_integers(grid_size, "grid_size")
        if len(sizes) != 2:
            raise ValueError(f"grid_size must be (Tp, Vp), got {grid_size!r}")
        time_patches, joint_patches = sizes
        if time_patches < 1 or joint_patches < 1 or time_patches * joint_patches != num_tokens:
            raise ValueError(
                f"grid_size=(Tp, Vp) = {tuple(grid_size)} must multiply to the L = {num_tokens} "
                f"flat tokens of shape {tuple(tokens.shape)}"
            )
        return unflatten_tokens(tokens, (time_patches, joint_patches))

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        return f"mask_ratio={self.mask_ratio}"


class ScoreGuidedMasker(Masker):
    """A masker that scores every token and samples the mask from the scores.

    Subclasses implement ``score``; ``priority`` runs the shared temperature → softmax →
    Gumbel-top-k sampler of ``skelmask.sampling`` over the scores. A new score-guided masker is
    one method::

        class NormMasker(ScoreGuidedMasker):
            def score(self, context):
                return context.tokens.norm(dim=-1)  # (B, Tp, Vp)

    Args:
        mask_ratio: Fraction of tokens hidden, in (0, 1).
        temperature: Positive temperature ``tau`` (see ``scores_to_logits``). Lower is
            greedier; the most likely token is at most ``exp(1/tau)`` times as likely as the
            least likely one. A call's ``temperature=`` overrides it.
        direction: ``"hide_high"`` hides high-score tokens preferentially, ``"keep_high"`` keeps
            them visible preferentially.

    Raises:
        ValueError: If an argument is out of range (also when an attribute is set later).
    """

    def __init__(self, mask_ratio: float, temperature: float, direction: Direction) -> None:
        super().__init__(mask_ratio)
        self.temperature = temperature
        self.direction = direction

    @property
    def temperature(self) -> float:
        """Temperature ``tau`` of the sampler, a finite number > 0."""
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self._temperature = check_positive(value, "temperature")

    @property
    def direction(self) -> Direction:
        """``"hide_high"`` or ``"keep_high"``."""
        return self._direction

    @direction.setter
    def direction(self, value: Direction) -> None:
        self._direction: Direction = check_direction(value)

    @property
    def takes_temperature(self) -> bool:
        """Score-guided maskers take a per-call temperature."""
        return True

    @abstractmethod
    def score(self, context: MaskContext) -> torch.Tensor:
        """Scores every token of the grid.

        Args:
            context: The call's inputs; ``context.tokens`` is the ``(B, Tp, Vp, D)`` grid.

        Returns:
            Float ``(B, Tp, Vp)`` scores. They are detached and cast to float32 by the caller.
        """

    def priority(self, context: MaskContext) -> Priority:
        """Scores the grid and perturbs the tempered log-softmax with Gumbel noise."""
        with torch.no_grad():
            scores = self.score(context).float().flatten(1)
        _check_scores(scores, context)
        region = context.region
        keys, probs = score_priority(
            scores,
            temperature=self.temperature if context.temperature is None else context.temperature,
            direction=self.direction,
            region=None if region is None else region.mask,
            generator=context.generator,
        )
        return Priority(keys=keys, scores=scores, probs=probs)

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        return (
            f"mask_ratio={self.mask_ratio}, temperature={self.temperature}, "
            f"direction={self.direction!r}"
        )


def _unflatten_coords(coords: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
    """Flat patchified coordinates ``(B, L, P)`` as a grid ``(B, Tp, Vp, P)``."""
    time_patches, joint_patches = grid_size
    if coords.shape[1] != time_patches * joint_patches:
        raise ValueError(
            f"coords of shape {tuple(coords.shape)} are flat patchified coordinates (B, L, P), "
            f"but L = {coords.shape[1]} differs from the grid's Tp·Vp = "
            f"{time_patches}·{joint_patches}"
        )
    return unflatten_tokens(coords, grid_size)


def _check_scores(scores: torch.Tensor, context: MaskContext) -> None:
    """Raises if the scores are not finite, naming the input that made them so."""
    if torch.compiler.is_compiling() or scores.device.type != "cpu":
        # No read-back here: check_finite queues the check on the device.
        check_finite(scores, "scores (check tokens, coords and attention for NaN/inf)")
        return
    if bool(torch.isfinite(scores).all()):
        return
    inputs = {
        "tokens": context.tokens,
        "coords": context.coords,
        "attention": context.attention,
        "root_tokens": context.root_tokens,
        "saliency": context.saliency,
    }
    for name, value in inputs.items():
        if value is not None:
            check_finite(value, name)
    check_finite(scores, "scores")
