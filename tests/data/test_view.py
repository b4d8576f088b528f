from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skelmask.data import SkeletonArrays, SkeletonDataset, load_msr_action3d
from skelmask.data.view import ViewJoints, normalize_view, view_joints
from skelmask.layouts import get_layout


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random proper rotation (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def camera_view(data: np.ndarray, rotation: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """The same clips filmed by another camera: rotated and shifted, zeros (absent) kept."""
    present = np.any(data != 0, axis=(1, 3), keepdims=True)  # per body and frame
    moved = np.einsum("ij,njtvm->nitvm", rotation, data) + shift[None, :, None, None, None]
    return moved * present


def toy_clips(rng: np.random.Generator, num: int = 3) -> np.ndarray:
    clips = rng.normal(size=(num, 3, 6, 25, 2))
    clips[:, :, :, :, 1] = 0.0  # absent second body
    clips[:, :, 0] = 0.0  # an empty first frame: the reference frame is the next one
    return clips


def test_view_joints_follow_the_layouts_names() -> None:
    assert view_joints("nturgb+d") == ViewJoints(1, 0, 1, 8, 4)
    msr = get_layout("msr-action3d")
    joints = view_joints(msr)
    assert (msr.joint_names[joints.bottom], msr.joint_names[joints.top]) == ("hip_center", "spine")
    assert view_joints("nw-ucla", center="hip_center").center == 0


def test_a_layout_without_the_named_joints_is_a_clear_error() -> None:
    with pytest.raises(
        ValueError, match=r"layout 'coco' has no joint named spine_base or hip_center"
    ):
        view_joints("coco")
    with pytest.raises(ValueError, match=r"top='pelvis' is not a joint of layout 'nturgb\+d'"):
        view_joints("nturgb+d", top="pelvis")


def test_the_body_frame_is_the_coordinate_frame() -> None:
    clips = toy_clips(np.random.default_rng(0))
    out = normalize_view(clips, "nturgb+d")
    first = out[:, :, 1, :, 0]  # the reference frame, (N, 3, V)
    np.testing.assert_allclose(first[:, :, 1], 0.0, atol=1e-6)  # centre (spine_mid) at 0
    spine = first[:, :, 1] - first[:, :, 0]
    np.testing.assert_allclose(spine[:, :2], 0.0, atol=1e-5)  # spine along z ...
    assert (spine[:, 2] > 0).all()  # ... pointing up
    shoulders = first[:, :, 4] - first[:, :, 8]  # right → left
    np.testing.assert_allclose(shoulders[:, 1], 0.0, atol=1e-5)  # in the x-z plane
    assert (shoulders[:, 0] > 0).all()
    assert (out[:, :, :, :, 1] == 0).all()  # the absent body stays zero
    assert (out[:, :, 0] == 0).all()  # so does the empty frame


@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_the_result_does_not_depend_on_the_camera(seed: int) -> None:
    rng = np.random.default_rng(seed)
    clips = toy_clips(rng)
    rotated = camera_view(clips, random_rotation(rng), rng.normal(size=3) * 3)
    # Both sides are float32 after float64 maths; coordinates of order 1-10 agree within a
    # few float32 ULPs of the largest coordinate.
    np.testing.assert_allclose(
        normalize_view(rotated, "nturgb+d"), normalize_view(clips, "nturgb+d"), atol=1e-5
    )


def test_real_msr_clips_from_rotated_cameras_normalise_identically(shared_data: Path) -> None:
    train, _, _ = load_msr_action3d(shared_data / "msr-action3d")
    clips = train.data[:20].astype(np.float64)
    rng = np.random.default_rng(7)
    for _ in range(3):
        rotated = camera_view(clips, random_rotation(rng), rng.normal(size=3))
        np.testing.assert_allclose(
            normalize_view(rotated, "msr-action3d"),
            normalize_view(clips, "msr-action3d"),
            atol=1e-5,
        )


def test_a_rotation_about_the_spine_is_undone_exactly() -> None:
    clips = toy_clips(np.random.default_rng(3), num=1)
    base = normalize_view(clips, "nturgb+d")
    angle = math.pi / 3
    about_z = np.array(
        [[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]]
    )
    np.testing.assert_allclose(
        normalize_view(camera_view(base.astype(np.float64), about_z, np.zeros(3)), "nturgb+d"),
        base,
        atol=1e-5,
    )


def test_degenerate_clips_are_only_centred_and_empty_clips_stay_zero() -> None:
    clips = np.zeros((2, 3, 4, 25, 1))
    clips[1] = 1.0  # every joint at one point: no spine, no shoulders
    out = normalize_view(clips, "nturgb+d")
    assert np.isfinite(out).all()
    assert (out == 0).all()


def test_bad_shapes_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"\(N, C=3, T, V, M\)"):
        normalize_view(np.zeros((2, 2, 4, 25, 1)), "nturgb+d")
    with pytest.raises(ValueError, match="V = 20 joints but layout 'nturgb\\+d' has 25"):
        normalize_view(np.zeros((1, 3, 4, 20, 1)), "nturgb+d")
    with pytest.raises(ValueError, match="below V = 4"):
        normalize_view(np.zeros((1, 3, 4, 4, 1)), ViewJoints(0, 1, 2, 3, 9))


def arrays_of(data: np.ndarray, layout: str) -> SkeletonArrays:
    n = len(data)
    return SkeletonArrays(
        data=data.astype(np.float32),
        labels=np.arange(n) % 2,
        lengths=np.full(n, data.shape[2]),
        layout=layout,
        num_classes=2,
        names=[f"clip{i}" for i in range(n)],
    )


def test_dataset_option_normalises_each_clip_before_the_transform() -> None:
    clips = toy_clips(np.random.default_rng(5), num=2).astype(np.float32)
    options = {"window": 6, "train": False, "eval_crop_ratio": 1.0}
    normalized = SkeletonDataset(arrays_of(clips, "nturgb+d"), normalize_view=True, **options)
    expected = SkeletonDataset(arrays_of(normalize_view(clips, "nturgb+d"), "nturgb+d"), **options)
    for index in range(2):
        # One clip against a batch of two: the float64 maths may differ in the last bits, so a
        # float32 result may round one ULP (2.4e-7 at 3) the other way.
        np.testing.assert_allclose(
            normalized[index][0].numpy(), expected[index][0].numpy(), rtol=0, atol=1e-6
        )
    coco = arrays_of(np.ones((1, 3, 4, 17, 1)), "coco")
    with pytest.raises(ValueError, match="no joint named spine_base or hip_center"):
        SkeletonDataset(coco, window=4, normalize_view=True)
