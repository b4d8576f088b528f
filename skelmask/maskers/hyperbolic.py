"""Joint-hierarchy masking in the Poincaré ball: the spatial criterion of HA-CM.

Reference: Yin & Cao, "Spatial Hierarchy and Temporal Attention Guided Cross Masking for
Self-supervised Skeleton-based Action Recognition", arXiv:2409.17951.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from skelmask import _poincare
from skelmask._checks import check_positive, check_token_grid
from skelmask.layouts import SkeletonLayout, get_layout
from skelmask.maskers.base import ScoreGuidedMasker
from skelmask.sampling import Direction

__all__ = ["DEFAULT_CLIP_R", "HyperbolicHierarchyMasker", "PoincareEmbedding"]

DEFAULT_CLIP_R = 2.3
"""Default tangent-norm clip: at ``c = 1`` points reach radius ``tanh(2.3) ≈ 0.980``.

That stays inside float32's projection radius 0.996 (``artanh(0.996) ≈ 3.1``) while distances
still reach ``2·2.3 = 4.6`` from the origin, the strongly hyperbolic regime. 2.3 is also the
``clip_r`` default of Ermolov et al.'s ``hyp_metric`` code (Guo et al.'s feature clipping,
arXiv:2107.11472), there with ``c = 0.1``.
"""

# Below this spread (in curvature units) the distance sums of a time patch differ only by float32
# rounding (about 1e-7 relative to sums of order 100), which standardising must not amplify.
_MIN_PATCH_STD = 1e-3


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
        """
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            return _poincare.expmap0(tokens.float(), self.curvature, clip_r=self.clip_r)

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        learnable = self._isp_c.requires_grad
        return (
            f"curvature={float(self.curvature):.4g}, learnable_curvature={learnable}, "
            f"clip_r={self.clip_r}"
        )


class HyperbolicHierarchyMasker(ScoreGuidedMasker):
    """HA-CM's spatial criterion: joints that sit high in a hyperbolic hierarchy stay visible.

    Every token is mapped into the Poincaré ball by ``PoincareEmbedding`` (clipped
    ``expmap0``). Per time patch, the root ("father") point is the gyromidpoint of the root
    joints' points, and token ``(t, v)`` scores

    ``s[t, v] = Σ_w d(y[t, v], y[t, w]) + root_weight · d(y[t, v], root[t])``,

    its total geodesic distance to the other joints of the same time patch plus a weighted
    distance to the root point. Points near the boundary (leaf-like in Poincaré-embedding terms)
    and isolated joints score high. With ``standardize`` (default) the scores of each time
    patch are shifted and scaled to zero mean and unit standard deviation before sampling,
    because the shared sampler divides by ``temperature · max|s|`` and raw distance sums share a
    large common offset (``min/max ≈ 1``), which makes the softmax almost uniform, i.e. random
    masking (HA-CM's own spatial branch measured a probability ratio of only 1.05-1.4). An
    optional kinematic-depth prior adds ``depth_weight · depth[v] / max_depth`` from the
    layout's tree. Sampling is the shared Gumbel-top-k; by default (``"keep_high"``, HA-CM)
    high-score tokens preferentially stay visible. Scores carry no gradient.

    Reference: Yin & Cao, "Spatial Hierarchy and Temporal Attention Guided Cross Masking for
    Self-supervised Skeleton-based Action Recognition", arXiv:2409.17951 (§1.6-1.7 and §2 of
    ``hacm.md``). Deliberate differences from the official code:

    * the exact Poincaré distance (the code puts ``4‖x - y‖²`` rather than ``2‖x - y‖²`` inside
      its arccosh and ignores ``c``), in the artanh form whose gradient is finite at zero;
    * the root point is the hyperbolic gyromidpoint, not a Euclidean mean of ball points;
    * tangent-norm clipping, without which typical embeddings saturate at the boundary;
    * scores are returned in the tokens' own time-major order ``l = t·Vp + v`` (the code
      flattened them joint-major against frame-major tokens, scoring the wrong tokens);
    * ``root_weight`` (code: a hard-coded 0.01), ``mask_ratio`` and ``temperature`` are
      honoured, and scores are standardised per time patch (``standardize=False`` gives the
      raw sums the code sampled from).

    The criterion covers every joint of the layout, root joints included; to score only
    HA-CM's 18 non-root joints, compose it over a region (see ``CrossMasker``).

    Args:
        mask_ratio: Fraction of tokens hidden, in (0, 1). HA-CM: 0.9.
        layout: Skeleton layout or registered name; the grid's joint axis must have
            ``layout.num_joints`` entries (one token per joint, ``v_patch = 1``).
        root_joints: Joint indices of the root point, or the name of a layout subset or body
            part. Default: the layout's ``"hacm_root"`` subset if it has one (NTU's 7 torso
            joints), else the tree's root.
        curvature: Curvature magnitude ``c > 0`` of the ball. HA-CM: 1.
        learnable_curvature: Whether ``c`` is a parameter (it reaches the loss only through a
            model that shares ``embedding``; the scores carry no gradient).
        clip_r: Tangent-norm clip before ``expmap0`` (see ``DEFAULT_CLIP_R``), or None.
            Tokens longer than ``clip_r`` all land on one sphere, so for them the score reflects
            angular isolation only; scale tokens below ``clip_r`` to keep radial depth.
        root_weight: Weight ``≥ 0`` of the root-distance term. HA-CM: 0.01, which weighs the
            root about 1/(100·(V-1)) as much as the pairwise sum; use about ``V - 1`` for the
            root to count as much as all other joints together.
        depth_weight: Weight of the kinematic-depth prior; 0 (default) disables it, positive
            values favour deep (leaf) joints, negative values the root. Added after
            standardisation, so 1 is comparable to one standard deviation of the distances.
        standardize: Standardise scores per time patch before sampling (see above).
        temperature: ``tau`` of the shared sampler. HA-CM: 0.9.
        direction: ``"keep_high"`` (HA-CM) or ``"hide_high"``.

    Raises:
        ValueError: On invalid arguments (curvature or clip_r ≤ 0, an unknown root subset, a
            root joint out of range, a negative root weight), or at call time when the grid's
            joint axis does not match the layout.
        KeyError: If ``layout`` names no registered layout.

    Examples:
        >>> masker = HyperbolicHierarchyMasker(mask_ratio=0.9, layout="nturgb+d")
        >>> result = masker(torch.randn(2, 12, 25, 256) * 8)  # (B, Tp, Vp, D)
        >>> result.ids_keep.shape, result.scores.shape
        (torch.Size([2, 30]), torch.Size([2, 300]))
    """

    root_index: torch.Tensor
    depth_prior: torch.Tensor

    def __init__(
        self,
        mask_ratio: float = 0.9,
        *,
        layout: SkeletonLayout | str = "nturgb+d",
        root_joints: Sequence[int] | str | None = None,
        curvature: float = 1.0,
        learnable_curvature: bool = False,
        clip_r: float | None = DEFAULT_CLIP_R,
        root_weight: float = 0.01,
        depth_weight: float = 0.0,
        standardize: bool = True,
        temperature: float = 0.9,
        direction: Direction = "keep_high",
    ) -> None:
        super().__init__(mask_ratio, temperature, direction)
        self.layout = get_layout(layout)
        self.root_joints = _resolve_root_joints(self.layout, root_joints)
        root_weight = float(root_weight)
        if not (math.isfinite(root_weight) and root_weight >= 0.0):
            raise ValueError(f"root_weight must be a finite number ≥ 0, got {root_weight!r}")
        depth_weight = float(depth_weight)
        if not math.isfinite(depth_weight):
            raise ValueError(f"depth_weight must be a finite number, got {depth_weight!r}")
        self.root_weight = root_weight
        self.depth_weight = depth_weight
        self.standardize = bool(standardize)
        self.embedding = PoincareEmbedding(
            curvature, learnable_curvature=learnable_curvature, clip_r=clip_r
        )
        depth = torch.tensor(self.layout.depth, dtype=torch.float32)
        self.register_buffer(
            "root_index", torch.tensor(self.root_joints, dtype=torch.long), persistent=False
        )
        self.register_buffer("depth_prior", depth / max(self.layout.max_depth, 1), persistent=False)

    @property
    def ball(self) -> nn.Module:
        """The ``geoopt.PoincareBall`` holding the curvature."""
        return self.embedding.ball

    @property
    def curvature(self) -> torch.Tensor:
        """The curvature magnitude ``c``, a float32 0-d tensor."""
        return self.embedding.curvature

    def hierarchy_scores(self, tokens: torch.Tensor) -> torch.Tensor:
        """Raw hyperbolic scores: distance sums plus the weighted root distance.

        Args:
            tokens: Token grid ``(B, Tp, Vp, D)``, any float dtype, with
                ``Vp = layout.num_joints``.

        Returns:
            Float32 ``(B, Tp, Vp)`` non-negative scores in the grid's own order, detached.

        Raises:
            ValueError: If the grid is malformed or ``Vp`` differs from the layout's joints.

        Examples:
            >>> masker = HyperbolicHierarchyMasker(layout="msr-action3d", root_joints="trunk")
            >>> masker.hierarchy_scores(torch.randn(2, 10, 20, 64)).shape
            torch.Size([2, 10, 20])
        """
        _, _, joint_patches, _ = check_token_grid(tokens)
        if joint_patches != self.layout.num_joints:
            raise ValueError(
                f"HyperbolicHierarchyMasker needs one token per joint of layout "
                f"{self.layout.name!r}: expected Vp = {self.layout.num_joints} on the tokens' "
                f"joint axis, got Vp = {joint_patches} (tokens of shape {tuple(tokens.shape)})"
            )
        with torch.no_grad(), torch.autocast(device_type=tokens.device.type, enabled=False):
            c = self.curvature
            points = self.embedding(tokens.detach())
            roots = _poincare.midpoint(points.index_select(2, self.root_index), c)
            spread = _poincare.pairwise_dist(points, c).sum(dim=-1)
            to_root = _poincare.dist(points, roots.unsqueeze(2), c)
            return spread + self.root_weight * to_root

    def score(self, tokens: torch.Tensor, *, coords: torch.Tensor | None = None) -> torch.Tensor:
        """Scores the sampler draws from: standardised hierarchy scores plus the depth prior.

        Args:
            tokens: Token grid ``(B, Tp, Vp, D)`` with ``Vp = layout.num_joints``.
            coords: Ignored; the criterion reads the tokens only.

        Returns:
            Float32 ``(B, Tp, Vp)`` scores, detached. With ``standardize`` every time patch has
            zero mean and unit standard deviation before the depth prior is added.
        """
        scores = self.hierarchy_scores(tokens)
        if self.standardize:
            centred = scores - scores.mean(dim=-1, keepdim=True)
            spread = centred.pow(2).mean(dim=-1, keepdim=True).sqrt()
            scores = centred / spread.clamp_min(_MIN_PATCH_STD)
        if self.depth_weight != 0.0:
            scores = scores + self.depth_weight * self.depth_prior.float()
        return scores

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        return (
            f"{super().extra_repr()}, layout={self.layout.name!r}, "
            f"root_joints={self.root_joints}, root_weight={self.root_weight}, "
            f"depth_weight={self.depth_weight}, standardize={self.standardize}"
        )


def _resolve_root_joints(
    layout: SkeletonLayout, root_joints: Sequence[int] | str | None
) -> tuple[int, ...]:
    if root_joints is None:
        return layout.subsets.get("hacm_root", (layout.root,))
    if isinstance(root_joints, str):
        try:
            return layout.subset(root_joints)
        except KeyError:
            known = sorted([*layout.subsets, *layout.body_parts])
            raise ValueError(
                f"root_joints={root_joints!r} is not a subset or body part of layout "
                f"{layout.name!r}; known: {known}"
            ) from None
    joints = tuple(int(j) for j in root_joints)
    if not joints:
        raise ValueError("root_joints must name at least one joint, got an empty sequence")
    bad = [j for j in joints if not 0 <= j < layout.num_joints]
    if bad:
        raise ValueError(
            f"root_joints {bad} are outside [0, {layout.num_joints}) for layout {layout.name!r}"
        )
    if len(set(joints)) != len(joints):
        raise ValueError(f"root_joints repeats a joint: {list(joints)}")
    return joints
