"""Ready-made masked autoencoders: MAE, MAMP and HA-CM on any skeleton layout.

References:
    - MAE: He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022.
    - MAMP: Mao et al., "Masked Motion Predictors are Strong 3D Action Representation
      Learners", ICCV 2023.
    - HA-CM: Yin & Cao, "Spatial Hierarchy and Temporal Attention Guided Cross Masking for
      Self-supervised Skeleton-based Action Recognition", arXiv:2409.17951, 2024.
"""

from __future__ import annotations

from typing import Literal

from skelmask.layouts import SkeletonLayout, get_layout
from skelmask.losses import CrossContrastLoss
from skelmask.maskers import (
    CrossMasker,
    HyperbolicHierarchyMasker,
    Masker,
    MotionAwareMasker,
    RandomMasker,
)
from skelmask.models.encoder import SkeletonEncoder
from skelmask.models.mae import SkeletonMAE, Target
from skelmask.poincare import DEFAULT_CLIP_R

__all__ = ["Preset", "create_mae"]

Preset = Literal["mae", "mamp", "hacm"]
"""Names of the ``create_mae`` presets."""

_PRESETS: tuple[Preset, ...] = ("mae", "mamp", "hacm")


def create_mae(
    preset: Preset,
    *,
    layout: str | SkeletonLayout = "nturgb+d",
    num_frames: int = 120,
    t_patch: int = 4,
    in_channels: int = 3,
    embed_dim: int = 256,
    depth: int = 8,
    num_heads: int = 8,
    decoder_dim: int = 256,
    decoder_depth: int = 3,
    mask_ratio: float = 0.9,
    decoder_heads: int | None = None,
) -> SkeletonMAE:
    """Builds a ``SkeletonMAE`` in the configuration of a published method.

    * ``"mae"``: uniform ``RandomMasker``, coordinate target (He et al.).
    * ``"mamp"``: ``MotionAwareMasker`` (temperature 0.8, salient motion
      hidden), motion target (Mao et al.).
    * ``"hacm"``: ``CrossMasker.hacm`` — global temporal attention on even time patches and
      ``HyperbolicHierarchyMasker`` on odd ones, each hiding ``mask_ratio`` of its
      branch — a hyperbolic encoder, motion target and ``CrossContrastLoss``
      with its defaults (Yin & Cao). The masker's ball has the encoder's fixed curvature 1
      and clip radius, and is not learnable: masking scores carry no gradient, so a learnable
      masker curvature would never be updated (and would break DDP's
      ``find_unused_parameters=False``).

    Every target is normalised per patch. The joint count is the layout's; nothing is specific
    to NTU RGB+D. HA-CM's own configuration is ``num_frames=72, t_patch=3`` on 18 joints; MAMP's
    is ``num_frames=120, t_patch=4`` on 25.

    Args:
        preset: ``"mae"``, ``"mamp"`` or ``"hacm"``.
        layout: Skeleton layout or registered name; ``V = layout.num_joints``.
        num_frames: Frames per clip ``T``; a multiple of ``t_patch``.
        t_patch: Frames per token.
        in_channels: Coordinates per joint ``C``.
        embed_dim: Encoder width.
        depth: Encoder blocks.
        num_heads: Encoder attention heads.
        decoder_dim: Decoder width.
        decoder_depth: Decoder blocks.
        mask_ratio: Fraction of tokens hidden (per branch for ``"hacm"``).
        decoder_heads: Decoder attention heads; default ``num_heads``.

    Returns:
        The model, in training mode.

    Raises:
        ValueError: On an unknown preset or an invalid size or ratio.
        KeyError: If ``layout`` names no registered layout.

    Examples:
        >>> from skelmask.models import create_mae
        >>> mae = create_mae(
        ...     "hacm",
        ...     layout="msr-action3d",
        ...     num_frames=8,
        ...     embed_dim=16,
        ...     depth=1,
        ...     num_heads=2,
        ...     decoder_dim=8,
        ...     decoder_depth=1,
        ... )
        >>> out = mae(0.1 * torch.randn(2, 3, 8, 20, 1))  # (N, C, T, V, M), metres
        >>> sorted(out.losses), out.pred.shape
        (['contrast', 'reconstruction'], torch.Size([2, 40, 12]))
    """
    if preset not in _PRESETS:
        raise ValueError(f"preset must be one of {list(_PRESETS)}, got {preset!r}")
    skeleton = get_layout(layout)
    encoder = SkeletonEncoder(
        num_joints=skeleton.num_joints,
        num_frames=num_frames,
        t_patch=t_patch,
        in_channels=in_channels,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        hyperbolic=preset == "hacm",
        clip_r=DEFAULT_CLIP_R,
    )
    masker: Masker
    target: Target = "motion"
    contrast = None
    if preset == "mae":
        masker = RandomMasker(mask_ratio)
        target = "coords"
    elif preset == "mamp":
        masker = MotionAwareMasker(mask_ratio, t_patch=t_patch)
    else:
        spatial = HyperbolicHierarchyMasker(
            mask_ratio, layout=skeleton, curvature=1.0, clip_r=DEFAULT_CLIP_R
        )
        masker = CrossMasker.hacm(spatial, mask_ratio=mask_ratio)
        contrast = CrossContrastLoss()
    return SkeletonMAE(
        encoder,
        masker,
        decoder_dim=decoder_dim,
        decoder_depth=decoder_depth,
        decoder_heads=num_heads if decoder_heads is None else decoder_heads,
        target=target,
        contrast=contrast,
    )
