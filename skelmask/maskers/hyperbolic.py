"""Joint-hierarchy masking in the Poincaré ball: the spatial criterion of HA-CM.

Reference: Yin & Cao, "Spatial Hierarchy and Temporal Attention Guided Cross Masking for
Self-supervised Skeleton-based Action Recognition", arXiv:2409.17951.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence

import torch

from skelmask import _poincare
from skelmask._checks import as_integers, check_flags, check_positive
from skelmask.layouts import SkeletonLayout, get_layout
from skelmask.maskers.base import MaskContext, ScoreGuidedMasker
from skelmask.poincare import DEFAULT_CLIP_R, PoincareEmbedding
from skelmask.sampling import Direction

__all__ = ["HyperbolicHierarchyMasker"]

# Below this spread (in curvature units) the distance sums of a time patch differ only by float32
# rounding (about 1e-7 relative to sums of order 100), which standardising must not amplify.
_MIN_PATCH_STD = 1e-3

# The first call warns when more than this share of tokens is longer than clip_r.
_CLIPPED_SHARE_WARNING = 0.5


class HyperbolicHierarchyMasker(ScoreGuidedMasker):
    """HA-CM's spatial criterion: joints that sit high in a hyperbolic hierarchy stay visible.

    Every token is mapped into the Poincaré ball by a clipped exponential map
    (``y = expmap0(min(1, clip_r/‖x‖)·x)``, as ``PoincareEmbedding``). Per time patch, the root
    ("father") point is the gyromidpoint of the root points, and token ``(t, v)`` scores

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

    **Where the root points come from.** HA-CM masks an 18-joint grid and keeps its 7 torso
    joints *outside* the grid. Pass their tokens at call time, ``root_tokens=(B, Tp, R, D)``
    (embedded like the grid's tokens), with a layout over the grid's joints, e.g.
    ``get_layout("nturgb+d").select("hacm_tokens")``. Without ``root_tokens`` the root joints
    are joints of the grid (``root_joints``).

    **Token scale.** Tokens longer than ``clip_r`` all land on one sphere, so for them the score
    reflects angular isolation only. The first call in eager mode measures the share of clipped
    tokens and warns once if it is above half; scale the tokens (or raise ``clip_r``, keeping
    ``clip_r·sqrt(c)`` below about 3.1) to keep radial depth. ``clipped_share`` measures it
    at any time.

    Reference: Yin & Cao, "Spatial Hierarchy and Temporal Attention Guided Cross Masking for
    Self-supervised Skeleton-based Action Recognition", arXiv:2409.17951. Deliberate differences
    from the official code (``docs/hacm.md`` lists each):

    * the exact Poincaré distance (the code puts ``4‖x - y‖²`` rather than ``2‖x - y‖²`` inside
      its arccosh and ignores ``c``), in the artanh form whose gradient is finite at zero;
    * the root point is the hyperbolic gyromidpoint, not a Euclidean mean of ball points;
    * tangent-norm clipping, without which typical embeddings saturate at the boundary;
    * scores are returned in the tokens' own time-major order ``l = t·Vp + v`` (the code
      flattened them joint-major against frame-major tokens, scoring the wrong tokens);
    * ``root_weight`` (code: a hard-coded 0.01), ``mask_ratio`` and ``temperature`` are
      honoured, and scores are standardised per time patch (``standardize=False`` gives the
      raw sums the code sampled from).

    Args:
        mask_ratio: Fraction of tokens hidden, in (0, 1). HA-CM: 0.9.
        layout: Skeleton layout or registered name; the grid's joint axis must have
            ``layout.num_joints`` entries (one token per joint, ``v_patch = 1``).
        root_joints: Joint indices of the in-grid root point, or the name of a layout subset
            or body part. Default: the layout's ``"hacm_root"`` subset if it has one (NTU's 7
            torso joints), else the tree's root. Not used for a call given ``root_tokens``.
        curvature: Curvature magnitude ``c > 0`` of the ball. HA-CM: 1.
        learnable_curvature: Whether ``c`` is a parameter (held by ``embedding``, a
            ``PoincareEmbedding``; it reaches a loss only through a model that shares it, since
            the scores carry no gradient). With a fixed curvature (default) the masker has no
            parameters and adds nothing to its host's ``state_dict``.
        clip_r: Tangent-norm clip before ``expmap0`` (see ``DEFAULT_CLIP_R``), or None.
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
        TypeError: If ``learnable_curvature`` or ``standardize`` is not a bool.
        ValueError: On invalid arguments (curvature or clip_r ≤ 0, an unknown root subset, a
            root joint out of range, a negative root weight), or at call time when the grid's
            joint axis does not match the layout or ``root_tokens`` does not fit the grid.
        KeyError: If ``layout`` names no registered layout.

    Examples:
        >>> masker = HyperbolicHierarchyMasker(mask_ratio=0.9, layout="nturgb+d")
        >>> result = masker(torch.randn(2, 12, 25, 256) * 0.1)  # (B, Tp, Vp, D)
        >>> result.ids_keep.shape, result.scores.shape
        (torch.Size([2, 30]), torch.Size([2, 300]))
        >>> from skelmask import get_layout
        >>> hacm = HyperbolicHierarchyMasker(layout=get_layout("nturgb+d").select("hacm_tokens"))
        >>> grid, torso = torch.randn(2, 24, 18, 64) * 0.1, torch.randn(2, 24, 7, 64) * 0.1
        >>> hacm(grid, root_tokens=torso).num_keep  # HA-CM's 18-joint grid, 7 roots outside
        43
    """

    root_index: torch.Tensor
    depth_prior: torch.Tensor
    fixed_curvature: torch.Tensor

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
        check_flags(learnable_curvature=learnable_curvature, standardize=standardize)
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
        self.clip_r = None if clip_r is None else check_positive(clip_r, "clip_r")
        curvature = check_positive(curvature, "curvature")
        self.embedding: PoincareEmbedding | None = None
        if learnable_curvature:
            self.embedding = PoincareEmbedding(curvature, learnable_curvature=True, clip_r=clip_r)
        # Buffers follow the module's device; they are configuration, hence not persistent.
        self.register_buffer("fixed_curvature", torch.tensor(curvature), persistent=False)
        depth = torch.tensor(self.layout.depth, dtype=torch.float32)
        self.register_buffer(
            "root_index", torch.tensor(self.root_joints, dtype=torch.long), persistent=False
        )
        self.register_buffer("depth_prior", depth / max(self.layout.max_depth, 1), persistent=False)
        self._scale_checked = False

    @property
    def curvature(self) -> torch.Tensor:
        """The curvature magnitude ``c``, a float32 0-d tensor."""
        if self.embedding is not None:
            return self.embedding.curvature
        return self.fixed_curvature.float()

    @property
    def call_inputs(self) -> frozenset[str]:
        """Reads ``root_tokens=`` ``(B, Tp, R, D)``: root points outside the grid."""
        return frozenset({"root_tokens"})

    def to_ball(self, tokens: torch.Tensor) -> torch.Tensor:
        """Maps tokens ``(..., D)`` into the ball: float32 points ``(..., D)``, no autocast."""
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            return _poincare.expmap0(tokens.float(), self.curvature, clip_r=self.clip_r)

    def clipped_share(self, tokens: torch.Tensor) -> float:
        """Share of tokens ``(..., D)`` longer than ``clip_r`` (0 without clipping).

        Reads a value back from the device; meant for monitoring, not for every step.
        """
        if self.clip_r is None:
            return 0.0
        norms = tokens.detach().float().norm(dim=-1)
        return float((norms > self.clip_r).float().mean())

    def hierarchy_scores(
        self, tokens: torch.Tensor, root_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Raw hyperbolic scores: distance sums plus the weighted root distance.

        Args:
            tokens: Token grid ``(B, Tp, Vp, D)``, any float dtype, with
                ``Vp = layout.num_joints``.
            root_tokens: Optional ``(B, Tp, R, D)`` root tokens outside the grid; without them
                the root point is the midpoint of the ``root_joints`` of the grid.

        Returns:
            Float32 ``(B, Tp, Vp)`` non-negative scores in the grid's own order, detached.

        Raises:
            ValueError: If ``Vp`` differs from the layout's joints or ``root_tokens`` does not
                fit the grid.

        Examples:
            >>> masker = HyperbolicHierarchyMasker(layout="msr-action3d", root_joints="trunk")
            >>> masker.hierarchy_scores(0.1 * torch.randn(2, 10, 20, 64)).shape
            torch.Size([2, 10, 20])
        """
        batch, time_patches, joint_patches, width = tokens.shape
        if joint_patches != self.layout.num_joints:
            raise ValueError(
                f"HyperbolicHierarchyMasker needs one token per joint of layout "
                f"{self.layout.name!r}: expected Vp = {self.layout.num_joints} on the tokens' "
                f"joint axis, got Vp = {joint_patches} (tokens of shape {tuple(tokens.shape)})"
            )
        if root_tokens is not None and (
            root_tokens.dim() != 4
            or tuple(root_tokens.shape[:2]) != (batch, time_patches)
            or root_tokens.shape[2] < 1
            or root_tokens.shape[3] != width
        ):
            raise ValueError(
                f"root_tokens must have shape (B, Tp, R, D) = ({batch}, {time_patches}, R≥1, "
                f"{width}) to match the token grid, got {tuple(root_tokens.shape)}"
            )
        with torch.no_grad():
            self._warn_if_clipped(tokens)
            c = self.curvature
            points = self.to_ball(tokens.detach())
            if root_tokens is None:
                root_points = points.index_select(2, self.root_index)
            else:
                root_points = self.to_ball(root_tokens.detach())
            with torch.autocast(device_type=tokens.device.type, enabled=False):
                roots = _poincare.midpoint(root_points, c)
                spread = _poincare.pairwise_dist(points, c).sum(dim=-1)
                to_root = _poincare.dist(points, roots.unsqueeze(2), c)
            return spread + self.root_weight * to_root

    def score(self, context: MaskContext) -> torch.Tensor:
        """Scores the sampler draws from: standardised hierarchy scores plus the depth prior.

        Args:
            context: The call's inputs: the grid ``(B, Tp, Vp, D)`` with
                ``Vp = layout.num_joints`` and the optional ``root_tokens``.

        Returns:
            Float32 ``(B, Tp, Vp)`` scores, detached. With ``standardize`` every time patch has
            zero mean and unit standard deviation before the depth prior is added.
        """
        scores = self.hierarchy_scores(context.tokens, context.root_tokens)
        if self.standardize:
            centred = scores - scores.mean(dim=-1, keepdim=True)
            spread = centred.pow(2).mean(dim=-1, keepdim=True).sqrt()
            scores = centred / spread.clamp_min(_MIN_PATCH_STD)
        if self.depth_weight != 0.0:
            scores = scores + self.depth_weight * self.depth_prior.float()
        return scores

    def _warn_if_clipped(self, tokens: torch.Tensor) -> None:
        """Warns once, on the first eager call, when most tokens are clipped."""
        if self._scale_checked or torch.compiler.is_compiling():
            return
        self._scale_checked = True
        share = self.clipped_share(tokens)
        if share > _CLIPPED_SHARE_WARNING:
            warnings.warn(
                f"HyperbolicHierarchyMasker: {share:.0%} of the tokens are longer than "
                f"clip_r={self.clip_r} and land on one sphere of the ball, so the hierarchy score "
                "sees only their directions. Scale the tokens down (or raise clip_r) to keep "
                "radial depth; see docs/hacm.md",
                UserWarning,
                stacklevel=_caller_stacklevel(),
            )

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        return (
            f"{super().extra_repr()}, layout={self.layout.name!r}, "
            f"root_joints={self.root_joints}, curvature={float(self.curvature):.4g}, "
            f"clip_r={self.clip_r}, root_weight={self.root_weight}, "
            f"depth_weight={self.depth_weight}, standardize={self.standardize}"
        )


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside skelmask and torch.

    For ``warnings.warn`` called by the function that calls this one. The masker is reached
    through ``nn.Module.__call__``, ``Masker.forward`` and, inside a ``CrossMasker``, more
    frames, so no fixed level names the user's line.
    """
    level, frame = 2, sys._getframe(2)  # level 2: the warning function's caller
    while frame.f_back is not None and frame.f_globals.get("__name__", "").partition(".")[0] in (
        "skelmask",
        "torch",
    ):
        frame, level = frame.f_back, level + 1
    return level


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
    joints = as_integers(root_joints, "root_joints")
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
