"""View normalisation: every clip seen from the same body-centred frame of reference.

Cross-view protocols (NTU-60 xview, NTU-120 xset, NW-UCLA) compare clips filmed from different
cameras. pyskl's ``PreNormalize3D`` (from 2s-AGCN) removes the camera's position and orientation
before training; ``normalize_view`` is the same transform for any layout, through named joints:

1. **centre**: subtract the centre joint of the first body in its first valid frame;
2. **up**: rotate so that the first body's bottom → top spine vector in that frame is ``+z``;
3. **across**: rotate about ``z`` so that its right → left shoulder vector lies in the ``x-z``
   plane with a positive ``x`` component (Gram–Schmidt against the spine, so ``z`` stays
   exactly the spine; pyskl's second rotation may tilt it).

Frames in which a body's joints are all exactly zero (absent bodies, padded frames) stay zero;
a single joint at the origin is data. A clip whose spine or
shoulder vector has zero length in the reference frame (e.g. an all-zero clip) is only centred.
The result does not depend on the camera: normalising a rotated and shifted copy of a clip gives
the same coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from skelmask.layouts import SkeletonLayout, get_layout

__all__ = ["ViewJoints", "normalize_view", "view_joints"]

FloatArray = npt.NDArray[np.float32]

# Joint names tried, in order, for each role; the built-in 3D layouts all match one.
_CANDIDATES: dict[str, tuple[str, ...]] = {
    "bottom": ("spine_base", "hip_center"),
    "top": ("spine_mid", "spine"),
    "right_shoulder": ("right_shoulder",),
    "left_shoulder": ("left_shoulder",),
}

# Vectors shorter than this (in the data's units, metres for Kinect) define no direction.
_MIN_LENGTH = 1e-6


@dataclass(frozen=True)
class ViewJoints:
    """Joint indices that define the body frame.

    Attributes:
        center: Joint subtracted from every coordinate (pyskl: NTU's spine_mid).
        bottom: Lower end of the spine vector (NTU: spine_base).
        top: Upper end of the spine vector (NTU: spine_mid).
        right_shoulder: Start of the shoulder vector.
        left_shoulder: End of the shoulder vector.
    """

    center: int
    bottom: int
    top: int
    right_shoulder: int
    left_shoulder: int


def view_joints(
    layout: SkeletonLayout | str,
    *,
    center: str | None = None,
    bottom: str | None = None,
    top: str | None = None,
    right_shoulder: str | None = None,
    left_shoulder: str | None = None,
) -> ViewJoints:
    """The joints of a layout that define the body frame, by name.

    Each role defaults to the first joint of the layout with a conventional name (bottom:
    ``spine_base`` or ``hip_center``; top: ``spine_mid`` or ``spine``; the shoulders by their
    names); ``center`` defaults to ``top``, as in pyskl.

    Args:
        layout: Layout or registered name.
        center: Name of the centre joint.
        bottom: Name of the spine's lower joint.
        top: Name of the spine's upper joint.
        right_shoulder: Name of the right shoulder joint.
        left_shoulder: Name of the left shoulder joint.

    Returns:
        The joint indices.

    Raises:
        ValueError: If a role has no joint of a conventional name and none is given, or a
            given name is not a joint of the layout.

    Examples:
        >>> view_joints("nturgb+d")
        ViewJoints(center=1, bottom=0, top=1, right_shoulder=8, left_shoulder=4)
        >>> view_joints("msr-action3d").bottom  # hip_center
        6
    """
    resolved = get_layout(layout)
    given = {
        "bottom": bottom,
        "top": top,
        "right_shoulder": right_shoulder,
        "left_shoulder": left_shoulder,
    }
    names: dict[str, str] = {}
    for role, name in given.items():
        if name is None:
            found = [n for n in _CANDIDATES[role] if n in resolved.joint_names]
            if not found:
                raise ValueError(
                    f"layout {resolved.name!r} has no joint named {' or '.join(_CANDIDATES[role])}"
                    f" for the view's {role}; pass {role}= with one of {list(resolved.joint_names)}"
                )
            names[role] = found[0]
        else:
            names[role] = name
    names["center"] = names["top"] if center is None else center
    indices = {}
    for role, name in names.items():
        if name not in resolved.joint_names:
            raise ValueError(
                f"{role}={name!r} is not a joint of layout {resolved.name!r}; joints are "
                f"{list(resolved.joint_names)}"
            )
        indices[role] = resolved.joint_names.index(name)
    return ViewJoints(**indices)


def normalize_view(data: npt.ArrayLike, joints: ViewJoints | SkeletonLayout | str) -> FloatArray:
    """Centres and rotates every clip into its first body's frame (see the module docstring).

    Args:
        data: ``(N, C, T, V, M)`` coordinates with ``C = 3``, any float dtype.
        joints: The frame-defining joints, or a layout to take them from (``view_joints``).

    Returns:
        Float32 ``(N, 3, T, V, M)`` normalised coordinates; all-zero body frames stay zero.

    Raises:
        ValueError: If ``data`` is not 5-D with 3 coordinates, its joint count differs from the
            layout's, or a joint is out of range.

    Examples:
        >>> clip = np.random.default_rng(0).normal(size=(1, 3, 4, 25, 2))
        >>> out = normalize_view(clip, "nturgb+d")
        >>> bool(np.allclose(out[0, :, 0, 1, 0], 0.0))  # centre joint at the origin
        True
    """
    values = np.asarray(data, dtype=np.float64)
    if values.ndim != 5 or values.shape[1] != 3:
        raise ValueError(
            f"data must have shape (N, C=3, T, V, M) with 3D coordinates, got {values.shape}"
        )
    num_joints = values.shape[3]
    if isinstance(joints, ViewJoints):
        frame = joints
    else:
        layout = get_layout(joints)
        if layout.num_joints != num_joints:
            raise ValueError(
                f"data has V = {num_joints} joints but layout {layout.name!r} has "
                f"{layout.num_joints}"
            )
        frame = view_joints(layout)
    roles = (frame.center, frame.bottom, frame.top, frame.right_shoulder, frame.left_shoulder)
    if not all(0 <= joint < num_joints for joint in roles):
        raise ValueError(f"view joints {frame} must be indices below V = {num_joints}")
    points = values.transpose(0, 4, 2, 3, 1)  # (N, M, T, V, 3)
    # A body is absent from a frame when all its joints are zero; a single joint at the origin
    # is data (loaders centre clips on a joint).
    present = np.any(points != 0.0, axis=(-2, -1), keepdims=True)  # (N, M, T, 1, 1)
    reference = _reference_frames(points, present)  # (N, V, 3): body 0, first valid frame
    center = reference[:, frame.center]
    rotation = _rotations(
        reference[:, frame.top] - reference[:, frame.bottom],
        reference[:, frame.left_shoulder] - reference[:, frame.right_shoulder],
    )
    moved = points - center[:, None, None, None, :]
    rotated = np.einsum("nij,nmtvj->nmtvi", rotation, moved) * present
    return np.ascontiguousarray(rotated.transpose(0, 4, 2, 3, 1), dtype=np.float32)


def _reference_frames(
    points: npt.NDArray[np.float64], present: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """``(N, V, 3)`` joints of the first body in its first frame with any non-zero joint."""
    body = points[:, 0]  # (N, T, V, 3)
    valid = present[:, 0, :, 0, 0]  # (N, T)
    first = np.where(valid.any(axis=1), valid.argmax(axis=1), 0)
    return body[np.arange(body.shape[0]), first]


def _rotations(
    up: npt.NDArray[np.float64], across: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``(N, 3, 3)`` rotations whose rows are the body's x, y, z axes; identity if degenerate."""
    up_length = np.linalg.norm(up, axis=-1, keepdims=True)
    z = up / np.maximum(up_length, _MIN_LENGTH)
    across = across - np.sum(across * z, axis=-1, keepdims=True) * z
    across_length = np.linalg.norm(across, axis=-1, keepdims=True)
    x = across / np.maximum(across_length, _MIN_LENGTH)
    y = np.cross(z, x)
    rotation = np.stack([x, y, z], axis=1)
    degenerate = (up_length[:, 0] < _MIN_LENGTH) | (across_length[:, 0] < _MIN_LENGTH)
    rotation[degenerate] = np.eye(3)
    return rotation
