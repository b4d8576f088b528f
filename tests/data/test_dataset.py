from __future__ import annotations

import pickle
from pathlib import Path
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
    to_velocity,
)
from skelmask.data.dataset import reflect_indices, shear, shear_matrix
from skelmask.data.prepared import load_prepared, save_prepared
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
        # Strings, bools and floats that float() or a comparison would take (True = 1 rad):
        ({"rotation": True}, "rotation must be a finite angle >= 0 in radians, got True"),
        ({"shear": "0.1"}, "shear must be a finite amplitude >= 0, got '0.1'"),
        ({"crop_ratio": ("0.5", 1.0)}, r"crop_ratio must be \(low, high\) .* got \('0\.5', 1\.0\)"),
        ({"crop_ratio": (0.5,)}, r"crop_ratio must be \(low, high\) .* got \(0\.5,\)"),
        ({"eval_crop_ratio": True}, r"eval_crop_ratio must be in \(0, 1\], got True"),
        ({"spatial_dims": 1.5}, r"spatial_dims must be in \[0, min\(C, 3\)\] = \[0, 3\], got 1\.5"),
    ],
)
def test_rejects_bad_arguments(arrays: SkeletonArrays, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SkeletonDataset(arrays, **kwargs)


@pytest.mark.parametrize("flag", ["train", "normalize_view", "velocity"])
def test_flags_must_be_bools(arrays: SkeletonArrays, flag: str) -> None:
    # A string from a config file ("false") is truthy and used to switch the flag on.
    with pytest.raises(TypeError, match=rf"{flag} must be True or False, got 'false'"):
        SkeletonDataset(arrays, window=8, **{flag: "false"})


def test_numpy_integers_are_integers_and_bools_are_not(arrays: SkeletonArrays) -> None:
    # np.int64 sizes (from an array or a config) were refused as "not an integer".
    dataset = SkeletonDataset(arrays, window=np.int64(8), min_frames=np.int32(2), seed=np.int64(3))
    reference = SkeletonDataset(arrays, window=8, min_frames=2, seed=3)
    assert (type(dataset.window), dataset.window) == (int, 8)
    assert torch.equal(dataset[0][0], reference[0][0])
    with pytest.raises(ValueError, match="window must be an integer >= 1, got True"):
        SkeletonDataset(arrays, window=True)
    with pytest.raises(ValueError, match=r"seed must be None or an integer >= 0, got np\.False_"):
        SkeletonDataset(arrays, window=8, seed=np.bool_(False))
    synthetic = generate_synthetic_actions(
        np.int64(4), num_classes=np.int64(2), max_frames=np.int64(8)
    )
    assert synthetic.data.shape[:3] == (4, 3, 8)


def point_arrays(valid: int = 5, frames: int = 8) -> SkeletonArrays:
    """One MSR sample whose channel 0 holds the frame index and joint 1 the point (1, 2, 3)."""
    data = np.zeros((1, 3, frames, 20, 1), dtype=np.float32)
    data[0, 0, :valid] = np.arange(valid, dtype=np.float32)[:, None, None]
    data[0, :, :valid, 1, 0] = np.array([1.0, 2.0, 3.0], dtype=np.float32)[:, None]
    return SkeletonArrays(data, np.array([0]), np.array([valid]), "msr-action3d", 1, ["p"])


def fixed_draws(
    monkeypatch: pytest.MonkeyPatch, dataset: SkeletonDataset, draws: list[float]
) -> list[int]:
    """Makes the dataset draw ``draws``; returns the list of requested counts."""
    counts: list[int] = []

    def uniform(count: int) -> list[float]:
        counts.append(count)
        return draws[:count]

    monkeypatch.setattr(dataset, "_uniform", uniform)
    return counts


def test_shear_matrix_and_shear_of_a_known_point() -> None:
    matrix = shear_matrix([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    np.testing.assert_allclose(matrix, [[1.0, 0.1, 0.2], [0.3, 1.0, 0.4], [0.5, 0.6, 1.0]])
    assert shear_matrix(np.zeros((4, 2, 6), dtype=np.float32)).shape == (4, 2, 3, 3)
    point = np.array([1.0, 2.0, 3.0]).reshape(3, 1, 1, 1)
    # (1 + 0.1·2 + 0.2·3, 0.3·1 + 2 + 0.4·3, 0.5·1 + 0.6·2 + 3)
    np.testing.assert_allclose(
        shear(point, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).ravel(), [1.8, 3.5, 4.7]
    )


def test_in_plane_shear_keeps_the_score_channel() -> None:
    x = np.array([1.0, 2.0, 0.9]).reshape(3, 1, 1, 1)
    # Only S01 = 0.1 and S10 = 0.3 act on (x, y); the score 0.9 is kept.
    out = shear(x, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], spatial_dims=2)
    np.testing.assert_allclose(out.ravel(), [1.2, 2.3, 0.9])
    np.testing.assert_array_equal(shear(x, [0.5] * 6, spatial_dims=1), x)


@pytest.mark.parametrize(("length", "padding"), [(5, 2), (4, 0), (3, 7), (1, 3), (10, 6)])
def test_reflect_indices_match_numpy_reflect_padding(length: int, padding: int) -> None:
    expected = np.pad(np.arange(length), padding, mode="reflect")
    np.testing.assert_array_equal(reflect_indices(length, padding), expected)


def test_reflect_indices_by_hand() -> None:
    assert reflect_indices(5, 2).tolist() == [2, 1, 0, 1, 2, 3, 4, 3, 2]
    assert reflect_indices(1, 2).tolist() == [0, 0, 0, 0, 0]


def test_dataset_shear_uses_its_six_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = SkeletonDataset(
        point_arrays(), window=5, crop_ratio=(1.0, 1.0), rotation=0.0, shear=0.4, seed=0
    )
    # Crop ratio, start, three angles, then six shear draws of 0.75: every entry 0.4·(2·0.75 - 1).
    counts = fixed_draws(monkeypatch, dataset, [0.0] * 5 + [0.75] * 6)
    x, _ = dataset[0]
    assert counts == [11]
    # S = [[1, .2, .2], [.2, 1, .2], [.2, .2, 1]] applied to (1, 2, 3).
    expected = torch.tensor([2.0, 2.8, 3.6]).expand(5, 3).T
    torch.testing.assert_close(x[:, :, 1, 0], expected)


@pytest.mark.parametrize(
    ("shift_draw", "frames"),
    [(0.0, [2, 1, 0, 1, 2]), (0.5, [0, 1, 2, 3, 4]), (0.99, [2, 3, 4, 3, 2])],
)
def test_dataset_temporal_padding_shifts_by_reflection(
    monkeypatch: pytest.MonkeyPatch, shift_draw: float, frames: list[int]
) -> None:
    dataset = SkeletonDataset(
        point_arrays(), window=5, crop_ratio=(1.0, 1.0), rotation=0.0, temporal_padding=2, seed=0
    )
    # Padded frames [2 1 | 0 1 2 3 4 | 3 2]; the draw picks the window offset in {0, …, 4}.
    counts = fixed_draws(monkeypatch, dataset, [0.0] * 5 + [shift_draw])
    x, _ = dataset[0]
    assert counts == [6]
    assert x[0, :, 0, 0].tolist() == [float(frame) for frame in frames]


def test_shift_draw_comes_before_the_shear_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = SkeletonDataset(
        point_arrays(),
        window=5,
        crop_ratio=(1.0, 1.0),
        rotation=0.0,
        temporal_padding=2,
        shear=0.4,
        seed=0,
    )
    counts = fixed_draws(monkeypatch, dataset, [0.0] * 5 + [0.0] + [0.5] * 6)
    x, _ = dataset[0]
    assert counts == [12]
    assert x[0, :, 0, 0].tolist() == [2.0, 1.0, 0.0, 1.0, 2.0]  # shifted, and a zero shear
    torch.testing.assert_close(x[:, 0, 1, 0], torch.tensor([1.0, 2.0, 3.0]))


def test_defaults_draw_as_before(arrays: SkeletonArrays, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = SkeletonDataset(arrays, window=16, seed=0)
    counts = fixed_draws(monkeypatch, dataset, [0.3] * 5)
    dataset[0]
    assert counts == [5]


def test_evaluation_ignores_shear_and_padding(arrays: SkeletonArrays) -> None:
    plain = SkeletonDataset(arrays, window=16, train=False)
    augmented = SkeletonDataset(arrays, window=16, train=False, shear=0.5, temporal_padding=6)
    for index in range(len(arrays)):
        first, second = augmented[index][0], augmented[index][0]
        torch.testing.assert_close(first, plain[index][0], rtol=0, atol=0)
        torch.testing.assert_close(second, first, rtol=0, atol=0)


def test_memory_mapped_arrays_give_identical_clips(arrays: SkeletonArrays, tmp_path: Path) -> None:
    mapped = load_prepared(save_prepared(tmp_path / "train.npz", arrays))
    assert isinstance(mapped.data.base, np.memmap)
    for train in (True, False):
        options: dict[str, Any] = {"window": 16, "train": train, "shear": 0.5}
        options.update(temporal_padding=4)
        in_memory = SkeletonDataset(arrays, seed=3, **options)
        from_disk = SkeletonDataset(mapped, seed=3, **options)
        for index in range(len(arrays)):
            torch.testing.assert_close(from_disk[index], in_memory[index], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"shear": -0.1}, "shear must be a finite amplitude >= 0, got -0.1"),
        ({"shear": float("inf")}, "shear must be a finite amplitude >= 0, got inf"),
        ({"temporal_padding": -1}, "temporal_padding must be an integer >= 0, got -1"),
        ({"temporal_padding": 1.5}, "temporal_padding must be an integer >= 0, got 1.5"),
        ({"temporal_padding": True}, "temporal_padding must be an integer >= 0, got True"),
    ],
)
def test_rejects_bad_augmentation_arguments(
    arrays: SkeletonArrays, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        SkeletonDataset(arrays, **kwargs)


def test_pickling_a_mapped_dataset_keeps_the_mapping(
    arrays: SkeletonArrays, tmp_path: Path
) -> None:
    mapped = load_prepared(save_prepared(tmp_path / "train.npz", arrays))
    dataset = SkeletonDataset(mapped, window=16, seed=4, shear=0.3)
    payload = pickle.dumps(dataset)
    # Spawned DataLoader workers get the file mapping, not a copy of the coordinates.
    assert len(payload) < arrays.data.nbytes // 10
    copy = pickle.loads(payload)
    assert isinstance(copy.arrays.data.base, np.memmap)
    assert copy.arrays.names == arrays.names
    for index in range(3):
        torch.testing.assert_close(copy[index], dataset[index], rtol=0, atol=0)
    in_memory = SkeletonDataset(arrays, window=16)
    assert len(pickle.dumps(in_memory)) > arrays.data.nbytes


def test_data_loader_workers_read_a_mapped_file(arrays: SkeletonArrays, tmp_path: Path) -> None:
    mapped = load_prepared(save_prepared(tmp_path / "test.npz", arrays))
    loader = DataLoader(SkeletonDataset(mapped, window=8, train=False), batch_size=4, num_workers=2)
    expected = SkeletonDataset(arrays, window=8, train=False)
    x = torch.cat([batch for batch, _ in loader])
    torch.testing.assert_close(x, torch.stack([expected[i][0] for i in range(len(arrays))]))


# --- velocity input ---------------------------------------------------------------------------


def velocity_by_loop(x: np.ndarray, lengths: list[int], channels: int) -> np.ndarray:
    """``to_velocity`` of a batch ``(N, C, T, V, M)``, one frame at a time."""
    expected = x.astype(np.float64)
    for n, length in enumerate(lengths):
        for t in range(x.shape[2]):
            for c in range(channels):
                if t + 1 < length:
                    expected[n, c, t] = x[n, c, t + 1] - x[n, c, t]
                else:
                    expected[n, c, t] = 0.0
    return expected


@pytest.mark.parametrize("channels", [None, 2])
def test_to_velocity_matches_a_loop_over_frames(channels: int | None) -> None:
    rng = np.random.default_rng(0)
    lengths = [6, 4, 1, 0]
    x = rng.normal(size=(4, 3, 6, 2, 2))
    for n, length in enumerate(lengths):
        x[n, :, length:] = 0.0  # padding, as in SkeletonArrays
    expected = velocity_by_loop(x, lengths, 3 if channels is None else channels)
    result = to_velocity(x, np.array(lengths), channels=channels)
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-12)
    # One sample at a time, and without lengths for a sample whose frames are all valid.
    np.testing.assert_allclose(to_velocity(x[1], 4, channels=channels), expected[1], atol=1e-12)
    np.testing.assert_allclose(to_velocity(x[0], channels=channels), expected[0], atol=1e-12)


def test_to_velocity_zeroes_the_last_valid_frame_and_the_padding() -> None:
    x = np.zeros((2, 3, 5, 1, 1), dtype=np.float32)
    x[0, :, :3] = np.arange(1.0, 4.0)[None, :, None, None] ** 2  # 3 valid frames: 1, 4, 9
    x[1, :, :5] = 7.0  # 5 valid frames, standing still
    result = to_velocity(x, [3, 5])
    assert result.dtype == np.float32
    assert result[0, 0, :, 0, 0].tolist() == [3.0, 5.0, 0.0, 0.0, 0.0]
    assert not result[1].any()
    # Channels beyond `channels` (a score) are returned as they are, padding included.
    scored = to_velocity(x, [3, 5], channels=2)
    np.testing.assert_array_equal(scored[:, 2], x[:, 2])
    np.testing.assert_array_equal(scored[:, :2], result[:, :2])
    assert to_velocity(np.arange(4).reshape(1, 4, 1, 1)).dtype == np.float64


@pytest.mark.parametrize(
    ("x", "kwargs", "match"),
    [
        (np.zeros((3, 4, 2)), {}, r"\(C, T, V, M\) or \(N, C, T, V, M\), got \(3, 4, 2\)"),
        (np.zeros((2, 3, 4, 2, 1)), {"lengths": [4]}, r"lengths must be integers of shape \(2,\)"),
        (np.zeros((2, 3, 4, 2, 1)), {"lengths": [4.0, 3.0]}, "lengths must be integers"),
        (np.zeros((2, 3, 4, 2, 1)), {"lengths": [5, 3]}, r"lengths must be in \[0, T = 4\]"),
        (np.zeros((3, 4, 2, 1)), {"lengths": -1}, r"lengths must be in \[0, T = 4\]"),
        (np.zeros((3, 4, 2, 1)), {"channels": 0}, r"channels must be an integer in \[1, C = 3\]"),
        (np.zeros((3, 4, 2, 1)), {"channels": 4}, r"channels must be an integer in \[1, C = 3\]"),
    ],
)
def test_to_velocity_rejects_bad_arguments(
    x: np.ndarray, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        to_velocity(x, **kwargs)


@pytest.mark.parametrize("train", [True, False])
def test_dataset_velocity_is_the_frame_difference_of_the_window(
    arrays: SkeletonArrays, train: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = SkeletonDataset(arrays, window=16, train=train, seed=3, shear=0.2)
    moving = SkeletonDataset(arrays, window=16, train=train, seed=3, shear=0.2, velocity=True)
    for index in range(len(arrays)):
        clip = plain[index][0].numpy()
        x, y = moving[index]
        assert x.dtype == torch.float32
        assert int(y) == int(arrays.labels[index])
        # The same draws, hence the same window, differenced after rotation and shear.
        torch.testing.assert_close(x, torch.from_numpy(to_velocity(clip)))
        assert not x[:, -1].any()
    counts = fixed_draws(monkeypatch, moving, [0.3] * 11)
    moving[0]
    assert counts == ([11] if train else [])


def test_dataset_velocity_keeps_a_score_channel_and_needs_coordinates() -> None:
    data = np.random.default_rng(1).normal(size=(2, 3, 10, 17, 1)).astype(np.float32)
    arrays = SkeletonArrays(data, np.array([0, 1]), np.array([10, 10]), "coco", 2, ["a", "b"])
    options: dict[str, Any] = {"window": 10, "train": False, "eval_crop_ratio": 1.0}
    plain = SkeletonDataset(arrays, spatial_dims=2, **options)[0][0]
    moving = SkeletonDataset(arrays, spatial_dims=2, velocity=True, **options)[0][0]
    torch.testing.assert_close(moving[2], plain[2], rtol=0, atol=0)  # the score, untouched
    torch.testing.assert_close(moving[:2, :-1], plain[:2, 1:] - plain[:2, :-1])
    with pytest.raises(ValueError, match="spatial_dims=0"):
        SkeletonDataset(arrays, spatial_dims=0, velocity=True, **options)
