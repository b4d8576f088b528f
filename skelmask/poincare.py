"""The Poincaré-ball embedding layer: Euclidean tokens to points of a hyperbolic ball.

HA-CM's encoder feeds ball points to its transformer, and its spatial masker measures geodesic
distances between them. The maths lives in branch-free functions that trace under
``torch.compile``; this module holds the layer.

Reference: Yin & Cao, "Spatial Hierarchy and Temporal Attention Guided Cross Masking for
Self-supervised Skeleton-based Action Recognition", arXiv:2409.17951.
"""

from __future__ import annotations

import warnings
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from skelmask import _poincare
from skelmask._checks import check_flags, check_positive, check_tensor

__all__ = ["DEFAULT_CLIP_R", "PoincareEmbedding"]

DEFAULT_CLIP_R = 2.3
"""Default tangent-norm clip: at ``c = 1`` points reach radius ``tanh(2.3) ≈ 0.980``.

That stays inside float32's projection radius 0.996 (``artanh(0.996) ≈ 3.1``) while distances
still reach ``2·2.3 = 4.6`` from the origin, the strongly hyperbolic regime. 2.3 is also the
``clip_r`` default of Ermolov et al.'s ``hyp_metric`` code (Guo et al.'s feature clipping,
arXiv:2107.11472), there with ``c = 0.1``.
"""


def _poincare_ball(curvature: float, learnable: bool) -> nn.Module:
    # Imported here, not at module level: geoopt is slow to import and decorates its maths with
    # the deprecated torch.jit.script, so `import skelmask` stays fast and warning-free.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated")
        import geoopt  # noqa: PLC0415

    ball: nn.Module = geoopt.PoincareBall(c=curvature, learnable=learnable)
    return ball


class PoincareEmbedding(nn.Module):
    """Maps Euclidean tokens into the Poincaré ball with a clipped exponential map.

    ``y = project(expmap0(min(1, clip_r/‖x‖)·x))`` on a ball of curvature ``-c``. The maths runs
    in float32 with autocast disabled, whatever the input dtype, because the ball's projection
    margin is below half precision's resolution. Gradients flow to the input (finite also at a
    zero vector) and, when learnable, to the curvature.

    The curvature lives in a ``geoopt.PoincareBall`` submodule (``.ball``), so the same
    parameter can be shared with geoopt's ``ManifoldParameter`` and Riemannian optimisers.

    Reference: Yin & Cao, arXiv:2409.17951 (HA-CM feeds ball points to its encoder). Unlike the
    official code, the tangent norm is clipped (Guo et al., arXiv:2107.11472): embeddings of
    norm 4-16 otherwise all land within float32 rounding of the boundary, so the ball points
    carry direction only and every hyperbolic distance saturates.

    Args:
        curvature: Curvature magnitude ``c > 0`` (the ball has curvature ``-c``). This *is* c:
            geoopt stores ``softplus⁻¹(c)``, so ``curvature=1.0`` gives exactly ``c = 1``.
        learnable_curvature: Whether ``c`` is a trainable parameter.
        clip_r: Maximum Euclidean norm of a tangent vector before the map, or None for no
            clipping. Keep ``clip_r·sqrt(c)`` below about 3.1 so points stay inside float32's
            projection radius.

    Raises:
        TypeError: If ``learnable_curvature`` is not a bool.
        ValueError: If ``curvature`` or ``clip_r`` is not a finite positive number.

    Examples:
        >>> embed = PoincareEmbedding(curvature=1.0, clip_r=2.3)
        >>> points = embed(torch.randn(2, 12, 25, 256) * 16)  # (B, Tp, Vp, D)
        >>> points.shape, points.dtype, bool(points.norm(dim=-1).max() < 0.99)
        (torch.Size([2, 12, 25, 256]), torch.float32, True)
    """

    def __init__(
        self,
        curvature: float = 1.0,
        *,
        learnable_curvature: bool = False,
        clip_r: float | None = DEFAULT_CLIP_R,
    ) -> None:
        super().__init__()
        check_flags(learnable_curvature=learnable_curvature)
        self.clip_r = None if clip_r is None else check_positive(clip_r, "clip_r")
        self.ball = _poincare_ball(check_positive(curvature, "curvature"), learnable_curvature)

    @property
    def curvature(self) -> torch.Tensor:
        """The curvature magnitude ``c``, a float32 0-d tensor (even after a dtype cast)."""
        # Read from the raw parameter rather than geoopt's `c` property so that a module cast
        # to bf16 still yields float32 maths.
        return F.softplus(self._isp_c.float())

    @property
    def _isp_c(self) -> torch.Tensor:
        return cast(torch.Tensor, self.ball.isp_c)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Maps tokens into the ball.

        Args:
            tokens: Euclidean vectors ``(..., D)``, any float dtype.

        Returns:
            Float32 points ``(..., D)`` with ``sqrt(c)·‖y‖ ≤ 1 - 4e-3``.

        Raises:
            TypeError: If ``tokens`` is not a ``torch.Tensor``.
        """
        check_tensor(tokens, "tokens")
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            return _poincare.expmap0(tokens.float(), self.curvature, clip_r=self.clip_r)

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        learnable = self._isp_c.requires_grad
        return (
            f"curvature={float(self.curvature):.4g}, learnable_curvature={learnable}, "
            f"clip_r={self.clip_r}"
        )
