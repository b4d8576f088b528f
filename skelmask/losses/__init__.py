"""Losses of skeleton masked autoencoders: HA-CM's cross-contrast and masked reconstruction."""

from __future__ import annotations

from skelmask.losses.cosine import ScaledCosineError
from skelmask.losses.cross_contrast import CrossContrastLoss
from skelmask.losses.reconstruction import (
    MaskedReconstructionLoss,
    coordinate_target,
    motion_energy_weights,
    motion_target,
    normalize_patches,
)
from skelmask.losses.skelemix import (
    MoCoQueue,
    SkeleMixContrastLoss,
    SkeleMixLogits,
    SkeleMixLosses,
)

__all__ = [
    "CrossContrastLoss",
    "MaskedReconstructionLoss",
    "MoCoQueue",
    "ScaledCosineError",
    "SkeleMixContrastLoss",
    "SkeleMixLogits",
    "SkeleMixLosses",
    "coordinate_target",
    "motion_energy_weights",
    "motion_target",
    "normalize_patches",
]
