"""Reference models: the skeleton transformer encoder, a masked autoencoder and a classifier.

``create_mae("mae" | "mamp" | "hacm")`` builds the pretraining model of MAE (He et al., CVPR
2022), MAMP (Mao et al., ICCV 2023) or HA-CM (Yin & Cao, arXiv:2409.17951), with its own masker
or another one (``masker="tube"`` for SLiM's semantic tubes, ``"joint-tube"`` for random whole
joints, see ``create_masker``); its ``encoder`` then goes into a ``SkeletonClassifier`` for
linear probing or fine-tuning.
"""

from __future__ import annotations

from skelmask.models.blocks import MLP, Attention, Block, DropPath
from skelmask.models.classifier import HeadKind, SkeletonClassifier, encoder_state_from_mae
from skelmask.models.encoder import SkeletonEncoder
from skelmask.models.gin import GINEncoder, GINLayer, GINSkeletonMAE
from skelmask.models.mae import MAEOutput, Target, TransformerMAE
from skelmask.models.presets import (
    PRESET_MASKERS,
    PRESET_TARGETS,
    MaskerName,
    Preset,
    create_mae,
    create_masker,
)
from skelmask.models.skelemixclr import SkeleMixCLR, SkeleMixCLROutput, random_shear
from skelmask.models.stgcn import STGCN, STGCNBlock, spatial_partition

__all__ = [
    "MLP",
    "PRESET_MASKERS",
    "PRESET_TARGETS",
    "STGCN",
    "Attention",
    "Block",
    "DropPath",
    "GINEncoder",
    "GINLayer",
    "GINSkeletonMAE",
    "HeadKind",
    "MAEOutput",
    "MaskerName",
    "Preset",
    "STGCNBlock",
    "SkeleMixCLR",
    "SkeleMixCLROutput",
    "SkeletonClassifier",
    "SkeletonEncoder",
    "Target",
    "TransformerMAE",
    "create_mae",
    "create_masker",
    "encoder_state_from_mae",
    "random_shear",
    "spatial_partition",
]
