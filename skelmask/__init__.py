"""skelmask: masking strategies for self-supervised skeleton-based action recognition.

Maskers are ``nn.Module``s that decide which tokens of a ``(B, Tp, Vp, D)`` skeleton token grid an
encoder sees; they drop into any masked autoencoder. See the README for a 30-second example.
"""

from __future__ import annotations

from skelmask import distributed
from skelmask.layouts import SkeletonLayout, get_layout, list_layouts, register_layout
from skelmask.losses import (
    CrossContrastLoss,
    MaskedReconstructionLoss,
    coordinate_target,
    motion_target,
    normalize_patches,
)
from skelmask.maskers import (
    CrossMasker,
    GlobalAttentionMasker,
    HyperbolicHierarchyMasker,
    MaskDecision,
    Masker,
    MotionAwareMasker,
    PoincareEmbedding,
    RandomMasker,
    ScoreGuidedMasker,
)
from skelmask.sampling import gumbel_topk, num_hidden_tokens, sample_hidden, scores_to_logits
from skelmask.tokens import (
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
    "CrossContrastLoss",
    "CrossMasker",
    "GlobalAttentionMasker",
    "HyperbolicHierarchyMasker",
    "MaskDecision",
    "MaskResult",
    "MaskedReconstructionLoss",
    "Masker",
    "MotionAwareMasker",
    "PoincareEmbedding",
    "RandomMasker",
    "ScoreGuidedMasker",
    "SkeletonLayout",
    "__version__",
    "coordinate_target",
    "distributed",
    "expand_mask",
    "flatten_grid",
    "gather_tokens",
    "get_layout",
    "gumbel_topk",
    "list_layouts",
    "mask_result_from_bool",
    "motion_target",
    "normalize_patches",
    "num_hidden_tokens",
    "patchify",
    "register_layout",
    "restore_tokens",
    "sample_hidden",
    "scores_to_logits",
    "to_index_pair",
    "to_mae_mask",
    "token_positions",
    "unflatten_tokens",
    "unpatchify",
]
