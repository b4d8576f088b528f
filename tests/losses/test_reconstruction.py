"""Tests of the reconstruction targets and MaskedReconstructionLoss against hand computations."""

from __future__ import annotations

import pytest
import torch

from skelmask.losses.reconstruction import (
    MaskedReconstructionLoss,
    coordinate_target,
    motion_target,
    normalize_patches,
)


def _manual_patches(values: torch.Tensor, t_patch: int, v_patch: int) -> torch.Tensor:
    """Patchifies with explicit loops: value order inside a patch is (frame, joint, coordinate)."""
    batch, frames, joints, channels = values.shape
    out = torch.empty(batch, frames // t_patch, joints // v_patch, t_patch * v_patch * channels)
    for b in range(batch):
        for tp in range(frames // t_patch):
            for vp in range(joints // v_patch):
                flat = []
                for pt in range(t_patch):
                    for pv in range(v_patch):
                        for c in range(channels):
                            flat.append(values[b, tp * t_patch + pt, vp * v_patch + pv, c])
                out[b, tp, vp] = torch.stack(flat)
    return out


@pytest.mark.parametrize(("t_patch", "v_patch"), [(1, 1), (2, 1), (3, 2)])
def test_motion_target_is_frame_difference(t_patch: int, v_patch: int) -> None:
    generator = torch.Generator().manual_seed(0)
    coords = torch.randn(2, 6, 4, 3, generator=generator)
    motion = torch.zeros_like(coords)
    for t in range(coords.shape[1] - 1):
        motion[:, t] = coords[:, t + 1] - coords[:, t]
    target = motion_target(coords, t_patch, v_patch)
    torch.testing.assert_close(target, _manual_patches(motion, t_patch, v_patch))
    # The last frame is the last t_patch-th block of every patch in the last time row.
    last_frame = target[:, -1].unflatten(-1, (t_patch, v_patch, 3))[:, :, -1]
    assert (last_frame == 0).all()


def test_motion_target_of_static_pose_is_zero() -> None:
    coords = torch.randn(1, 1, 5, 3).expand(2, 8, 5, 3)
    assert (motion_target(coords, t_patch=4) == 0).all()


def test_coordinate_target_patches_the_coordinates() -> None:
    coords = torch.randn(2, 6, 4, 2)
    torch.testing.assert_close(coordinate_target(coords, 3, 2), _manual_patches(coords, 3, 2))


def test_targets_reject_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"coords must have shape \(B, T, V, C\)"):
        motion_target(torch.zeros(6, 4, 3), t_patch=2)
    with pytest.raises(ValueError, match="t_patch=4"):
        motion_target(torch.zeros(1, 6, 4, 3), t_patch=4)
    with pytest.raises(ValueError, match="v_patch=3"):
        coordinate_target(torch.zeros(1, 6, 4, 3), t_patch=2, v_patch=3)


def test_normalized_patches_have_zero_mean_and_unit_variance() -> None:
    generator = torch.Generator().manual_seed(1)
    target = 5.0 + 3.0 * torch.randn(2, 4, 5, 12, generator=generator)
    normalized = normalize_patches(target)
    torch.testing.assert_close(normalized.mean(dim=-1), torch.zeros(2, 4, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(normalized.var(dim=-1), torch.ones(2, 4, 5), atol=1e-5, rtol=0)
    manual = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    torch.testing.assert_close(normalized, manual)


def test_normalized_constant_patch_is_zero() -> None:
    normalized = normalize_patches(torch.full((3, 9), 2.5))
    assert torch.isfinite(normalized).all()
    assert (normalized == 0).all()


def test_normalize_patches_rejects_single_values() -> None:
    with pytest.raises(ValueError, match="at least 2 values per patch"):
        normalize_patches(torch.zeros(4, 1))
    with pytest.raises(ValueError, match="eps"):
        normalize_patches(torch.zeros(4, 3), eps=0.0)


def _manual_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, normalize: bool
) -> float:
    total, count = 0.0, 0
    for b in range(pred.shape[0]):
        for token in range(pred.shape[1]):
            if not mask[b, token]:
                continue
            y = target[b, token].double()
            if normalize:
                y = (y - y.mean()) / (y.var() + 1e-6).sqrt()
            total += float(((pred[b, token].double() - y) ** 2).mean())
            count += 1
    return total / count


@pytest.mark.parametrize("normalize", [True, False])
def test_loss_matches_hand_computation(normalize: bool) -> None:
    generator = torch.Generator().manual_seed(2)
    pred = torch.randn(2, 6, 4, generator=generator)
    target = torch.randn(2, 6, 4, generator=generator)
    mask = torch.rand(2, 6, generator=generator) < 0.5
    mask[:, 0] = True
    loss = MaskedReconstructionLoss(normalize_target=normalize)(pred, target, mask)
    assert loss.item() == pytest.approx(_manual_loss(pred, target, mask, normalize), rel=1e-5)


def test_visible_tokens_are_ignored() -> None:
    generator = torch.Generator().manual_seed(3)
    pred = torch.randn(2, 8, 6, generator=generator)
    target = torch.randn(2, 8, 6, generator=generator)
    mask = torch.tensor([[True, False] * 4, [False, False, True, True] * 2])
    loss_fn = MaskedReconstructionLoss()
    changed = pred.clone()
    changed[~mask] = 100.0 * torch.randn(int((~mask).sum()), 6, generator=generator)
    torch.testing.assert_close(loss_fn(changed, target, mask), loss_fn(pred, target, mask))
    changed[~mask] = float("inf")
    torch.testing.assert_close(loss_fn(changed, target, mask), loss_fn(pred, target, mask))
    leaf = pred.clone().requires_grad_()
    loss_fn(leaf, target, mask).backward()
    assert leaf.grad is not None
    assert (leaf.grad[~mask] == 0).all()
    assert (leaf.grad[mask] != 0).any()


def test_grid_inputs_are_flattened_time_major() -> None:
    generator = torch.Generator().manual_seed(4)
    coords = torch.randn(2, 8, 5, 3, generator=generator)
    target_grid = motion_target(coords, t_patch=2)  # (2, 4, 5, 6)
    pred_grid = torch.randn(2, 4, 5, 6, generator=generator)
    mask_grid = torch.rand(2, 4, 5, generator=generator) < 0.7
    loss_fn = MaskedReconstructionLoss()
    flat = loss_fn(
        pred_grid.reshape(2, 20, 6), target_grid.reshape(2, 20, 6), mask_grid.reshape(2, 20)
    )
    torch.testing.assert_close(loss_fn(pred_grid, target_grid, mask_grid), flat)
    torch.testing.assert_close(loss_fn(pred_grid.reshape(2, 20, 6), target_grid, mask_grid), flat)
    # Token l = t·Vp + v of the flat prediction is grid cell (t, v).
    token = 2 * 5 + 3
    assert torch.equal(pred_grid.reshape(2, 20, 6)[:, token], pred_grid[:, 2, 3])


def test_all_hidden_is_the_mean_over_every_token() -> None:
    generator = torch.Generator().manual_seed(5)
    pred = torch.randn(2, 5, 4, generator=generator)
    target = torch.randn(2, 5, 4, generator=generator)
    mask = torch.ones(2, 5, dtype=torch.bool)
    loss = MaskedReconstructionLoss(normalize_target=False)(pred, target, mask)
    torch.testing.assert_close(loss, torch.nn.functional.mse_loss(pred, target))


def test_nothing_hidden_gives_zero_without_nan() -> None:
    pred = torch.randn(2, 5, 4, requires_grad=True)
    target = torch.randn(2, 5, 4)
    loss = MaskedReconstructionLoss()(pred, target, torch.zeros(2, 5, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert pred.grad is not None
    assert (pred.grad == 0).all()


def test_zero_motion_target_gives_finite_loss() -> None:
    """A padded body has zero motion: its normalised target is 0, not NaN."""
    coords = torch.zeros(1, 8, 5, 3)
    target = motion_target(coords, t_patch=4)
    pred = torch.randn(1, 2, 5, 12)
    loss = MaskedReconstructionLoss()(pred, target, torch.ones(1, 2, 5, dtype=torch.bool))
    torch.testing.assert_close(loss, pred.square().mean())


def test_low_precision_prediction_gives_float32_loss() -> None:
    generator = torch.Generator().manual_seed(6)
    pred = torch.randn(2, 5, 4, generator=generator).to(torch.bfloat16)
    target = torch.randn(2, 5, 4, generator=generator)
    mask = torch.ones(2, 5, dtype=torch.bool)
    loss = MaskedReconstructionLoss()(pred, target, mask)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(_manual_loss(pred.float(), target, mask, True), rel=1e-5)


def test_shape_errors_name_the_argument() -> None:
    loss_fn = MaskedReconstructionLoss()
    pred = torch.zeros(2, 6, 4)
    mask = torch.ones(2, 6, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"pred must have shape \(B, L, P\).*got 2 dimensions"):
        loss_fn(pred[0], pred, mask)
    with pytest.raises(ValueError, match=r"target must have shape"):
        loss_fn(pred, torch.zeros(2, 6, 4, 1, 1), mask)
    with pytest.raises(ValueError, match=r"pred and target.*\(2, 6, 4\).*\(2, 6, 5\)"):
        loss_fn(pred, torch.zeros(2, 6, 5), mask)
    with pytest.raises(ValueError, match=r"mask must have shape \(B, L\) = \(2, 6\).*\(2, 5\)"):
        loss_fn(pred, pred, mask[:, :5])
    with pytest.raises(ValueError, match=r"mask must have shape.*\(3, 2, 2\)"):
        loss_fn(pred, pred, torch.ones(3, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        loss_fn(pred, pred, mask.float())
    with pytest.raises(ValueError, match="at least 2 values per patch"):
        loss_fn(pred[..., :1], pred[..., :1], mask)
    with pytest.raises(ValueError, match="eps"):
        MaskedReconstructionLoss(eps=-1.0)


def test_single_value_patches_without_normalisation() -> None:
    pred = torch.randn(2, 6, 1)
    target = torch.randn(2, 6, 1)
    mask = torch.ones(2, 6, dtype=torch.bool)
    loss = MaskedReconstructionLoss(normalize_target=False)(pred, target, mask)
    torch.testing.assert_close(loss, torch.nn.functional.mse_loss(pred, target))


def test_compiled_matches_eager() -> None:
    generator = torch.Generator().manual_seed(7)
    coords = torch.randn(2, 8, 5, 3, generator=generator)
    data = torch.randn(2, 20, 6, generator=generator)
    mask = torch.rand(2, 20, generator=generator) < 0.8

    def step(pred: torch.Tensor) -> torch.Tensor:
        return MaskedReconstructionLoss()(pred, motion_target(coords, t_patch=2), mask)

    compiled = torch.compile(step, backend="eager", fullgraph=True)
    eager_pred = data.clone().requires_grad_()
    compiled_pred = data.clone().requires_grad_()
    eager = step(eager_pred)
    result = compiled(compiled_pred)
    torch.testing.assert_close(result, eager)
    eager.backward()
    result.backward()
    torch.testing.assert_close(compiled_pred.grad, eager_pred.grad)


def test_loss_on_device(device: torch.device) -> None:
    generator = torch.Generator().manual_seed(8)
    coords = torch.randn(2, 8, 5, 3, generator=generator)
    pred = torch.randn(2, 20, 6, generator=generator)
    mask = torch.rand(2, 20, generator=generator) < 0.8
    mask[:, 0] = True
    target = motion_target(coords, t_patch=2)
    expected = _manual_loss(pred, target.reshape(2, 20, 6), mask, True)
    loss = MaskedReconstructionLoss()(
        pred.to(device), motion_target(coords.to(device), t_patch=2), mask.to(device)
    )
    assert loss.device.type == device.type
    assert loss.item() == pytest.approx(expected, rel=1e-5)


# --- hostile inputs: huge values, half precision, NaN, autocast -------------------------------


def test_motion_target_of_large_half_precision_coordinates_is_finite() -> None:
    coords = torch.tensor([4e4, -4e4, 4e4, -4e4], dtype=torch.float16).reshape(1, 4, 1, 1)
    target = motion_target(coords, t_patch=2)
    assert target.dtype == torch.float32
    expected = torch.tensor([[[[-8e4, 8e4]], [[-8e4, 0.0]]]])  # float16 would give ±inf
    torch.testing.assert_close(target, expected, rtol=0.0, atol=0.0)


@pytest.mark.parametrize("scale", [1.0, 1e10, 1e20, 1e30])
def test_normalize_patches_is_scale_invariant_even_beyond_the_float32_variance(
    scale: float,
) -> None:
    """var(1e20·y) = 1e40 overflows float32; the result must still be the normalised patch.

    Tolerance: eps = 1e-6 is added to the variance of the unscaled patch (variance ~1), which
    changes the result by ~5e-7 relative; the scaled patches see eps only relative to s².
    """
    patch = torch.randn(3, 5, 8, generator=torch.Generator().manual_seed(0))
    reference = (patch - patch.mean(-1, keepdim=True)) / patch.var(-1, keepdim=True).sqrt()
    torch.testing.assert_close(normalize_patches(patch * scale), reference, rtol=1e-5, atol=1e-5)


def test_a_nan_target_makes_the_loss_nan_only_at_a_hidden_token() -> None:
    """Values are not checked per step (that would read back from the device): NaN propagates."""
    pred = torch.zeros(1, 4, 3)
    target = torch.randn(1, 4, 3, generator=torch.Generator().manual_seed(1))
    target[0, 2, 1] = float("nan")
    loss_fn = MaskedReconstructionLoss()
    assert torch.isnan(loss_fn(pred, target, torch.tensor([[True, False, True, False]])))
    assert torch.isfinite(loss_fn(pred, target, torch.tensor([[True, True, False, False]])))


def test_the_loss_runs_in_float32_under_autocast() -> None:
    generator = torch.Generator().manual_seed(2)
    pred = torch.randn(2, 10, 6, generator=generator)
    target = torch.randn(2, 10, 6, generator=generator)
    mask = torch.rand(2, 10, generator=generator) < 0.5
    loss_fn = MaskedReconstructionLoss()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = loss_fn(pred, target, mask)
    assert under_autocast.dtype == torch.float32
    torch.testing.assert_close(under_autocast, loss_fn(pred, target, mask), rtol=1e-6, atol=0.0)
