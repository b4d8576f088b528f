"""skelmask: masking strategies for self-supervised skeleton-based action recognition.

Maskers are ``nn.Module``s that decide which tokens of a skeleton token grid an encoder sees;
they drop into any masked autoencoder. See the README for a 30-second example.

The package root holds what a user imports first: the maskers, the losses, the skeleton
layouts and the token helpers. The reference models, data readers and training engine live in
``skelmask.models``, ``skelmask.data`` and ``skelmask.training``; the sampler in
``skelmask.sampling``; the Poincaré-ball layer in ``skelmask.poincare``.
"""

from __future__ import annotations

from skelmask.layouts import SkeletonLayout, get_layout, list_layouts, register_layout
from skelmask.losses import (
    CrossContrastLoss,
    MaskedReconstructionLoss,
    MoCoQueue,
    ScaledCosineError,
    SkeleMixContrastLoss,
    coordinate_target,
    motion_target,
    normalize_patches,
)
from skelmask.maskers import (
    BodyPartMasker,
    CrossMasker,
    DegreeMotionMasker,
    GlobalAttentionMasker,
    HyperbolicHierarchyMasker,
    MaskContext,
    Masker,
    MotionAwareMasker,
    Priority,
    RandomMasker,
    RatioSchedule,
    SaliencyMasker,
    ScoreGuidedMasker,
    SemanticTubeMasker,
    SkeleMix,
    degree_motion_views,
    mask_pool,
)
from skelmask.sampling import num_hidden_tokens
from skelmask.tokens import (
    MaskedTokens,
    MaskResult,
    expand_mask,
    flatten_grid,
    gather_tokens,
    mask_result_from_bool,
    patchify,
    restore_tokens,
    to_index_pair,
    to_mae_mask,
    token_positions,
    unflatten_tokens,
    unpatchify,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "BodyPartMasker",
    "CrossContrastLoss",
    "CrossMasker",
    "DegreeMotionMasker",
    "GlobalAttentionMasker",
    "HyperbolicHierarchyMasker",
    "MaskContext",
    "MaskResult",
    "MaskedReconstructionLoss",
    "MaskedTokens",
    "Masker",
    "MoCoQueue",
    "MotionAwareMasker",
    "Priority",
    "RandomMasker",
    "RatioSchedule",
    "SaliencyMasker",
    "ScaledCosineError",
    "ScoreGuidedMasker",
    "SemanticTubeMasker",
    "SkeleMix",
    "SkeleMixContrastLoss",
    "SkeletonLayout",
    "__version__",
    "coordinate_target",
    "degree_motion_views",
    "expand_mask",
    "flatten_grid",
    "gather_tokens",
    "get_layout",
    "list_layouts",
    "mask_pool",
    "mask_result_from_bool",
    "motion_target",
    "normalize_patches",
    "num_hidden_tokens",
    "patchify",
    "register_layout",
    "restore_tokens",
    "to_index_pair",
    "to_mae_mask",
    "token_positions",
    "unflatten_tokens",
    "unpatchify",
]
