"""Skeleton data: readers, prepared files, a procedural default dataset and transforms.

Everything here uses the ``(N, C, T, V, M)`` dataset-boundary convention of pyskl and MAMP:
``SkeletonArrays`` holds a whole dataset, ``SkeletonDataset`` turns it into
fixed-window ``(C, window, V, M)`` training or evaluation clips. Readers cover raw NTU RGB+D
60/120, PKU-MMD, MAMP/CTR-GCN ``.npz``, pyskl pickles, MSR Action3D and NW-UCLA; each reports
what it rejected and cleaned in a ``ReadReport``.
"""

from __future__ import annotations

from skelmask.data.arrays import SkeletonArrays
from skelmask.data.dataset import (
    SkeletonDataset,
    crop_and_resize,
    reflect_indices,
    rotate,
    rotation_matrix,
    shear,
    shear_matrix,
    to_velocity,
)
from skelmask.data.errors import ReadReport, SkeletonFileError
from skelmask.data.formats import load_npz, load_pyskl
from skelmask.data.msr_action3d import load_msr_action3d
from skelmask.data.ntu import (
    NTU_BENCHMARKS,
    NTUName,
    clean_ntu_sequence,
    load_ntu,
    ntu_split,
    parse_ntu_name,
    read_ntu_skeleton,
)
from skelmask.data.nw_ucla import load_nw_ucla
from skelmask.data.pku_mmd import load_pku_mmd, read_pku_labels, read_pku_skeleton
from skelmask.data.prepared import (
    PREPARED_FORMAT,
    load_prepared,
    read_prepared_metadata,
    save_prepared,
)
from skelmask.data.synthetic import generate_synthetic_actions, synthetic_splits
from skelmask.data.view import ViewJoints, normalize_view, view_joints

__all__ = [
    "NTU_BENCHMARKS",
    "PREPARED_FORMAT",
    "NTUName",
    "ReadReport",
    "SkeletonArrays",
    "SkeletonDataset",
    "SkeletonFileError",
    "ViewJoints",
    "clean_ntu_sequence",
    "crop_and_resize",
    "generate_synthetic_actions",
    "load_msr_action3d",
    "load_npz",
    "load_ntu",
    "load_nw_ucla",
    "load_pku_mmd",
    "load_prepared",
    "load_pyskl",
    "normalize_view",
    "ntu_split",
    "parse_ntu_name",
    "read_ntu_skeleton",
    "read_pku_labels",
    "read_pku_skeleton",
    "read_prepared_metadata",
    "reflect_indices",
    "rotate",
    "rotation_matrix",
    "save_prepared",
    "shear",
    "shear_matrix",
    "synthetic_splits",
    "to_velocity",
    "view_joints",
]
