"""Maskers: ``nn.Module``s that decide which tokens of a skeleton token grid the encoder sees."""

from __future__ import annotations

from skelmask.maskers.attention import GlobalAttentionMasker
from skelmask.maskers.base import (
    MaskContext,
    MaskDecision,
    Masker,
    Priority,
    Region,
    ScoreGuidedMasker,
)
from skelmask.maskers.body_part import BodyPartMasker, PartDraw
from skelmask.maskers.cross import CrossMasker, Partition, PartitionFn, PartitionName
from skelmask.maskers.degree import DegreeMotionMasker, DegreeMotionView, degree_motion_views
from skelmask.maskers.hyperbolic import HyperbolicHierarchyMasker
from skelmask.maskers.motion import MotionAwareMasker
from skelmask.maskers.random import Granularity, RandomMasker
from skelmask.maskers.ratio import RatioSchedule, RatioSpec
from skelmask.maskers.saliency import SaliencyMasker
from skelmask.maskers.skelemix import SkeleMix, SkeleMixResult, mask_pool
from skelmask.maskers.tube import SemanticTubeMasker

__all__ = [
    "BodyPartMasker",
    "CrossMasker",
    "DegreeMotionMasker",
    "DegreeMotionView",
    "GlobalAttentionMasker",
    "Granularity",
    "HyperbolicHierarchyMasker",
    "MaskContext",
    "MaskDecision",
    "Masker",
    "MotionAwareMasker",
    "PartDraw",
    "Partition",
    "PartitionFn",
    "PartitionName",
    "Priority",
    "RandomMasker",
    "RatioSchedule",
    "RatioSpec",
    "Region",
    "SaliencyMasker",
    "ScoreGuidedMasker",
    "SemanticTubeMasker",
    "SkeleMix",
    "SkeleMixResult",
    "degree_motion_views",
    "mask_pool",
]
