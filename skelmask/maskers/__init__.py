"""Maskers: ``nn.Module``s that decide which tokens of a skeleton token grid the encoder sees."""

from __future__ import annotations

from skelmask.maskers.attention import GlobalAttentionMasker
from skelmask.maskers.base import MaskDecision, Masker, ScoreGuidedMasker
from skelmask.maskers.body_part import BodyPartMasker, PartGranularity
from skelmask.maskers.cross import CrossMasker, Partition, PartitionFn, PartitionName
from skelmask.maskers.hyperbolic import DEFAULT_CLIP_R, HyperbolicHierarchyMasker, PoincareEmbedding
from skelmask.maskers.motion import MotionAwareMasker
from skelmask.maskers.random import Granularity, RandomMasker
from skelmask.maskers.skelemix import SkeleMix, SkeleMixResult, mask_pool

__all__ = [
    "DEFAULT_CLIP_R",
    "BodyPartMasker",
    "CrossMasker",
    "GlobalAttentionMasker",
    "Granularity",
    "HyperbolicHierarchyMasker",
    "MaskDecision",
    "Masker",
    "MotionAwareMasker",
    "PartGranularity",
    "Partition",
    "PartitionFn",
    "PartitionName",
    "PoincareEmbedding",
    "RandomMasker",
    "ScoreGuidedMasker",
    "SkeleMix",
    "SkeleMixResult",
    "mask_pool",
]
