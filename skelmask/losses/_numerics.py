"""Float32 maths for the losses that stays finite for every finite input, under any autocast.

None of these helpers reads a value back from the device: they rescale instead of checking, so
the losses stay free of host synchronisation on the training hot path.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from skelmask._checks import check_positive

__all__ = ["check_temperature", "float32_maths", "normalize_rows", "scaled_dot_logits"]

_FLOAT32 = torch.finfo(torch.float32)


def check_temperature(value: float, name: str = "temperature") -> float:
    """A finite temperature ``> 0`` whose reciprocal is finite in float32 (``≥ ~2.9e-39``).

    Below that, ``logits / temperature`` overflows to infinity even for unit vectors, and the
    softmax of ``inf − inf`` is NaN.
    """
    number = check_positive(value, name)
    if 1.0 / number > _FLOAT32.max:
        raise ValueError(
            f"{name} must be at least 1/{_FLOAT32.max:.4g} ≈ {1.0 / _FLOAT32.max:.2g} so that "
            f"logits / {name} stay finite in float32, got {value!r}"
        )
    return number


def float32_maths(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """Switches autocast off, so that the loss's matrix products really run in float32.

    Under ``torch.autocast`` a matmul of float32 tensors still runs in bfloat16/float16; the
    losses cast their inputs to float32 and compute inside this context instead.
    """
    return torch.autocast(device.type, enabled=False)


def normalize_rows(x: torch.Tensor, dim: int = -1, eps: float = 1e-12) -> torch.Tensor:
    """``F.normalize(x, dim=dim, eps=eps)`` without overflow for rows of large values.

    ``F.normalize`` squares the values, so rows beyond about 1.8e19 get an infinite norm and
    become zero. Rows whose largest magnitude exceeds 1 are first divided by it; the unit row
    does not depend on that scale, which is therefore detached (the gradient is the same in
    exact arithmetic). Rows within ``[-1, 1]`` are normalised as they are, so zero rows stay
    zero with ``F.normalize``'s finite gradient.

    Args:
        x: Float tensor of any shape.
        dim: Axis along which rows are normalised.
        eps: ``F.normalize``'s lower bound on the norm.

    Returns:
        Same shape and dtype as ``x``; unit rows (zero rows stay zero).
    """
    scale = x.detach().abs().amax(dim=dim, keepdim=True).clamp_min(1.0)
    return F.normalize(x / scale, dim=dim, eps=eps)


def scaled_dot_logits(
    queries: torch.Tensor, keys: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``queries @ keys.T / temperature`` that is never infinite or NaN for finite inputs.

    Both sides are divided by their joint largest magnitude ``s`` (detached), so every dot
    product lies in ``[-D, D]``; the factor ``s² / temperature`` is applied last and capped so
    that every logit, and every difference of two logits, stays finite. The cap only acts when
    the exact logits exceed float32's range, where the softmax is saturated anyway.

    Args:
        queries: ``(N, D)`` float32.
        keys: ``(M, D)`` float32.
        temperature: ``> 0``, checked by ``check_temperature``.

    Returns:
        ``(N, M)`` float32 logits.
    """
    width = max(queries.shape[-1], 1)
    scale = torch.maximum(queries.detach().abs().amax(), keys.detach().abs().amax())
    scale = scale.clamp_min(_FLOAT32.tiny)
    dots = (queries / scale) @ (keys / scale).T
    # (s / τ) · s rather than s² / τ: the square of a small s would underflow first.
    factor = (scale / temperature * scale).clamp_max(_FLOAT32.max / (2 * width))
    return dots * factor
