"""Argument checks shared across skelmask, raising errors that name the argument and the values."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Iterable

import numpy as np
import torch

__all__ = [
    "as_integer",
    "as_integers",
    "as_real",
    "as_real_pair",
    "check_finite",
    "check_flags",
    "check_holds",
    "check_mask_ratio",
    "check_positive",
    "check_positive_int",
    "check_tensor",
    "check_token_grid",
]


def check_mask_ratio(mask_ratio: float, name: str = "mask_ratio") -> float:
    """Returns ``mask_ratio`` as a float after checking that it is a number inside (0, 1).

    Strings and bools are not numbers here.
    """
    value = as_real(mask_ratio)
    if value is None or not 0.0 < value < 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in the open interval (0, 1), got {mask_ratio!r}")
    return value


def check_positive(value: float, name: str) -> float:
    """Returns ``value`` as a float after checking that it is a finite number > 0.

    Strings and bools are not numbers here (``float("0.8")`` and ``float(True)`` would pass).
    """
    number = as_real(value)
    if number is None or not (number > 0.0 and math.isfinite(number)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def check_positive_int(value: object, name: str) -> int:
    """Returns ``value`` as an int after checking that it is a positive integer.

    Any integral number passes (``numpy.int64`` from a config or an array too); bools do not.
    """
    number = as_integer(value)
    if number is None or number < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return number


def as_integer(value: object) -> int | None:
    """``value`` as an int if it is an integer, else None (a float is not, even when whole).

    Python's ints, NumPy's integers and one-element integer tensors are integers. Bools are not
    numbers here: ``True`` as a size or a count is a mistake.
    """
    if isinstance(value, (bool, np.bool_)) or (
        isinstance(value, torch.Tensor) and value.dtype == torch.bool
    ):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


def as_integers(values: Iterable[object], name: str) -> tuple[int, ...]:
    """``values`` as a tuple of ints; ``TypeError`` naming ``name[i]`` at the first non-integer.

    Where ``int()`` would truncate ``0.5`` to a valid index, this refuses it.
    """
    result = []
    for index, value in enumerate(values):
        number = as_integer(value)
        if number is None:
            raise TypeError(f"{name}[{index}] must be an integer, got {value!r}")
        result.append(number)
    return tuple(result)


def as_real(value: object) -> float | None:
    """``value`` as a float if it is a real number, else None.

    Python's and NumPy's real numbers (``numpy.float32`` too) and one-element real tensors are
    real numbers; strings are not, and bools are not numbers here, as in ``as_integer``.
    """
    if isinstance(value, torch.Tensor):
        real = value.numel() == 1 and value.dtype != torch.bool and not value.is_complex()
        return float(value) if real else None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def as_real_pair(value: object) -> tuple[float, float] | None:
    """``value`` as two floats if it is a tuple or list of two real numbers, else None.

    Each item is read by ``as_real``: strings and bools are not numbers.
    """
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        return None
    first, second = as_real(value[0]), as_real(value[1])
    return None if first is None or second is None else (first, second)


def check_flags(**flags: object) -> None:
    """Raises ``TypeError`` naming the first of ``flags`` that is not a bool.

    A string from a config file (``"false"``) is truthy, and would silently switch an option on.
    """
    for name, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {value!r}")


def check_tensor(value: object, name: str) -> torch.Tensor:
    """Returns ``value`` after checking that it is a ``torch.Tensor`` (a NumPy array is not)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {type(value).__name__}; convert it with "
            f"torch.as_tensor({name})"
        )
    return value


def check_token_grid(tokens: torch.Tensor, name: str = "tokens") -> tuple[int, int, int, int]:
    """Checks that ``tokens`` is a non-empty ``(B, Tp, Vp, D)`` grid and returns its shape."""
    check_tensor(tokens, name)
    if tokens.dim() != 4:
        raise ValueError(
            f"{name} must be a token grid of shape (B, Tp, Vp, D), got {tokens.dim()} dimensions "
            f"with shape {tuple(tokens.shape)}"
        )
    batch, time_patches, joint_patches, width = tokens.shape
    if min(batch, time_patches, joint_patches, width) == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(tokens.shape)}")
    if time_patches * joint_patches < 2:
        raise ValueError(
            f"{name} must hold at least 2 tokens (Tp·Vp ≥ 2) so that one can be hidden and one "
            f"kept, got grid {time_patches}×{joint_patches}"
        )
    return batch, time_patches, joint_patches, width


def check_finite(values: torch.Tensor, name: str) -> None:
    """Raises if ``values`` holds NaN or infinity.

    Skipped while ``torch.compile`` traces (a data-dependent branch). Off the CPU the check is
    an assertion queued on the device, so that it never stops the host to read a value back;
    it then fails later, with this message, at the next synchronisation.
    """
    if torch.compiler.is_compiling():
        return
    if values.device.type != "cpu":
        torch._assert_async(torch.isfinite(values).all(), f"{name} contains NaN or infinite values")
        return
    if not bool(torch.isfinite(values).all()):
        bad = int((~torch.isfinite(values)).sum())
        raise ValueError(f"{name} contains {bad} NaN or infinite values; expected finite numbers")


def check_holds(
    holds: torch.Tensor, message: str, details: Callable[[], str] | None = None
) -> None:
    """Raises ``ValueError`` with ``message`` unless the 0-d bool tensor ``holds`` is True.

    Like ``check_finite``: skipped while ``torch.compile`` traces; off the CPU queued on the device
    (``torch._assert_async``, failing with ``message`` at the next synchronisation) so that the
    host never waits for a value every step; on the CPU checked at once, the error ending in
    ``", got " + details()`` (called only then, since it may read the values).
    """
    if torch.compiler.is_compiling():
        return
    if holds.device.type != "cpu":
        torch._assert_async(holds, message)
        return
    if not bool(holds):
        raise ValueError(message if details is None else f"{message}, got {details()}")
