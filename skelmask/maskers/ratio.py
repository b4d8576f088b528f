"""Mask ratios that vary: a range drawn once per batch, or a schedule over training steps.

A masker's ``mask_ratio`` is a ``RatioSpec``:

* a number in (0, 1): the fixed ratio;
* a ``(low, high)`` pair, ``0 < low ≤ high < 1``: a ratio drawn from ``U(low, high)`` once per
  call (per batch), so every sample of the batch still hides the same exact count (SLiM draws
  ``U(0.5, 0.9)``);
* a ``RatioSchedule``: a ratio that ramps from ``start`` to ``end`` over training steps.
"""

from __future__ import annotations

import math
from typing import Literal, TypeAlias

import torch

from skelmask._checks import as_integer, as_real, check_mask_ratio, check_positive_int

__all__ = [
    "RatioSchedule",
    "RatioShape",
    "RatioSpec",
    "check_ratio_spec",
    "draw_ratio",
    "nominal_ratio",
]

RatioShape: TypeAlias = Literal["linear", "cosine"]

_SHAPES: tuple[RatioShape, ...] = ("linear", "cosine")


class RatioSchedule:
    """A mask ratio ramped over training steps, linearly or along a half cosine.

    ``value(step) = start + (end - start) · f(min(step, steps) / steps)`` with ``f(x) = x``
    (``"linear"``) or ``f(x) = (1 - cos(π x)) / 2`` (``"cosine"``); after ``steps`` it stays at
    ``end``. The schedule counts its own steps: call ``step()`` once per training step (like a
    learning-rate scheduler), or read ``value(step)`` for an explicit step. Its position is
    saved by ``state_dict()``.

    Args:
        start: Ratio at step 0, in (0, 1).
        end: Ratio from step ``steps`` on, in (0, 1).
        steps: Length of the ramp, a positive integer.
        shape: ``"linear"`` or ``"cosine"``.

    Raises:
        ValueError: If an argument is out of range.

    Examples:
        >>> schedule = RatioSchedule(0.5, 0.9, steps=100)
        >>> schedule.value(), schedule.value(50), schedule.value(1000)
        (0.5, 0.7, 0.9)
        >>> schedule.step(25)
        >>> round(schedule.value(), 6)
        0.6
    """

    def __init__(self, start: float, end: float, steps: int, shape: RatioShape = "linear") -> None:
        self.start = check_mask_ratio(start, "start")
        self.end = check_mask_ratio(end, "end")
        check_positive_int(steps, "steps")
        if shape not in _SHAPES:
            raise ValueError(f"shape must be one of {list(_SHAPES)}, got {shape!r}")
        self.steps = steps
        self.shape: RatioShape = shape
        self.current_step = 0

    def value(self, step: int | None = None) -> float:
        """The ratio at ``step`` (default: the schedule's own current step).

        Raises:
            ValueError: If ``step`` is not a non-negative integer.
        """
        if step is None:
            step = self.current_step
        else:
            _check_non_negative_int(step, "step")
        progress = min(step, self.steps) / self.steps
        if self.shape == "cosine":
            progress = (1.0 - math.cos(math.pi * progress)) / 2.0
        return self.start + (self.end - self.start) * progress

    def step(self, count: int = 1) -> None:
        """Advances the schedule by ``count`` training steps."""
        _check_non_negative_int(count, "count")
        self.current_step += count

    def state_dict(self) -> dict[str, int]:
        """The schedule's position, for checkpoints."""
        return {"current_step": self.current_step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restores the position saved by ``state_dict``."""
        self.current_step = _check_non_negative_int(state["current_step"], "current_step")

    def __repr__(self) -> str:
        return (
            f"RatioSchedule(start={self.start}, end={self.end}, steps={self.steps}, "
            f"shape={self.shape!r}, current_step={self.current_step})"
        )


RatioSpec: TypeAlias = "float | tuple[float, float] | RatioSchedule"
"""A fixed ratio, a ``(low, high)`` range drawn per batch, or a ``RatioSchedule``."""


def check_ratio_spec(
    value: object, name: str = "mask_ratio"
) -> float | tuple[float, float] | RatioSchedule:
    """Returns ``value`` checked as a ``RatioSpec`` (a number as float, a range as a tuple).

    Raises:
        ValueError: If a ratio is outside (0, 1) or a range has ``low > high``.
        TypeError: If ``value`` is none of the three forms.
    """
    if isinstance(value, RatioSchedule):
        return value
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} as a range must be (low, high), got {value!r}")
        low = check_mask_ratio(value[0], f"{name}[0] (low)")
        high = check_mask_ratio(value[1], f"{name}[1] (high)")
        if low > high:
            raise ValueError(f"{name} range (low, high) needs low <= high, got {value!r}")
        return (low, high)
    # A tensor ratio is refused: reading it back would stop the host at every call on a GPU.
    number = None if isinstance(value, torch.Tensor) else as_real(value)
    if number is None:
        raise TypeError(
            f"{name} must be a number in (0, 1), a (low, high) range or a RatioSchedule, got "
            f"{type(value).__name__}"
        )
    return check_mask_ratio(number, name)


def nominal_ratio(spec: float | tuple[float, float] | RatioSchedule) -> float:
    """The spec's representative ratio: itself, a range's midpoint, a schedule's current value."""
    if isinstance(spec, RatioSchedule):
        return spec.value()
    if isinstance(spec, tuple):
        return (spec[0] + spec[1]) / 2
    return spec


def draw_ratio(
    spec: float | tuple[float, float] | RatioSchedule, generator: torch.Generator | None = None
) -> float:
    """The ratio for one call: a range is drawn from ``U(low, high)``, in Python.

    The draw uses ``generator`` when it is a CPU generator, else the global CPU RNG (seeded by
    ``torch.manual_seed``), so it never reads a value back from an accelerator.

    Raises:
        RuntimeError: For a range under ``torch.compile`` (draw the ratio outside the compiled
            call with ``Masker.draw_ratio`` and pass it as ``mask_ratio=``).
    """
    if not isinstance(spec, tuple):
        return nominal_ratio(spec)
    if torch.compiler.is_compiling():
        raise RuntimeError(
            f"a mask_ratio range {spec} is drawn in Python, which torch.compile cannot trace; "
            "draw it outside the compiled call, ratio = masker.draw_ratio(), and pass "
            "mask_ratio=ratio"
        )
    if generator is not None and generator.device.type == "cpu":
        uniform = float(torch.rand((), generator=generator))
    else:
        uniform = float(torch.rand(()))
    return spec[0] + (spec[1] - spec[0]) * uniform


def _check_non_negative_int(value: object, name: str) -> int:
    """Returns ``value`` after checking that it is an integer ≥ 0."""
    number = as_integer(value)
    if number is None or number < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return number
