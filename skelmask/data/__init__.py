"""Skeleton data: in-memory arrays, a procedural default dataset, MSR Action3D and transforms.

Everything here uses the ``(N, C, T, V, M)`` dataset-boundary convention of pyskl and MAMP:
:class:`SkeletonArrays` holds a whole dataset, :class:`SkeletonDataset` turns it into
fixed-window ``(C, window, V, M)`` training or evaluation clips.
"""

from __future__ import annotations

from skelmask.data.arrays import SkeletonArrays
from skelmask.data.dataset import SkeletonDataset, crop_and_resize, rotate, rotation_matrix
from skelmask.data.msr_action3d import load_msr_action3d
from skelmask.data.synthetic import generate_synthetic_actions, synthetic_splits

__all__ = [
    "SkeletonArrays",
    "SkeletonDataset",
    "crop_and_resize",
    "generate_synthetic_actions",
    "load_msr_action3d",
    "rotate",
    "rotation_matrix",
    "synthetic_splits",
]
