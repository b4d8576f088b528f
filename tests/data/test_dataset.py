from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from skelmask.data import (
    SkeletonArrays,
    SkeletonDataset,
    crop_and_resize,
    generate_synthetic_actions,
    rotate,
    rotation_matrix,
)
from skelmask.layouts import get_layout


@pytest.fixture(scope="module")
def arrays() -> SkeletonArrays:
    return generate_synthetic_actions(12, num_classes=3, max_frames=40, num_persons=2, seed=5)


def bone_lengths(x: torch.Tensor, layout: str = "nturgb+d") -> torch.Tensor:
    """Bone lengths (T, bones, M) of one clip (3, T, V, M)."""
    child, parent = (list(side) for side in zip(*get_layout(layout).edges, strict=True))
    return torch.linalg.vector_norm(x[:, :, child] - x[:, :, parent], dim=0)


@pytest.mark.parametrize("train", [True, False])
def test_output_shape_and_dtype(arrays: SkeletonArrays, train: bool) -> None:
    dataset = SkeletonDataset(arrays, window=16, train=train, seed=0)
    assert len(dataset) == 12
    x, y = dataset[3]
    assert x.shape == (3, 16, 25, 2)
    assert x.dtype == torch.float32
    assert y.dtype == torch.int64
    assert y.shape == ()
    assert int(y) == int(arrays.labels[3])
    assert torch.isfinite(x).all()


def test_eval_transform_is_a_deterministic_centre_crop(arrays: SkeletonArrays) -> None:
    dataset = SkeletonDataset(arrays, window=20, train=False, eval_crop_ratio=0.5)
    first, _ = dataset[0]
    torch.testing.assert_close(dataset[0][0], first)
    length = int(arrays.lengths[0])
    crop = round(length * 0.5)
    start = (length - crop) // 2
    expected = crop_and_resize(arrays.data[0], start, crop, 20)
    torch.testing.assert_close(first, torch.from_numpy(expected))


def test_train_transform_is_random_but_reproducible(arrays: SkeletonArrays) -> None:
    a = SkeletonDataset(arrays, window=16, seed=1)
    b = SkeletonDataset(arrays, window=16, seed=1)
    c = SkeletonDataset(arrays, window=16, seed=2)
    draws_a = [a[0][0] for _ in range(3)]
    draws_b = [b[0][0] for _ in range(3)]
    assert not torch.equal(draws_a[0], draws_a[1])
    for x, y in zip(draws_a, draws_b, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert not torch.equal(draws_a[0], c[0][0])


def test_without_seed_the_global_torch_seed_fixes_the_draws(arrays: SkeletonArrays) -> None:
    dataset = SkeletonDataset(arrays, window=16)
    torch.manual_seed(7)
    first = [dataset[i][0] for i in range(3)]
    torch.manual_seed(7)
    second = [dataset[i][0] for i in range(3)]
    for x, y in zip(first, second, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


@pytest.mark.parametrize("seed", [None, 3])
def test_data_loader_workers_are_reproducible_and_distinct(
    arrays: SkeletonArrays, seed: int | None
) -> None:
    dataset = SkeletonDataset(arrays, window=8, seed=seed)

    def epoch() -> list[torch.Tensor]:
        loader = DataLoader(dataset, batch_size=3, num_workers=2)
        return [x for x, _ in loader]

    torch.manual_seed(0)
    run_a = [epoch(), epoch()]
    torch.manual_seed(0)
    run_b = [epoch(), epoch()]
    for epoch_a, epoch_b in zip(run_a, run_b, strict=True):
        for x, y in zip(epoch_a, epoch_b, strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=0)
    # Fresh augmentation every epoch, and the two workers do not replay one stream.
    assert not torch.equal(run_a[0][0], run_a[1][0])
    assert not torch.equal(run_a[0][0][0], run_a[0][1][0])


def test_rotation_preserves_bone_lengths(arrays: SkeletonArrays) -> None:
    plain = SkeletonDataset(arrays, window=16, crop_ratio=(1.0, 1.0), rotation=0.0, seed=0)
    rotated = SkeletonDataset(arrays, window=16, crop_ratio=(1.0, 1.0), rotation=0.3, seed=0)
    for index in range(4):
        x, _ = plain[index]
        r, _ = rotated[index]
        assert not torch.allclose(x, r)
        torch.testing.assert_close(bone_lengths(r), bone_lengths(x), atol=1e-5, rtol=1e-5)


def test_rotation_angles_stay_within_the_limit() -> None:
    # A point at distance 1 from the origin: three rotations of at most 0.3 rad turn it by at most
    # 0.9 rad, so it moves by at most the chord 2·sin(0.45).
    data = np.zeros((1, 3, 2, 20, 1), dtype=np.float32)
    data[0, 0, :, 1] = 1.0
    arrays = SkeletonArrays(data, np.array([0]), np.array([2]), "msr-action3d", 1, ["p"])
    dataset = SkeletonDataset(arrays, window=2, crop_ratio=(1.0, 1.0), rotation=0.3, seed=0)
    point = torch.tensor([1.0, 0.0, 0.0])
    moves = [float(torch.linalg.vector_norm(dataset[0][0][:, 0, 1, 0] - point)) for _ in range(200)]
    assert 0.1 < max(moves) <= 2 * np.sin(0.45)


@pytest.mark.parametrize("train", [True, False])
def test_full_crop_keeps_first_and_last_valid_frames(arrays: SkeletonArrays, train: bool) -> None:
    dataset = SkeletonDataset(
        arrays, window=50, train=train, crop_ratio=(1.0, 1.0), eval_crop_ratio=1.0, rotation=0.0
    )
    for index in range(len(arrays)):
        x, _ = dataset[index]
        length = int(arrays.lengths[index])
        torch.testing.assert_close(x[:, 0], torch.from_numpy(arrays.data[index, :, 0]))
        torch.testing.assert_close(x[:, -1], torch.from_numpy(arrays.data[index, :, length - 1]))


def test_crop_never_reaches_the_padding(arrays: SkeletonArrays) -> None:
    dataset = SkeletonDataset(arrays, window=64, crop_ratio=(0.5, 1.0), rotation=0.0, seed=0)
    for index in range(len(arrays)):
        x, _ = dataset[index]
        # Every output frame interpolates valid (non-zero) frames.
        assert (x.abs().sum(dim=(0, 2, 3)) > 0).all()


def test_short_sequences_use_all_their_frames() -> None:
    data = np.zeros((1, 3, 10, 20, 1), dtype=np.float32)
    data[0, :, :2] = 1.0
    arrays = SkeletonArrays(data, np.array([0]), np.array([2]), "msr-action3d", 1, ["short"])
    x, _ = SkeletonDataset(arrays, window=6, crop_ratio=(0.5, 0.5), seed=0, rotation=0.0)[0]
    torch.testing.assert_close(x, torch.ones(3, 6, 20, 1))


def test_crop_and_resize_interpolates_linearly() -> None:
    x = np.arange(10.0).reshape(1, 10, 1, 1)
    out = crop_and_resize(x, 2, 5, 9)
    np.testing.assert_allclose(out.ravel(), np.linspace(2.0, 6.0, 9))
    assert crop_and_resize(x, 4, 1, 3).ravel().tolist() == [4.0, 4.0, 4.0]


def test_rotation_matrix_is_orthonormal_and_batched() -> None:
    angles = np.random.default_rng(0).uniform(-1, 1, size=(4, 5, 3))
    matrices = rotation_matrix(angles)
    assert matrices.shape == (4, 5, 3, 3)
    np.testing.assert_allclose(
        matrices @ np.swapaxes(matrices, -1, -2),
        np.broadcast_to(np.eye(3), (4, 5, 3, 3)),
        atol=1e-12,
    )
    np.testing.assert_allclose(np.linalg.det(matrices), 1.0)
    assert rotation_matrix(angles.astype(np.float32)).dtype == np.float32


def test_rotate_in_plane_keeps_the_score_channel() -> None:
    x = np.random.default_rng(0).normal(size=(3, 4, 5, 1))
    out = rotate(x, [0.4, -0.2, 0.7], spatial_dims=2)
    np.testing.assert_allclose(np.linalg.norm(out[:2], axis=0), np.linalg.norm(x[:2], axis=0))
    np.testing.assert_array_equal(out[2], x[2])
    angle = np.arctan2(out[1, 0, 0, 0], out[0, 0, 0, 0]) - np.arctan2(x[1, 0, 0, 0], x[0, 0, 0, 0])
    assert np.isclose(np.mod(angle, 2 * np.pi), 0.7)
    np.testing.assert_array_equal(rotate(x, [0.4, 0.1, 0.1], spatial_dims=0), x)


def test_two_channel_data_rotates_in_plane() -> None:
    rng = np.random.default_rng(1)
    arrays = SkeletonArrays(
        rng.normal(size=(2, 2, 8, 17, 1)), np.array([0, 1]), np.array([8, 8]), "coco", 2, ["a", "b"]
    )
    dataset = SkeletonDataset(arrays, window=8, crop_ratio=(1.0, 1.0), seed=0)
    assert dataset.spatial_dims == 2
    x, _ = dataset[0]
    np.testing.assert_allclose(
        torch.linalg.vector_norm(x, dim=0).numpy(),
        np.linalg.norm(arrays.data[0], axis=0),
        rtol=1e-5,
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 0}, "window must be an integer >= 1, got 0"),
        ({"window": 2.5}, "window must be an integer >= 1, got 2.5"),
        (
            {"crop_ratio": (0.0, 1.0)},
            r"crop_ratio must be \(low, high\) with 0 < low <= high <= 1, got \(0.0, 1.0\)",
        ),
        ({"crop_ratio": (0.8, 0.5)}, r"crop_ratio .* got \(0.8, 0.5\)"),
        ({"crop_ratio": (0.5, 1.2)}, r"crop_ratio .* got \(0.5, 1.2\)"),
        ({"eval_crop_ratio": 0.0}, r"eval_crop_ratio must be in \(0, 1\], got 0.0"),
        ({"eval_crop_ratio": 1.5}, r"eval_crop_ratio must be in \(0, 1\], got 1.5"),
        ({"rotation": -0.1}, "rotation must be a finite angle >= 0 in radians, got -0.1"),
        ({"rotation": float("nan")}, "rotation must be a finite angle"),
        ({"min_frames": 0}, "min_frames must be an integer >= 1, got 0"),
        ({"seed": -1}, "seed must be None or an integer >= 0, got -1"),
        ({"spatial_dims": 4}, r"spatial_dims must be in \[0, min\(C, 3\)\] = \[0, 3\], got 4"),
    ],
)
def test_rejects_bad_arguments(arrays: SkeletonArrays, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SkeletonDataset(arrays, **kwargs)
