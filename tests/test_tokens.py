from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skelmask.tokens import (
    expand_mask,
    flatten_grid,
    gather_tokens,
    mask_result_from_bool,
    patchify,
    restore_tokens,
    to_index_pair,
    to_mae_mask,
    token_positions,
    unflatten_tokens,
    unpatchify,
)


def test_patchify_orders_values_frame_joint_coordinate() -> None:
    coords = torch.arange(2 * 4 * 2 * 3, dtype=torch.float32).reshape(2, 4, 2, 3)
    grid = patchify(coords, t_patch=2)
    assert grid.shape == (2, 2, 2, 6)
    # token (t=1, v=0) holds frames 2 and 3 of joint 0, xyz each.
    expected = torch.cat([coords[0, 2, 0], coords[0, 3, 0]])
    assert torch.equal(grid[0, 1, 0], expected)


@given(
    batch=st.integers(1, 3),
    time_patches=st.integers(1, 5),
    joint_patches=st.integers(1, 5),
    t_patch=st.integers(1, 4),
    v_patch=st.integers(1, 3),
    channels=st.integers(1, 3),
)
@settings(max_examples=40, deadline=None)
def test_unpatchify_inverts_patchify(
    batch: int, time_patches: int, joint_patches: int, t_patch: int, v_patch: int, channels: int
) -> None:
    coords = torch.randn(batch, time_patches * t_patch, joint_patches * v_patch, channels)
    grid = patchify(coords, t_patch, v_patch)
    assert grid.shape == (batch, time_patches, joint_patches, t_patch * v_patch * channels)
    assert torch.equal(unpatchify(grid, t_patch, v_patch), coords)


def test_patchify_rejects_grids_that_do_not_divide() -> None:
    with pytest.raises(ValueError, match="T=10 must be a positive multiple of t_patch=4"):
        patchify(torch.zeros(1, 10, 25, 3), t_patch=4)
    with pytest.raises(ValueError, match="V=25 must be a positive multiple of v_patch=2"):
        patchify(torch.zeros(1, 8, 25, 3), t_patch=4, v_patch=2)
    with pytest.raises(ValueError, match=r"shape \(B, T, V, C\)"):
        patchify(torch.zeros(8, 25, 3), t_patch=4)
    with pytest.raises(ValueError, match="t_patch must be a positive integer"):
        patchify(torch.zeros(1, 8, 25, 3), t_patch=0)
    with pytest.raises(ValueError, match="D=10 must be a positive multiple"):
        unpatchify(torch.zeros(1, 2, 25, 10), t_patch=4)


def test_flat_tokens_are_time_major() -> None:
    grid = torch.randn(2, 3, 4, 5)
    flat = flatten_grid(grid)
    for t in range(3):
        for v in range(4):
            assert torch.equal(flat[:, t * 4 + v], grid[:, t, v])
    assert torch.equal(unflatten_tokens(flat, (3, 4)), grid)
    t_idx, v_idx = token_positions(torch.tensor([0, 5, 11]), (3, 4))
    assert t_idx.tolist() == [0, 1, 2]
    assert v_idx.tolist() == [0, 1, 3]


@st.composite
def masks_with_fixed_keep(draw: st.DrawFn) -> tuple[torch.Tensor, int, tuple[int, int]]:
    batch = draw(st.integers(1, 4))
    grid = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    num_tokens = grid[0] * grid[1]
    num_keep = draw(st.integers(0, num_tokens))
    rows = []
    for _ in range(batch):
        perm = draw(st.permutations(list(range(num_tokens))))
        row = torch.ones(num_tokens, dtype=torch.bool)
        row[list(perm[:num_keep])] = False
        rows.append(row)
    return torch.stack(rows), num_keep, grid


@given(masks_with_fixed_keep(), st.integers(1, 4))
@settings(max_examples=60, deadline=None)
def test_every_visible_token_returns_to_its_own_slot(
    case: tuple[torch.Tensor, int, tuple[int, int]], width: int
) -> None:
    mask, num_keep, grid = case
    batch, num_tokens = mask.shape
    result = mask_result_from_bool(mask, num_keep, grid)
    assert result.ids_keep.shape == (batch, num_keep)
    assert result.ids_mask.shape == (batch, num_tokens - num_keep)
    # ids are ascending, and keep/mask partition the tokens consistently with the mask.
    assert torch.all(result.ids_keep.diff(dim=1) > 0)
    assert torch.all(result.ids_mask.diff(dim=1) > 0)
    assert not torch.gather(mask, 1, result.ids_keep).any()
    assert torch.gather(mask, 1, result.ids_mask).all()
    tokens = torch.randn(batch, num_tokens, width)
    mask_token = torch.full((width,), 123.0)
    restored = restore_tokens(
        gather_tokens(tokens, result.ids_keep), result.ids_restore, mask_token
    )
    expected = torch.where(mask.unsqueeze(-1), mask_token, tokens)
    assert torch.equal(restored, expected)


def test_mask_result_rejects_rows_with_a_different_keep_count() -> None:
    mask = torch.tensor([[True, False, False], [True, True, False]])
    with pytest.raises(ValueError, match=r"keep exactly num_keep=2 tokens, got counts \[1, 2\]"):
        mask_result_from_bool(mask, 2, (1, 3))
    with pytest.raises(ValueError, match="L = Tp·Vp = 4"):
        mask_result_from_bool(mask, 2, (2, 2))


def test_converters_and_expansion() -> None:
    mask = torch.tensor([[True, False, True, False]])
    result = mask_result_from_bool(mask, 2, (2, 2))
    mae = to_mae_mask(result)
    assert mae.dtype == torch.float32
    assert mae.tolist() == [[1.0, 0.0, 1.0, 0.0]]
    keep, hide = to_index_pair(result)
    assert keep.tolist() == [[1, 3]]
    assert hide.tolist() == [[0, 2]]
    assert result.grid_mask.tolist() == [[[True, False], [True, False]]]
    expanded = expand_mask(mask, (2, 2), t_patch=2)
    assert expanded.shape == (1, 4, 2)
    assert expanded[0, :, 0].all()
    assert not expanded[0, :, 1].any()


def test_apply_returns_what_mae_style_masking_functions_return() -> None:
    # MAMP's motion_aware_random_masking returns four values, MAE's random_masking three.
    mask = torch.tensor([[True, False, True, False, False, True], [False] * 3 + [True] * 3])
    result = mask_result_from_bool(mask, 3, (2, 3))
    grid = torch.randn(2, 2, 3, 5)
    flat = flatten_grid(grid)
    visible, mae_mask, ids_restore, ids_keep = result.apply(flat)
    assert torch.equal(visible, gather_tokens(flat, result.ids_keep))
    assert mae_mask.dtype == torch.float32
    assert torch.equal(mae_mask, mask.float())
    assert torch.equal(ids_restore, result.ids_restore)
    assert torch.equal(ids_keep, result.ids_keep)
    # A grid gives the same, and the three-value form is a prefix of the four.
    assert all(
        torch.equal(a, b) for a, b in zip(result.apply(grid), result.apply(flat), strict=True)
    )
    x_masked, _, restore = result.apply(flat)[:3]
    restored = restore_tokens(x_masked, restore, torch.zeros(5))
    assert torch.equal(restored, torch.where(mask.unsqueeze(-1), 0.0, flat))


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((2, 5, 4), r"\(B, L\) = \(2, 6\), got shape \(2, 5, 4\)"),
        ((3, 6, 4), r"\(B, L\) = \(2, 6\), got shape \(3, 6, 4\)"),
        ((2, 6), r"\(B, L\) = \(2, 6\), got shape \(2, 6\)"),
        ((2, 2, 2, 4), r"\(B, L\) = \(2, 6\), got shape \(2, 2, 2, 4\)"),
    ],
)
def test_apply_rejects_tokens_of_another_grid(shape: tuple[int, ...], match: str) -> None:
    result = mask_result_from_bool(torch.tensor([[True, False] * 3] * 2), 3, (2, 3))
    with pytest.raises(ValueError, match=match):
        result.apply(torch.zeros(shape))


def test_unvalidated_mask_results_skip_the_count_check() -> None:
    # Maskers build exact counts by construction and skip the check (a device read-back).
    mask = torch.tensor([[True, False, False], [True, True, False]])
    result = mask_result_from_bool(mask, 2, (1, 3), validate=False)
    assert result.num_keep == 2
    assert result.num_hidden == 1


def test_restore_tokens_checks_its_arguments() -> None:
    ids_restore = torch.arange(4).unsqueeze(0)
    with pytest.raises(ValueError, match="mask_token must have 3 elements"):
        restore_tokens(torch.zeros(1, 2, 3), ids_restore, torch.zeros(4))
    with pytest.raises(ValueError, match="does not fit ids_restore"):
        restore_tokens(torch.zeros(2, 2, 3), ids_restore, torch.zeros(3))
    with pytest.raises(ValueError, match="same B"):
        gather_tokens(torch.zeros(2, 4, 3), torch.zeros(1, 2, dtype=torch.long))


def test_restore_keeps_gradients_of_visible_tokens_and_mask_token() -> None:
    mask = torch.tensor([[True, False, True, False]])
    result = mask_result_from_bool(mask, 2, (2, 2))
    visible = torch.randn(1, 2, 3, requires_grad=True)
    mask_token = torch.zeros(3, requires_grad=True)
    restore_tokens(visible, result.ids_restore, mask_token).sum().backward()
    assert visible.grad is not None
    assert torch.equal(visible.grad, torch.ones(1, 2, 3))
    assert mask_token.grad is not None
    assert torch.equal(mask_token.grad, torch.full((3,), 2.0))


def test_numpy_arrays_are_a_type_error_naming_the_argument() -> None:
    # They used to fail inside with an AttributeError about .dim().
    tokens, ids = torch.zeros(2, 6, 4), torch.zeros(2, 3, dtype=torch.long)
    calls = {
        "coords": lambda: patchify(np.zeros((2, 8, 5, 3)), 4),  # type: ignore[arg-type]
        "grid": lambda: unpatchify(np.zeros((2, 2, 5, 12)), 4),  # type: ignore[arg-type]
        "tokens": lambda: gather_tokens(tokens.numpy(), ids),  # type: ignore[arg-type]
        "ids": lambda: gather_tokens(tokens, ids.numpy()),  # type: ignore[arg-type]
        "ids_restore": lambda: restore_tokens(tokens, ids.numpy(), torch.zeros(4)),  # type: ignore[arg-type]
        "mask": lambda: mask_result_from_bool(np.zeros((2, 6), bool), 3, (2, 3)),  # type: ignore[arg-type]
    }
    for name, call in calls.items():
        with pytest.raises(TypeError, match=rf"^{name} must be a torch\.Tensor, got ndarray"):
            call()
