"""Procedural skeleton actions on any layout: a small, deterministic default dataset.

Every sample is a skeleton of the chosen layout moved by forward kinematics:

1. **Rest pose.** Joints whose names contain a known keyword (``"shoulder"``, ``"elbow"``,
   ``"knee"``, …, sided by ``"left"``/``"right"``) get an anatomical rest position (metres, y up,
   the subject faces +z, left is +x); other joints hang 0.15 m from their parent, siblings fanned out
   in the x-y plane. The rest pose is shifted so that the root sits at the origin.
2. **Class program.** Each class rotates 1–3 class-specific non-leaf joints (a rotation at a joint
   moves its whole subtree) about 1–3 axes with angles ``A · sin(2π f u + φ)`` over the normalised
   valid time ``u ∈ [0, 1]``, with a class-specific amplitude ``A`` (0.25–0.9 rad), frequency ``f``
   (0.5–2 cycles) and phase ``φ``. Classes depend only on ``(layout, num_classes, class_seed)``.
3. **Per-sample variation.** Speed (×0.8–1.25), amplitude (×0.7–1.3), a phase shift uniform in
   ±2.5 rad shared by the sample's joints (so a class shows in which joints move, how far, how
   fast and in which relative phase, not in its absolute phase), random "fidgeting" oscillations
   of every non-leaf joint (amplitude std 0.2 rad), body scale (×0.85–1.15), a global yaw of ±45°
   with a small tilt, a translation and 1 cm Gaussian noise. Valid lengths are uniform in
   ``[ceil(max_frames / 2), max_frames]``; the frames after them are zero.

The classes are learnable but not linearly trivial: a ridge classifier on the raw coordinates,
resampled to 16 frames, scores about 0.55–0.77 on ``synthetic_splits`` with 10 classes (chance
0.10) over the built-in layouts and seeds 0–3 (checked in ``tests/data/test_synthetic.py``).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from skelmask.data.arrays import SkeletonArrays
from skelmask.data.dataset import _check_count, rotation_matrix
from skelmask.layouts import SkeletonLayout, get_layout

__all__ = ["generate_synthetic_actions", "synthetic_splits"]

FloatArray = npt.NDArray[np.floating]
_DTYPE = np.float32  # the generator computes in float32: it is several times faster than float64

# Rest positions (x for a left joint, y up, z forward) by name keyword; the first match wins, so
# specific keywords come before the general ones they contain.
_REST_POSITIONS: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("hand_tip", (0.24, 0.74, 0.08)),
    ("thumb", (0.20, 0.81, 0.11)),
    ("spine_base", (0.0, 0.95, 0.0)),
    ("hip_center", (0.0, 0.95, 0.0)),
    ("spine_mid", (0.0, 1.2, 0.0)),
    ("spine_shoulder", (0.0, 1.45, 0.0)),
    ("shoulder_center", (0.0, 1.45, 0.0)),
    ("spine", (0.0, 1.2, 0.0)),
    ("neck", (0.0, 1.53, 0.0)),
    ("head", (0.0, 1.7, 0.02)),
    ("nose", (0.0, 1.63, 0.1)),
    ("eye", (0.035, 1.67, 0.08)),
    ("ear", (0.075, 1.65, 0.0)),
    ("shoulder", (0.19, 1.45, 0.0)),
    ("elbow", (0.22, 1.16, -0.02)),
    ("wrist", (0.24, 0.9, 0.03)),
    ("hand", (0.24, 0.83, 0.05)),
    ("hip", (0.1, 0.93, 0.0)),
    ("knee", (0.11, 0.5, 0.03)),
    ("ankle", (0.11, 0.08, -0.02)),
    ("foot", (0.11, 0.02, 0.12)),
)
_FALLBACK_BONE = 0.15  # metres, for joints without a keyword
_NOISE_STD = 0.01  # metres
_FIDGET_STD = 0.2  # radians
_PHASE_JITTER = 2.5  # radians, per sample (shared by its joints): the phase is nearly random
_MAX_YAW = np.pi / 4  # radians
_PARTNER_DISTANCE = 1.5  # metres between the two bodies when num_persons = 2


def generate_synthetic_actions(
    num_samples: int,
    *,
    num_classes: int = 10,
    layout: str = "nturgb+d",
    max_frames: int = 64,
    num_persons: int = 1,
    seed: int = 0,
    class_seed: int = 0,
) -> SkeletonArrays:
    """Generates procedural skeleton actions (see the module docstring for the recipe).

    Labels are balanced (class counts differ by at most one) and shuffled. The output depends only
    on the arguments: the same ``seed`` gives identical arrays, a different ``seed`` different
    samples of the same classes; ``class_seed`` picks a different set of class programs.

    Args:
        num_samples: Number of samples ``N``, at least 1.
        num_classes: Number of classes, at least 1.
        layout: Name of a registered layout; any built-in layout works.
        max_frames: Padded frame count ``T``, at least 1.
        num_persons: ``M``, 1 or 2. The second body is a copy of the first turned by 180° about the
            vertical axis, its root 1.5 m in front of the first root (facing it), with its own
            noise.
        seed: Seed of the per-sample variation.
        class_seed: Seed of the class programs.

    Returns:
        A dataset with ``data`` of shape ``(N, 3, max_frames, V, num_persons)``, names
        ``"synthetic-<seed>-<n>"``.

    Raises:
        ValueError: If a count is out of range.
        KeyError: If ``layout`` is not registered.

    Examples:
        >>> from skelmask.data import generate_synthetic_actions
        >>> arrays = generate_synthetic_actions(8, num_classes=4, layout="coco", max_frames=16)
        >>> arrays.data.shape, arrays.labels.tolist().count(0)
        ((8, 3, 16, 17, 1), 2)
    """
    _check_count(num_samples, "num_samples")
    _check_count(num_classes, "num_classes")
    _check_count(max_frames, "max_frames")
    if num_persons not in (1, 2):
        raise ValueError(f"num_persons must be 1 or 2, got {num_persons!r}")
    skeleton = get_layout(layout)
    rng = np.random.default_rng(seed)

    labels = rng.permutation(np.arange(num_samples) % num_classes)
    lengths = rng.integers(math.ceil(max_frames / 2), max_frames + 1, size=num_samples)

    # Angles (N, T, K, 3) of the K movable joints: the class program, varied per sample, plus
    # fidgeting. Leaves and the root never rotate locally (the root gets the global orientation).
    movable = _movable_joints(skeleton)
    amplitude, frequency, phase = _class_programs(skeleton, movable, num_classes, class_seed)
    speed = rng.uniform(0.8, 1.25, size=(num_samples, 1))
    gain = rng.uniform(0.7, 1.3, size=(num_samples, 1, 1))
    time = np.arange(max_frames) / np.maximum(lengths - 1, 1)[:, None]  # (N, T)
    angles = _oscillation(
        time,
        amplitude[labels] * gain,
        frequency[labels] * speed,
        phase[labels] + rng.uniform(-_PHASE_JITTER, _PHASE_JITTER, size=(num_samples, 1, 1)),
    )
    angles += _oscillation(
        time,
        rng.normal(0.0, _FIDGET_STD, size=(num_samples, len(movable), 3)),
        rng.uniform(0.5, 2.0, size=(num_samples, len(movable))),
        rng.uniform(0.0, 2 * np.pi, size=(num_samples, len(movable), 3)),
    )

    orientation = rotation_matrix(
        np.stack(
            [
                rng.uniform(-0.1, 0.1, num_samples),
                rng.uniform(-_MAX_YAW, _MAX_YAW, num_samples),
                rng.uniform(-0.1, 0.1, num_samples),
            ],
            axis=-1,
        ).astype(_DTYPE)
    )  # (N, 3, 3)
    scale = rng.uniform(0.85, 1.15, size=num_samples).astype(_DTYPE)
    coords = _forward_kinematics(skeleton, movable, angles, orientation, scale)  # (N, T, V, 3)
    bodies = [coords]
    if num_persons == 2:
        facing = rotation_matrix(np.array([0.0, np.pi, 0.0], dtype=_DTYPE))
        partner = coords @ facing.T
        partner[..., 2] += _PARTNER_DISTANCE
        bodies.append(partner)
    data = np.stack(bodies, axis=-1)  # (N, T, V, 3, M)
    data[..., [0, 2], :] += rng.normal(0.0, 0.1, size=(num_samples, 1, 1, 2, 1)).astype(_DTYPE)
    data += _NOISE_STD * rng.standard_normal(size=data.shape, dtype=_DTYPE)
    data[np.arange(max_frames)[None, :] >= lengths[:, None]] = 0.0
    return SkeletonArrays(
        data=np.ascontiguousarray(data.transpose(0, 3, 1, 2, 4), dtype=np.float32),
        labels=labels,
        lengths=lengths,
        layout=skeleton.name,
        num_classes=num_classes,
        names=[f"synthetic-{seed}-{n}" for n in range(num_samples)],
    )


def synthetic_splits(
    *,
    num_train: int = 600,
    num_test: int = 200,
    num_classes: int = 10,
    layout: str = "nturgb+d",
    max_frames: int = 64,
    seed: int = 0,
) -> tuple[SkeletonArrays, SkeletonArrays]:
    """A train and a test split of the same procedural classes, with disjoint random samples.

    Both splits use ``class_seed=seed``; the train split uses sample seed ``2·seed`` and the test
    split ``2·seed + 1``, so that splits of different seeds never share samples.

    Args:
        num_train: Training samples, at least 1.
        num_test: Test samples, at least 1.
        num_classes: Number of classes.
        layout: Name of a registered layout.
        max_frames: Padded frame count ``T``.
        seed: Seed of the classes and of both splits.

    Returns:
        ``(train, test)``, each as ``generate_synthetic_actions`` returns, with ``M = 1``.

    Examples:
        >>> from skelmask.data import synthetic_splits
        >>> train, test = synthetic_splits(num_train=6, num_test=3, num_classes=3, max_frames=8)
        >>> len(train), len(test), train.data.shape[1:]
        (6, 3, (3, 8, 25, 1))
    """
    train = generate_synthetic_actions(
        num_train,
        num_classes=num_classes,
        layout=layout,
        max_frames=max_frames,
        seed=2 * seed,
        class_seed=seed,
    )
    test = generate_synthetic_actions(
        num_test,
        num_classes=num_classes,
        layout=layout,
        max_frames=max_frames,
        seed=2 * seed + 1,
        class_seed=seed,
    )
    return train, test


def _oscillation(
    time: FloatArray, amplitude: FloatArray, frequency: FloatArray, phase: FloatArray
) -> FloatArray:
    """``A · sin(2π f u + φ)`` of shape (N, T, K, 3) from u (N, T), A (N, K, 3), f (N, K), φ (N, K, 3)."""
    time, amplitude, frequency, phase = (
        a.astype(_DTYPE) for a in (time, amplitude, frequency, phase)
    )
    argument = (2 * np.pi) * time[:, :, None, None] * frequency[:, None, :, None] + phase[:, None]
    result: FloatArray = amplitude[:, None] * np.sin(argument)
    return result


def _movable_joints(layout: SkeletonLayout) -> list[int]:
    """Non-root joints with children (rotating them moves a bone); the root if there are none."""
    movable = [j for j, kids in enumerate(layout.children) if kids and j != layout.root]
    return movable or [layout.root]


def _class_programs(
    layout: SkeletonLayout, movable: list[int], num_classes: int, class_seed: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Amplitudes (C, K, 3), frequencies (C, K), phases (C, K, 3) of C classes on K movable joints."""
    rng = np.random.default_rng([class_seed, num_classes, layout.num_joints])
    amplitude = np.zeros((num_classes, len(movable), 3))
    frequency = np.zeros((num_classes, len(movable)))
    phase = np.zeros((num_classes, len(movable), 3))
    for label in range(num_classes):
        count = int(rng.integers(1, min(3, len(movable)) + 1))
        for joint in rng.choice(len(movable), size=count, replace=False):
            axes = rng.permutation(3)[: int(rng.integers(1, 4))]
            amplitude[label, joint, axes] = rng.uniform(0.25, 0.9, axes.size) * rng.choice(
                [-1.0, 1.0], axes.size
            )
            frequency[label, joint] = rng.choice([0.5, 1.0, 1.5, 2.0])
            phase[label, joint] = rng.uniform(0.0, 2 * np.pi, 3)
    return amplitude, frequency, phase


def _rest_offsets(layout: SkeletonLayout) -> FloatArray:
    """Bone vectors (V, 3) from each joint's parent to the joint in the rest pose (root: zero)."""
    positions = np.zeros((layout.num_joints, 3))
    known = np.zeros(layout.num_joints, dtype=bool)
    for joint, name in enumerate(layout.joint_names):
        lowered = name.lower()
        for keyword, (x, y, z) in _REST_POSITIONS:
            if keyword in lowered:
                side = 1.0 if "left" in lowered else -1.0 if "right" in lowered else 0.0
                positions[joint] = (side * x, y, z)
                known[joint] = True
                break
    offsets = np.zeros((layout.num_joints, 3))
    for joint in _tree_order(layout):
        parent = layout.parents[joint]
        if parent < 0:
            continue
        offset = positions[joint] - positions[parent]
        if not known[joint] or np.linalg.norm(offset) < 1e-3:
            siblings = layout.children[parent]
            angle = np.pi / 2 + 2 * np.pi * siblings.index(joint) / len(siblings)
            offset = _FALLBACK_BONE * np.array([np.cos(angle), np.sin(angle), 0.0])
            positions[joint] = positions[parent] + offset
        offsets[joint] = offset
    return offsets


def _tree_order(layout: SkeletonLayout) -> list[int]:
    """Joint indices with every parent before its children."""
    depth = layout.depth
    return sorted(range(layout.num_joints), key=lambda joint: depth[joint])


def _forward_kinematics(
    layout: SkeletonLayout,
    movable: list[int],
    angles: FloatArray,
    orientation: FloatArray,
    scale: FloatArray,
) -> FloatArray:
    """Joint positions (N, T, V, 3) from the local angles (N, T, K, 3) of the ``movable`` joints.

    The root sits at the origin with global rotation ``orientation`` (N, 3, 3); a joint's local
    rotation turns the bones of its whole subtree about it; bones are scaled by ``scale`` (N,).
    """
    offsets = _rest_offsets(layout).astype(_DTYPE)
    local = rotation_matrix(np.ascontiguousarray(np.moveaxis(angles, 2, 0)))  # (K, N, T, 3, 3)
    slot = {joint: k for k, joint in enumerate(movable)}
    positions: dict[int, FloatArray] = {}  # (N, T or 1, 3) of every joint
    world: dict[int, FloatArray] = {}  # (N, T or 1, 3, 3) orientation of every joint's subtree
    for joint in _tree_order(layout):
        parent = layout.parents[joint]
        if parent < 0:
            frame = orientation[:, None]
            positions[joint] = np.zeros((1, 1, 3), dtype=_DTYPE)
        else:
            frame = world[parent]
            # frame @ offset, written out: numpy's matmul is slow on stacks of tiny matrices.
            x, y, z = offsets[joint]
            bone = frame[..., 0] * x + frame[..., 1] * y + frame[..., 2] * z
            bone *= scale[:, None, None]
            positions[joint] = positions[parent] + bone
        if layout.children[joint]:
            world[joint] = frame @ local[slot[joint]] if joint in slot else frame
    shape = (*angles.shape[:2], 3)
    return np.stack([np.broadcast_to(positions[j], shape) for j in range(layout.num_joints)], 2)
