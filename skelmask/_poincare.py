"""Branch-free Poincaré-ball maths for curvature ``-c`` with ``c > 0``.

The ball is ``{x : c·‖x‖² < 1}``. These functions follow ``geoopt.PoincareBall`` (same formulas,
clamps and projection margin) but contain no data-dependent Python branches, so that they trace
under ``torch.compile(fullgraph=True)``; geoopt's own ``tan_k``/``artan_k`` branch on the sign of
the curvature and break the graph. They are tested against geoopt for equality.

The curvature ``c`` is a 0-d tensor so that it can be a learnable parameter. Points
and tangent vectors have the feature axis last. Run these in float32 or float64: in half
precision the projection margin is below the dtype's resolution and distances become infinite.

Reference for the role of these maps in masking: Yin & Cao, "Spatial Hierarchy and Temporal
Attention Guided Cross Masking for Self-supervised Skeleton-based Action Recognition",
arXiv:2409.17951.
"""

from __future__ import annotations

import torch

__all__ = [
    "artanh",
    "dist",
    "dist0",
    "expmap0",
    "midpoint",
    "mobius_add",
    "mobius_scalar_mul",
    "pairwise_dist",
    "project",
]

# geoopt's clamps: norms are floored so that x / ‖x‖ stays finite at the origin, tanh saturates
# in float32 beyond 15 anyway, and artanh's argument stays strictly inside (-1, 1).
_MIN_NORM = 1e-15
_TANH_MAX = 15.0
_ARTANH_MAX = 1.0 - 1e-7
# geoopt's projection margins: float32 cannot resolve a thinner shell near the boundary.
_EPS_FLOAT32 = 4e-3
_EPS_OTHER = 1e-5
# Floor of a squared Euclidean distance before its square root, so that the derivative of
# the root stays finite for coincident points.
_MIN_SQ_DIST = 1e-15


def artanh(x: torch.Tensor) -> torch.Tensor:
    """Inverse hyperbolic tangent with its argument clamped to ``±(1 - 1e-7)``.

    Args:
        x: Any shape.

    Returns:
        Same shape as ``x``; finite for every finite input.

    Examples:
        >>> artanh(torch.tensor([0.0, 2.0])).isfinite().all()
        tensor(True)
    """
    return x.clamp(-_ARTANH_MAX, _ARTANH_MAX).atanh()


def _norm(x: torch.Tensor, keepdim: bool = True) -> torch.Tensor:
    norm: torch.Tensor = torch.linalg.vector_norm(x, dim=-1, keepdim=keepdim)
    return norm.clamp_min(_MIN_NORM)


def project(x: torch.Tensor, c: torch.Tensor, eps: float | None = None) -> torch.Tensor:
    """Pulls points back inside the ball of radius ``(1 - eps) / sqrt(c)``.

    Args:
        x: Points ``(..., D)``.
        c: Positive curvature magnitude, a 0-d tensor.
        eps: Relative margin from the boundary; by default ``4e-3`` for float32 and ``1e-5``
            for other dtypes, as geoopt.

    Returns:
        ``(..., D)``; points already inside are unchanged.

    Examples:
        >>> project(torch.tensor([[3.0, 4.0]]), torch.tensor(1.0)).norm().item() < 1.0
        True
    """
    if eps is None:
        eps = _EPS_FLOAT32 if x.dtype == torch.float32 else _EPS_OTHER
    max_norm = (1.0 - eps) / c.sqrt()
    return x * (max_norm / _norm(x)).clamp(max=1.0)


def expmap0(
    u: torch.Tensor, c: torch.Tensor, *, clip_r: float | None = None, projected: bool = True
) -> torch.Tensor:
    """Exponential map at the origin, with optional feature clipping.

    ``expmap0(u) = tanh(sqrt(c)·‖u‖) · u / (sqrt(c)·‖u‖)``. With ``clip_r``, tangent vectors
    longer than ``clip_r`` are first shortened to norm ``clip_r`` (Guo et al., "Clipped
    Hyperbolic Classifiers Are Super-Hyperbolic Classifiers", arXiv:2107.11472), which keeps
    the image away from the boundary where float32 saturates; choose
    ``clip_r·sqrt(c) < artanh(1 - 4e-3) ≈ 3.1`` to stay inside the float32 projection radius.

    Args:
        u: Tangent vectors at the origin ``(..., D)``.
        c: Positive curvature magnitude, a 0-d tensor.
        clip_r: Maximum Euclidean norm of ``u``; None disables clipping.
        projected: Whether to ``project`` the result (geoopt's default).

    Returns:
        Points on the ball ``(..., D)``. The gradient is finite everywhere, also at ``u = 0``.

    Examples:
        >>> x = expmap0(torch.randn(4, 256) * 16, torch.tensor(1.0), clip_r=2.3)
        >>> bool((x.norm(dim=-1) < 0.99).all())
        True
    """
    if clip_r is not None:
        u = u * (clip_r / _norm(u)).clamp(max=1.0)
    sqrt_c = c.sqrt()
    scaled = sqrt_c * _norm(u)
    point = torch.tanh(scaled.clamp(max=_TANH_MAX)) / scaled * u
    return project(point, c) if projected else point


def mobius_add(x: torch.Tensor, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Möbius addition ``x ⊕ y``.

    Args:
        x: Points ``(..., D)``.
        y: Points broadcastable with ``x``.
        c: Positive curvature magnitude, a 0-d tensor.

    Returns:
        The broadcast shape ``(..., D)``.

    Examples:
        >>> x = torch.tensor([0.3, -0.2])
        >>> torch.allclose(mobius_add(-x, x, torch.tensor(1.0)), torch.zeros(2), atol=1e-7)
        True
    """
    x2 = x.pow(2).sum(dim=-1, keepdim=True)
    y2 = y.pow(2).sum(dim=-1, keepdim=True)
    xy = (x * y).sum(dim=-1, keepdim=True)
    numerator = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    denominator = 1 + 2 * c * xy + c.pow(2) * x2 * y2
    return numerator / denominator.clamp_min(_MIN_NORM)


def mobius_scalar_mul(r: torch.Tensor, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Möbius scalar multiplication ``r ⊗ x = tanh(r·artanh(sqrt(c)·‖x‖)) · x / (sqrt(c)·‖x‖)``.

    Args:
        r: Scalars broadcastable to ``(..., 1)``.
        x: Points ``(..., D)``.
        c: Positive curvature magnitude, a 0-d tensor.

    Returns:
        ``(..., D)``.

    Examples:
        >>> x = torch.tensor([0.3, -0.2])
        >>> torch.allclose(mobius_scalar_mul(torch.tensor(1.0), x, torch.tensor(1.0)), x)
        True
    """
    scaled = c.sqrt() * _norm(x)
    return torch.tanh((r * artanh(scaled)).clamp(-_TANH_MAX, _TANH_MAX)) / scaled * x


def dist(x: torch.Tensor, y: torch.Tensor, c: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
    """Geodesic distance ``(2 / sqrt(c)) · artanh(sqrt(c)·‖(-x) ⊕ y‖)``.

    This artanh-of-Möbius-difference form has a finite gradient at ``x = y``; the equivalent
    ``arccosh(1 + 2c‖x - y‖² / ((1 - c‖x‖²)(1 - c‖y‖²)))`` form has an infinite one there. HA-CM's
    official code also puts ``4‖x - y‖²`` (not ``2``) inside its arccosh and ignores ``c``.

    Args:
        x: Points ``(..., D)``.
        y: Points broadcastable with ``x``.
        c: Positive curvature magnitude, a 0-d tensor.
        keepdim: Keep the reduced feature axis as size 1.

    Returns:
        ``(...)`` distances, or ``(..., 1)`` with ``keepdim``.

    Examples:
        >>> c = torch.tensor(1.0)
        >>> dist(torch.zeros(2), torch.tensor([0.5, 0.0]), c)  # 2·artanh(0.5)
        tensor(1.0986)
    """
    difference = torch.linalg.vector_norm(mobius_add(-x, y, c), dim=-1, keepdim=keepdim)
    sqrt_c = c.sqrt()
    return 2.0 / sqrt_c * artanh(sqrt_c * difference)


def dist0(x: torch.Tensor, c: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
    """Geodesic distance to the origin, ``(2 / sqrt(c)) · artanh(sqrt(c)·‖x‖)``.

    Args:
        x: Points ``(..., D)``.
        c: Positive curvature magnitude, a 0-d tensor.
        keepdim: Keep the reduced feature axis as size 1.

    Returns:
        ``(...)`` distances, or ``(..., 1)`` with ``keepdim``.

    Examples:
        >>> dist0(torch.tensor([0.5, 0.0]), torch.tensor(1.0))
        tensor(1.0986)
    """
    sqrt_c = c.sqrt()
    return 2.0 / sqrt_c * artanh(sqrt_c * torch.linalg.vector_norm(x, dim=-1, keepdim=keepdim))


def pairwise_dist(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Geodesic distances between all pairs of a set of points.

    Uses the closed form ``sqrt(c)·‖(-x) ⊕ y‖ = sqrt(c)·Δ / sqrt(c·Δ² + (1 - c‖x‖²)(1 - c‖y‖²))``
    with ``Δ = ‖x - y‖`` summed from coordinate differences (``torch.cdist`` without its Gram
    shortcut), so memory is ``O(N²)`` rather than the ``O(N²·D)`` of broadcasting
    ``mobius_add`` over all pairs. The diagonal is exactly zero, other identical points are
    only the gradient-keeping floor apart (about 1e-6), and close points keep their relative
    accuracy: the Gram form ``‖x‖² + ‖y‖² - 2x·y`` cancels catastrophically
    there, and its rounding depends on the BLAS's summation order.

    Args:
        x: Sets of points ``(..., N, D)``.
        c: Positive curvature magnitude, a 0-d tensor.

    Returns:
        Symmetric ``(..., N, N)`` distances. The gradient is finite everywhere.

    Examples:
        >>> points = expmap0(torch.randn(2, 5, 8), torch.tensor(1.0))
        >>> pairwise_dist(points, torch.tensor(1.0)).shape
        torch.Size([2, 5, 5])
    """
    sq_norms = x.pow(2).sum(dim=-1)
    euclidean = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    sq_dist = euclidean.square().clamp_min(_MIN_SQ_DIST)
    conformal = (1 - c * sq_norms).clamp_min(_MIN_NORM)
    denominator = c * sq_dist + conformal.unsqueeze(-1) * conformal.unsqueeze(-2)
    sqrt_c = c.sqrt()
    distances = 2.0 / sqrt_c * artanh(sqrt_c * (sq_dist / denominator).sqrt())
    eye = torch.eye(x.shape[-2], dtype=torch.bool, device=x.device)
    return distances.masked_fill(eye, 0.0)


def midpoint(x: torch.Tensor, c: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Gyromidpoint (Ungar's Möbius midpoint) of a set of points.

    ``m = ½ ⊗ (Σ wᵢ λᵢ xᵢ / Σ wᵢ (λᵢ - 1))`` with the conformal factor
    ``λᵢ = 2 / (1 - c‖xᵢ‖²)``; it equals geoopt's ``weighted_midpoint`` and is the Einstein
    midpoint of the Klein model mapped to the ball. The midpoint of one point is that point
    and of ``{x, -x}`` is the origin. HA-CM's code takes a Euclidean mean of ball points instead.

    Args:
        x: Sets of points ``(..., N, D)``.
        c: Positive curvature magnitude, a 0-d tensor.
        weights: Optional non-negative ``(..., N)`` weights; equal weights by default.

    Returns:
        ``(..., D)`` midpoints, projected into the ball.

    Examples:
        >>> c = torch.tensor(1.0)
        >>> x = torch.tensor([[0.5, 0.0], [-0.5, 0.0]])
        >>> midpoint(x, c).abs().max().item() < 1e-6
        True
    """
    conformal = 2.0 / (1 - c * x.pow(2).sum(dim=-1, keepdim=True)).clamp_min(_MIN_NORM)
    scale = torch.ones_like(conformal) if weights is None else weights.unsqueeze(-1)
    numerator = (scale * conformal * x).sum(dim=-2)
    # λ ≥ 2 inside the ball, so this only vanishes when every weight is zero.
    denominator = (scale * (conformal - 1)).sum(dim=-2).clamp_min(1e-10)
    # full_like fills on c's device; new_tensor(0.5) would copy from the host and, on CUDA, wait.
    half = torch.full_like(c, 0.5)
    return project(mobius_scalar_mul(half, numerator / denominator, c), c)
