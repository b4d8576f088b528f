from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from skelmask.data import (
    SkeletonArrays,
    crop_and_resize,
    generate_synthetic_actions,
    normalize_view,
    synthetic_splits,
)
from skelmask.data.synthetic import _time_warp
from skelmask.layouts import SkeletonLayout, get_layout, list_layouts, register_layout

BUILT_IN = ["coco", "msr-action3d", "nturgb+d", "nw-ucla", "openpose"]
# Tracking-error tiers of the NTU joints, as the module docstring lists them.
EXTREMITIES = [
    f"{side}_{part}"
    for side in ("left", "right")
    for part in ("wrist", "hand", "hand_tip", "thumb", "ankle", "foot")
]
LIMBS = ["left_elbow", "right_elbow", "left_knee", "right_knee", "head"]
TORSO = ["spine_base", "spine_mid", "neck", "spine_shoulder"] + [
    f"{side}_{part}" for side in ("left", "right") for part in ("shoulder", "hip")
]


def bone_lengths(arrays: SkeletonArrays) -> np.ndarray:
    """Bone lengths (N, T, bones, M) from data (N, C, T, V, M)."""
    child, parent = np.array(get_layout(arrays.layout).edges).T
    return np.linalg.norm(arrays.data[:, :3, :, child] - arrays.data[:, :3, :, parent], axis=1)


def valid_frames(arrays: SkeletonArrays) -> np.ndarray:
    """(N, T) mask of the frames before each sample's length."""
    return np.arange(arrays.data.shape[2])[None, :] < arrays.lengths[:, None]


def lost_joints(arrays: SkeletonArrays) -> np.ndarray:
    """(N, T, V, M) joint-frames that read exactly zero or exactly repeat the previous frame.

    With jitter on every coordinate neither happens to a tracked joint (in camera space, where no
    joint is centred on the origin), so these are the dropped joint-frames, except frozen ones in
    frame 0, which hold their own value.
    """
    data = arrays.data
    lost = (data == 0.0).all(axis=1)
    lost[:, 1:] |= (data[:, :, 1:] == data[:, :, :-1]).all(axis=1)
    return lost


def robust_std(values: np.ndarray, mask: np.ndarray, axis: int) -> np.ndarray:
    """1.4826 × the median absolute deviation of the ``mask``ed ``values`` along ``axis``."""
    masked = np.where(mask, values, np.nan)
    median = np.nanmedian(masked, axis=axis, keepdims=True)
    return 1.4826 * np.nanmedian(np.abs(masked - median), axis=axis)


def resampled(arrays: SkeletonArrays, frames: int) -> np.ndarray:
    """Every sample's valid frames resampled to ``frames``: (N, C, frames, V, M)."""
    return np.stack(
        [
            crop_and_resize(arrays.data[n], 0, int(arrays.lengths[n]), frames)
            for n in range(len(arrays))
        ]
    )


def raw_features(arrays: SkeletonArrays) -> np.ndarray:
    """(N, F) raw coordinates resampled to 16 frames."""
    return resampled(arrays, 16).reshape(len(arrays), -1)


def motion_features(arrays: SkeletonArrays) -> np.ndarray:
    """(N, F) statistics of the first body's joint-pair distances over 24 resampled frames.

    Distances do not change with the viewpoint, dividing by the sample's median distance removes
    its size, and the temporal std, median and magnitudes of the five lowest Fourier
    frequencies of each pair's distance do not change with the phase.
    """
    points = resampled(arrays, 24)[..., 0].transpose(0, 2, 3, 1)  # (N, T, V, 3)
    first, second = np.triu_indices(points.shape[2], 1)
    distance = np.linalg.norm(points[:, :, first] - points[:, :, second], axis=-1)  # (N, T, P)
    distance /= np.median(distance, axis=(1, 2), keepdims=True)
    spectrum = np.abs(np.fft.rfft(distance - distance.mean(1, keepdims=True), axis=1))[:, 1:6]
    return np.concatenate(
        [distance.std(1), np.median(distance, 1), spectrum.reshape(len(arrays), -1)], axis=1
    )


def ridge_accuracy(
    train: SkeletonArrays,
    test: SkeletonArrays,
    features: Callable[[SkeletonArrays], np.ndarray] = raw_features,
) -> float:
    """Test accuracy of a ridge classifier (λ = 10) on standardised ``features``."""
    x_train, x_test = features(train), features(test)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train = np.c_[(x_train - mean) / std, np.ones(len(x_train))]
    x_test = np.c_[(x_test - mean) / std, np.ones(len(x_test))]
    targets = np.eye(train.num_classes)[train.labels]
    weights = np.linalg.solve(
        x_train.T @ x_train + 10.0 * np.eye(x_train.shape[1]), x_train.T @ targets
    )
    return float(((x_test @ weights).argmax(1) == test.labels).mean())


@pytest.mark.parametrize(
    "kwargs", [{}, {"num_persons": 2, "camera_space": True, "layout": "openpose"}]
)
def test_same_seed_gives_identical_arrays(kwargs: dict[str, Any]) -> None:
    a = generate_synthetic_actions(50, seed=3, **kwargs)
    b = generate_synthetic_actions(50, seed=3, **kwargs)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    assert a.names == b.names


def test_different_seed_gives_different_samples() -> None:
    a = generate_synthetic_actions(50, seed=3)
    b = generate_synthetic_actions(50, seed=4)
    assert not np.array_equal(a.data, b.data)
    assert not np.array_equal(a.lengths, b.lengths)


def test_class_seed_changes_the_classes_only_through_the_motion() -> None:
    a = generate_synthetic_actions(20, seed=0, class_seed=0)
    b = generate_synthetic_actions(20, seed=0, class_seed=1)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    assert not np.allclose(a.data, b.data)


@pytest.mark.parametrize("layout", BUILT_IN)
def test_every_built_in_layout(layout: str) -> None:
    arrays = generate_synthetic_actions(40, num_classes=5, layout=layout, max_frames=24)
    num_joints = get_layout(layout).num_joints
    assert arrays.data.shape == (40, 3, 24, num_joints, 1)
    assert arrays.data.dtype == np.float32
    assert arrays.layout == layout
    assert np.isfinite(arrays.data).all()
    bones = bone_lengths(arrays)[:, :12]  # (N, 12, bones, M); every sample has >= 12 frames
    child, parent = np.array(get_layout(layout).edges).T
    lost = lost_joints(arrays)[:, :12]
    tracked = ~(lost[:, :, child] | lost[:, :, parent])
    # Every bone has a real length (no two joints collapse) and keeps it over time up to the
    # jitter: forward kinematics rotates bones, it never stretches them. The jitter is at most
    # 0.8 cm per coordinate at either end, so a bone's length varies by at most 1.13 cm (std).
    assert np.nanmedian(np.where(tracked, bones, np.nan), axis=1).min() > 0.02
    assert np.nanmedian(robust_std(bones, tracked, axis=1)) < 0.0113
    # Joints move: the class programs are not a static pose.
    assert arrays.data[:, :, :12].std(axis=2).mean() > 0.01


def test_layout_without_known_joint_names() -> None:
    toy = SkeletonLayout.from_parents(
        [-1, 0, 1, 1, 0, 4], name="skelmask-test-toy", body_parts={"all": range(6)}
    )
    register_layout(toy, overwrite=True)
    arrays = generate_synthetic_actions(12, num_classes=3, layout="skelmask-test-toy")
    assert arrays.data.shape == (12, 3, 64, 6, 1)
    assert np.median(bone_lengths(arrays)[:, :32], axis=1).min() > 0.1


def test_labels_are_balanced_and_in_range() -> None:
    arrays = generate_synthetic_actions(103, num_classes=10)
    counts = np.bincount(arrays.labels, minlength=10)
    assert arrays.labels.dtype == np.int64
    assert arrays.labels.min() >= 0
    assert arrays.labels.max() < 10
    assert counts.max() - counts.min() <= 1
    assert len(set(arrays.labels[:20].tolist())) > 3  # shuffled, not sorted by class


def test_lengths_vary_and_padding_is_zero() -> None:
    arrays = generate_synthetic_actions(200, max_frames=40)
    assert arrays.lengths.min() >= 20
    assert arrays.lengths.max() <= 40
    assert len(np.unique(arrays.lengths)) > 10
    for sample, length in zip(arrays.data, arrays.lengths, strict=True):
        assert not sample[:, length:].any()
        assert np.abs(sample[:, :length]).sum(axis=(0, 2, 3)).min() > 0


def test_single_frame_samples() -> None:
    arrays = generate_synthetic_actions(4, max_frames=1)
    assert arrays.data.shape[2] == 1
    assert (arrays.lengths == 1).all()
    assert np.isfinite(arrays.data).all()


def test_two_persons_face_each_other_with_the_same_skeleton() -> None:
    arrays = generate_synthetic_actions(30, num_persons=2, max_frames=32, camera_space=True)
    assert arrays.data.shape == (30, 3, 32, 25, 2)
    child, parent = np.array(get_layout("nturgb+d").edges).T
    lost = lost_joints(arrays)[:, :16]  # 16 valid frames
    tracked = ~(lost[:, :, child] | lost[:, :, parent])
    bones = np.where(tracked, bone_lengths(arrays)[:, :16], np.nan)
    # Medians of up to 16 noisy lengths (std <= 2.8 cm each) on both bodies: a few spikes of
    # 10-30 cm and runs with most frames dropped leave a few bones further apart.
    difference = np.abs(np.nanmedian(bones[..., 0], axis=1) - np.nanmedian(bones[..., 1], axis=1))
    assert np.nanmedian(difference) < 0.01
    assert np.nanmean(difference < 0.03) > 0.95
    root = get_layout("nturgb+d").root
    first, second = arrays.data[:, :, 0, root, 0], arrays.data[:, :, 0, root, 1]
    assert np.linalg.norm(first - second, axis=1).min() > 1.0
    for sample, length in zip(arrays.data, arrays.lengths, strict=True):
        assert not sample[:, length:].any()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("layout", BUILT_IN)
def test_classes_are_learnable_but_not_linearly_trivial(layout: str, seed: int) -> None:
    train, test = synthetic_splits(layout=layout, seed=seed)
    accuracy = ridge_accuracy(train, test)
    # Measured: 0.25-0.54 over these 20 cases (chance 0.10; before the capture model, 0.57-0.77).
    # The figures are deterministic; the band leaves 0.05-0.06 on either side, about 1.5 binomial
    # standard deviations of an accuracy near 0.5 on 200 test samples, for other BLAS builds.
    assert accuracy > 0.2
    assert accuracy < 0.6


def test_data_is_centred_on_the_first_root_unless_camera_space() -> None:
    centred = generate_synthetic_actions(40, seed=5)
    camera = generate_synthetic_actions(40, seed=5, camera_space=True)
    root = get_layout("nturgb+d").root
    assert not centred.data[:, :, 0, root, 0].any()
    # The same clips: centring shifts every joint of a sample by one vector (dropped joints
    # that read zero stay zero, so they are left out).
    kept = ~lost_joints(camera)[:, :, :, 0] & valid_frames(camera)[:, :, None]  # (N, T, V)
    shift = camera.data[..., 0] - centred.data[..., 0]  # (N, 3, T, V)
    np.testing.assert_allclose(
        np.where(kept[:, None], shift, 0.0),
        np.where(kept[:, None], camera.data[:, :, :1, root : root + 1, 0], 0.0),
        atol=1e-5,
    )


def test_camera_space_puts_the_subject_at_kinect_distances() -> None:
    arrays = generate_synthetic_actions(300, camera_space=True)
    root = get_layout("nturgb+d").root
    tracked = valid_frames(arrays) & ~lost_joints(arrays)[:, :, root, 0]
    position = np.stack(
        [
            np.nanmedian(np.where(tracked, arrays.data[:, c, :, root, 0], np.nan), axis=1)
            for c in range(3)
        ]
    )  # (3, N)
    # In the level camera frame the root is at x = ±0.5 m, y = h - H (root 0.63-1.23 m high,
    # camera 0.8-1.2 m: -0.57 to 0.43 m) and z = d = 2.5-4 m. Tilting by φ (-5° to 15°) gives
    # z' = d cos φ - (h - H) sin φ, within [2.30, 4.02] m, and y' = (h - H) cos φ + d sin φ,
    # under 1.5 m; the roll (±3°) moves x by under 1.5 sin 3° = 0.08 m.
    assert np.abs(position[0]).max() < 0.58
    assert 2.3 < position[2].min() < 2.6
    assert 3.9 < position[2].max() < 4.03


def test_view_yaw_covers_plus_minus_90_degrees() -> None:
    arrays = generate_synthetic_actions(400, camera_space=True)
    names = get_layout("nturgb+d").joint_names
    left, right = names.index("left_hip"), names.index("right_hip")
    # The hips hang from the root, which turns only with the whole body.
    across = arrays.data[:, :, 0, left, 0] - arrays.data[:, :, 0, right, 0]  # (N, 3)
    tracked = ~lost_joints(arrays)[:, 0, [left, right], 0].any(axis=1)  # no hip reads zero
    # Facing = across × up; facing the camera is -z, where the left hip is at -x.
    yaw = np.degrees(np.arctan2(-across[tracked, 2], -across[tracked, 0]))
    # Uniform in ±90°, plus the first frame's share of the turn (±10°), a few degrees from the
    # tilt and the hips' jitter (0.2 cm on a >= 13 cm hip width: std under 1.5°).
    assert np.abs(yaw).max() < 112
    # Quartiles of U(-90°, 90°) from ~400 draws: std about 4°, so 12° is 3 std.
    quartiles = np.quantile(yaw, [0.25, 0.5, 0.75])
    np.testing.assert_allclose(quartiles, [-45, 0, 45], atol=12)


@pytest.mark.parametrize("layout", ["msr-action3d", "nturgb+d", "nw-ucla"])
def test_normalize_view_undoes_the_camera(layout: str) -> None:
    arrays = generate_synthetic_actions(200, layout=layout, camera_space=True, max_frames=32)
    normalized = normalize_view(arrays.data, layout)
    names = get_layout(layout).joint_names

    def hip_yaw(data: np.ndarray, vertical: int) -> np.ndarray:
        """Angle (N,) of the hip vector in frame 15 (valid in every clip) about the vertical
        axis, from the first horizontal axis towards the second, in degrees."""
        across = (
            data[:, :, 15, names.index("left_hip"), 0] - data[:, :, 15, names.index("right_hip"), 0]
        )
        first, second = (axis for axis in range(3) if axis != vertical)
        return np.degrees(np.arctan2(across[:, second], across[:, first]))

    # Camera space (y up): the hips point within ±90° of -x, plus the turn (at most ±20°): a
    # median of 45° from -x. After normalisation (spine on +z, the first frame's shoulders along
    # +x) they stay near +x; what remains is the torso's twist by the class program and the
    # fidgeting, the turn since frame 0 (at most 10° by frame 15 of 32), jitter and dropped
    # joints: measured medians 11-13°.
    assert np.median(180 - np.abs(hip_yaw(arrays.data, vertical=1))) > 35
    assert np.median(np.abs(hip_yaw(normalized, vertical=2))) < 20


def test_bone_lengths_stay_constant_up_to_the_documented_jitter() -> None:
    arrays = generate_synthetic_actions(300, camera_space=True)
    names = get_layout("nturgb+d").joint_names
    lost = lost_joints(arrays)[..., 0]
    valid = valid_frames(arrays)
    jitter = dict.fromkeys(EXTREMITIES, 0.008) | dict.fromkeys(LIMBS, 0.004)
    jitter |= dict.fromkeys(TORSO, 0.002)
    for end, start in [
        ("spine_mid", "spine_base"),
        ("left_elbow", "left_shoulder"),
        ("left_wrist", "left_elbow"),
        ("right_ankle", "right_knee"),
    ]:
        a, b = names.index(end), names.index(start)
        length = np.linalg.norm(arrays.data[:, :, :, a, 0] - arrays.data[:, :, :, b, 0], axis=1)
        spread = robust_std(length, valid & ~lost[:, :, a] & ~lost[:, :, b], axis=1)  # (N,)
        # The length moves with the jitter of both ends along the bone (bones are 0.2-0.5 m,
        # so the sideways jitter adds under 1%). The MAD of ~48 correlated frames reads a few
        # % low; rare spikes barely move it.
        expected = np.hypot(jitter[end], jitter[start])
        assert 0.8 * expected < np.median(spread) < 1.15 * expected, (end, start)


def test_body_size_and_proportions_vary_symmetrically() -> None:
    arrays = generate_synthetic_actions(300, camera_space=True)
    names = get_layout("nturgb+d").joint_names
    lost = lost_joints(arrays)[..., 0]
    valid = valid_frames(arrays)

    def bone(end: str, start: str) -> np.ndarray:
        """Median length (N,) of a bone over its tracked frames."""
        a, b = names.index(end), names.index(start)
        length = np.linalg.norm(arrays.data[:, :, :, a, 0] - arrays.data[:, :, :, b, 0], axis=1)
        return np.nanmedian(np.where(valid & ~lost[:, :, a] & ~lost[:, :, b], length, np.nan), 1)

    left_upper, right_upper = (
        bone("left_elbow", "left_shoulder"),
        bone("right_elbow", "right_shoulder"),
    )
    left_thigh = bone("left_knee", "left_hip")
    # Overall scale 0.75-1.2 (ratio 1.6) times ±10% per bone group.
    assert np.nanmax(left_thigh) / np.nanmin(left_thigh) > 1.5
    # Left and right share their group's factor: the medians differ by the jitter only (1.3 cm
    # per frame, well under 1 cm for a median of >= 16 frames) on a ~0.29 m upper arm.
    assert np.nanmedian(np.abs(left_upper / right_upper - 1)) < 0.02
    # Proportions vary: the upper-arm/thigh ratio's log has std sqrt(2) × 0.2/sqrt(12) = 0.08
    # from the two uniform ±10% factors (the overall scale cancels).
    assert 0.06 < np.nanstd(np.log(left_upper / left_thigh)) < 0.11


def test_dropped_joints_occur_at_the_documented_rates() -> None:
    arrays = generate_synthetic_actions(400, camera_space=True)
    names = get_layout("nturgb+d").joint_names
    lost = lost_joints(arrays)[:, 1:, :, 0]  # frame 0 cannot show a frozen joint
    valid = valid_frames(arrays)[:, 1:]
    for tier, fraction in [(EXTREMITIES, 0.05), (LIMBS, 0.02), (TORSO, 0.005)]:
        joints = [names.index(name) for name in tier]
        frames = np.broadcast_to(valid[:, :, None], (*valid.shape, len(joints)))
        observed = lost[:, :, joints][frames].mean()
        # Runs of D ~ U{2..12} frames (E[D] = 7, E[D²] = 59) arrive like a Poisson process, so
        # the lost count has variance (runs) × E[D²]: relative std sqrt(59 / 49 / runs).
        runs = fraction * frames.sum() / 7
        tolerance = 4 * fraction * np.sqrt(59 / 49 / runs)
        assert abs(observed - fraction) < tolerance, (fraction, observed, tolerance)


def test_lost_joints_either_freeze_or_read_zero_per_track() -> None:
    arrays = generate_synthetic_actions(400, num_persons=2, camera_space=True)
    lost = lost_joints(arrays) & valid_frames(arrays)[:, :, None, None]  # (N, T, V, M)
    zero = (arrays.data == 0.0).all(axis=1) & valid_frames(arrays)[:, :, None, None]
    frozen = lost & ~zero
    zero_tracks, frozen_tracks = zero.any(axis=(1, 2)), frozen[:, 1:].any(axis=(1, 2))  # (N, M)
    assert not (zero_tracks & frozen_tracks).any()
    # Every track loses joints (about 35 joint-frames expected); a quarter of the trackers
    # report them as zeros: 800 tracks, binomial std 0.015, tolerance 4 std.
    assert (zero_tracks | frozen_tracks).mean() > 0.99
    assert abs(zero_tracks.mean() - 0.25) < 0.06


def test_outlier_spikes_are_rare_but_present() -> None:
    arrays = generate_synthetic_actions(400, camera_space=True)
    names = get_layout("nturgb+d").joint_names
    lost = lost_joints(arrays)[..., 0]
    valid = valid_frames(arrays)
    # Torso bones: their length jitter is under 1 cm, so a deviation over 8 cm is a spike
    # (10-30 cm) at one end that lengthens or shortens the bone by that much.
    deviations = []
    for end, start in [
        ("spine_mid", "spine_base"),
        ("left_hip", "spine_base"),
        ("neck", "spine_shoulder"),
    ]:
        a, b = names.index(end), names.index(start)
        length = np.linalg.norm(arrays.data[:, :, :, a, 0] - arrays.data[:, :, :, b, 0], axis=1)
        tracked = valid & ~lost[:, :, a] & ~lost[:, :, b]
        median = np.nanmedian(np.where(tracked, length, np.nan), axis=1, keepdims=True)
        deviations.append(np.abs(length - median)[tracked] > 0.08)
    rate = np.concatenate(deviations).mean()
    # Torso spikes start in 0.05% of the frames and last 2 frames on average, at either end: at
    # most 0.2% of a bone's frames, of which the jumps not too far across the bone show
    # (measured: 0.13%).
    assert 0.0002 < rate < 0.002


def test_time_warp_is_monotonic_and_not_uniform() -> None:
    lengths = np.array([1, 2, 17] + [40] * 1000)
    progress = np.arange(40) / np.maximum(lengths - 1, 1)[:, None]
    warped = _time_warp(np.random.default_rng(0), progress, lengths)
    assert (np.diff(warped, axis=1) > 0).all()
    np.testing.assert_allclose(warped[:, 0], 0.0)
    np.testing.assert_allclose(warped[np.arange(1, len(lengths)), lengths[1:] - 1], 1.0)
    # The tempo factor exp(w1 sin(2πu + ψ1) + w2 sin(4πu + ψ2)), w ~ N(0, 0.25²), moves the
    # warp off the uniform progress by about w1 / 2π at most: typically 0.04-0.06 (measured
    # median 0.058, two frames of a 40-frame clip).
    deviation = np.abs(warped - progress)[3:].max(axis=1)
    assert np.median(deviation) > 0.04


@pytest.mark.parametrize("layout", BUILT_IN)
def test_classes_show_in_view_invariant_motion(layout: str) -> None:
    train, test = synthetic_splits(layout=layout)
    motion = ridge_accuracy(train, test, motion_features)
    raw = ridge_accuracy(train, test)
    # Measured over seeds 0-3: 0.53-0.91 from the motion statistics against 0.25-0.54 from the
    # raw coordinates. The classes live in the motion.
    assert motion > 0.5
    assert motion > raw + 0.1


def test_splits_share_classes_but_not_samples() -> None:
    train, test = synthetic_splits(num_train=40, num_test=20, num_classes=4, max_frames=16)
    assert (len(train), len(test)) == (40, 20)
    assert train.data.shape[1:] == test.data.shape[1:]
    assert train.num_classes == test.num_classes == 4
    assert not set(train.names) & set(test.names)
    other_train, _ = synthetic_splits(
        num_train=40, num_test=20, num_classes=4, max_frames=16, seed=1
    )
    assert not np.array_equal(train.data, other_train.data)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_samples": 0}, "num_samples must be an integer >= 1, got 0"),
        ({"num_samples": 4, "num_classes": 0}, "num_classes must be an integer >= 1, got 0"),
        ({"num_samples": 4, "max_frames": 0}, "max_frames must be an integer >= 1, got 0"),
        ({"num_samples": 4, "num_persons": 3}, "num_persons must be 1 or 2, got 3"),
    ],
)
def test_bad_arguments(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        generate_synthetic_actions(**kwargs)


def test_camera_space_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="camera_space must be a bool, got 'yes'"):
        generate_synthetic_actions(4, camera_space="yes")  # type: ignore[arg-type]


def test_unknown_layout() -> None:
    with pytest.raises(KeyError, match="unknown layout 'nope'"):
        generate_synthetic_actions(4, layout="nope")


def test_every_registered_built_in_is_tested() -> None:
    assert set(BUILT_IN) <= set(list_layouts())
