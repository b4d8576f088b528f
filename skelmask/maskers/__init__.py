"""Maskers: ``nn.Module``s that decide which tokens of a skeleton token grid the encoder sees."""

from __future__ import annotations

from skelmask.maskers.base import MaskDecision, Masker, ScoreGuidedMasker
from skelmask.maskers.motion import MotionAwareMasker
from skelmask.maskers.random import RandomMasker

__all__ = [
    "MaskDecision",
    "Masker",
    "MotionAwareMasker",
    "RandomMasker",
    "ScoreGuidedMasker",
]
