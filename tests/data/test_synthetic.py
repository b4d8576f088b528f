from __future__ import annotations

import numpy as np
import pytest

from skelmask.data import (
    SkeletonArrays,
    crop_and_resize,
    generate_synthetic_actions,
    synthetic_splits,
)
from skelmask.layouts import SkeletonLayout, get_layout, list_layouts, register_layout

BUILT_IN = ["coco", "msr-action3d", "nturgb+d", "nw-ucla", "openpose"]


def bone_lengths(arrays: SkeletonArrays) -> np.ndarray:
    """Bone lengths (N, T, bones, M) from data (N, C, T, V, M)."""
    child, parent = np.array(get_layout(arrays.layout).edges).T
    return np.linalg.norm(arrays.data[:, :3, :, child] - arrays.data[:, :3, :, parent], axis=1)


def ridge_accuracy(train: SkeletonArrays, test: SkeletonArrays, *, frames: int = 16) -> float:
    """Test accuracy of a ridge classifier on raw coordinates resampled to ``frames`` frames."""

    def features(arrays: SkeletonArrays) -> np.ndarray:
        return np.stack(
            [
                crop_and_resize(arrays.data[n], 0, int(arrays.lengths[n]), frames).ravel()
                for n in range(len(arrays))
            ]
        )

    x_train, x_test = features(train), features(test)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train = np.c_[(x_train - mean) / std, np.ones(len(x_train))]
    x_test = np.c_[(x_test - mean) / std, np.ones(len(x_test))]
    targets = np.eye(train.num_classes)[train.labels]
    weights = np.linalg.solve(
        x_train.T @ x_train + 10.0 * np.eye(x_train.shape[1]), x_train.T @ targets
    )
    return float(((x_test @ weights).argmax(1) == test.labels).mean())


def test_same_seed_gives_identical_arrays() -> None:
    a = generate_synthetic_actions(50, seed=3)
    b = generate_synthetic_actions(50, seed=3)
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
    # Every bone has a real length (no two joints collapse) and keeps it over time up to the
    # 1 cm noise: forward kinematics rotates bones, it never stretches them.
    assert np.median(bones, axis=1).min() > 0.02
    assert np.median(bones.std(axis=1)) < 0.015
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
    arrays = generate_synthetic_actions(30, num_persons=2, max_frames=32)
    assert arrays.data.shape == (30, 3, 32, 25, 2)
    bones = np.median(bone_lengths(arrays)[:, :16], axis=1)  # (N, bones, M), 16 valid frames
    np.testing.assert_allclose(bones[..., 0], bones[..., 1], atol=0.02)
    root = get_layout("nturgb+d").root
    first, second = arrays.data[:, :, 0, root, 0], arrays.data[:, :, 0, root, 1]
    assert np.linalg.norm(first - second, axis=1).min() > 1.0
    for sample, length in zip(arrays.data, arrays.lengths, strict=True):
        assert not sample[:, length:].any()


@pytest.mark.parametrize("layout", ["nturgb+d", "coco"])
def test_classes_are_learnable_but_not_linearly_trivial(layout: str) -> None:
    train, test = synthetic_splits(layout=layout)
    accuracy = ridge_accuracy(train, test)
    chance = 1 / train.num_classes
    # Measured: 0.55–0.77 over the built-in layouts and seeds 0–3 (chance 0.10).
    assert accuracy > chance + 0.25
    assert accuracy < 0.9


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


def test_unknown_layout() -> None:
    with pytest.raises(KeyError, match="unknown layout 'nope'"):
        generate_synthetic_actions(4, layout="nope")


def test_every_registered_built_in_is_tested() -> None:
    assert set(BUILT_IN) <= set(list_layouts())
