from __future__ import annotations

import numpy as np
import pytest
import torch

from skelmask.layouts import get_layout
from skelmask.maskers.base import MaskContext
from skelmask.maskers.motion import MotionAwareMasker
from skelmask.tokens import flatten_grid, patchify


def reference_motion_scores(coords: torch.Tensor, t_patch: int) -> torch.Tensor:
    """MAMP's score written out with loops over patches and joints."""
    batch, frames, joints, _ = coords.shape
    time_patches = frames // t_patch
    scores = torch.zeros(batch, time_patches, joints)
    for b in range(batch):
        for t in range(1, time_patches):
            for v in range(joints):
                now = coords[b, t * t_patch : (t + 1) * t_patch, v]
                before = coords[b, (t - 1) * t_patch : t * t_patch, v]
                scores[b, t, v] = (now - before).abs().mean()
        scores[b, 0] = scores[b, 1]
    return scores


def test_scores_match_a_hand_written_reference() -> None:
    coords = torch.randn(2, 12, 5, 3)
    masker = MotionAwareMasker(0.5, t_patch=3)
    scores = masker.score(MaskContext(torch.zeros(2, 4, 5, 1), coords=coords))
    assert torch.allclose(scores, reference_motion_scores(coords, 3), atol=1e-6)


def test_result_scores_are_flat_time_major_motion() -> None:
    coords = torch.randn(2, 12, 5, 3)
    masker = MotionAwareMasker(0.5, t_patch=3)
    result = masker(torch.zeros(2, 4, 5, 1), coords=coords)
    assert result.scores is not None
    assert torch.allclose(result.scores, reference_motion_scores(coords, 3).flatten(1), atol=1e-6)


def moving_joint_coords(batch: int) -> torch.Tensor:
    """Joint 3 sweeps back and forth; every other joint is still."""
    coords = torch.zeros(batch, 40, 8, 3)
    swing = torch.sin(torch.linspace(0, 6 * torch.pi, 40))
    coords[:, :, 3, 0] = swing
    return coords


def test_high_motion_tokens_are_hidden_more_often_than_still_ones() -> None:
    masker = MotionAwareMasker(0.5, t_patch=4, temperature=0.5)
    result = masker(
        torch.zeros(3000, 10, 8, 1),
        coords=moving_joint_coords(3000),
        generator=torch.Generator().manual_seed(0),
    )
    hidden_rate = result.grid_mask.float().mean(dim=(0, 1))
    still_rate = torch.cat([hidden_rate[:3], hidden_rate[4:]]).mean()
    # Softmax weights differ by e^(1/0.5) ≈ 7.4; the moving joint is hidden far more often.
    assert hidden_rate[3] > still_rate + 0.25


def test_keep_high_direction_keeps_high_motion_visible() -> None:
    masker = MotionAwareMasker(0.5, t_patch=4, temperature=0.5, direction="keep_high")
    result = masker(torch.zeros(3000, 10, 8, 1), coords=moving_joint_coords(3000))
    hidden_rate = result.grid_mask.float().mean(dim=(0, 1))
    assert hidden_rate[3] < torch.cat([hidden_rate[:3], hidden_rate[4:]]).mean() - 0.25


def test_motionless_sample_is_masked_uniformly_without_nan() -> None:
    masker = MotionAwareMasker(0.9, t_patch=4)
    result = masker(torch.zeros(2, 30, 25, 4), coords=torch.zeros(2, 120, 25, 3))
    assert result.probs is not None
    assert torch.allclose(result.probs, torch.full_like(result.probs, 1 / 750))


def test_joint_patches_group_joints() -> None:
    coords = torch.randn(2, 8, 6, 3)
    masker = MotionAwareMasker(0.5, t_patch=2, v_patch=3)
    scores = masker.score(MaskContext(torch.zeros(2, 4, 2, 1), coords=coords))
    patches = patchify(coords, 2, 3)
    expected = (patches[:, 1:] - patches[:, :-1]).abs().mean(-1)
    assert torch.allclose(scores[:, 1:], expected)
    assert torch.equal(scores[:, 0], scores[:, 1])


def test_scores_carry_no_gradient() -> None:
    coords = torch.randn(2, 8, 4, 3, requires_grad=True)
    result = MotionAwareMasker(0.5, t_patch=2)(torch.zeros(2, 4, 4, 1), coords=coords)
    assert result.scores is not None
    assert not result.scores.requires_grad


@pytest.mark.parametrize(
    ("coords", "message"),
    [
        (None, r"MotionAwareMasker needs coords=: raw \(B, T, V, C\) = \(2, 120, 25, C\)"),
        (torch.zeros(2, 120, 25), r"flat patchified coordinates \(B, L, P\), but L = 120"),
        (torch.zeros(2, 100, 25, 3), r"\(2, 120, 25, C\).*got shape \(2, 100, 25, 3\)"),
        (torch.zeros(2, 120, 18, 3), r"got shape \(2, 120, 18, 3\)"),
        (torch.zeros(3, 120, 25, 3), r"got shape \(3, 120, 25, 3\)"),
        (torch.zeros(2, 30, 24, 12), r"\(2, 30, 25, P\).*got shape \(2, 30, 24, 12\)"),
        (torch.zeros(2, 120, 25, 0), r"got shape \(2, 120, 25, 0\)"),
        (torch.zeros(2, 3, 30, 25, 3), r"got shape \(2, 3, 30, 25, 3\)"),
    ],
)
def test_wrong_coordinates_are_clear_errors(coords: torch.Tensor | None, message: str) -> None:
    masker = MotionAwareMasker(0.9, t_patch=4)
    with pytest.raises(ValueError, match=message):
        masker(torch.zeros(2, 30, 25, 8), coords=coords)


def test_patchified_coordinates_give_the_same_scores_as_raw_ones() -> None:
    # MAMP passes its patchified x_orig (B, Tp, Vp, t_patch·C), or flat (B, L, t_patch·C).
    raw = torch.randn(3, 40, 6, 3)
    masker = MotionAwareMasker(0.7, t_patch=4, v_patch=2)
    tokens = torch.zeros(3, 10, 3, 8)
    patchified = patchify(raw, 4, 2)  # (3, 10, 3, 24)
    by_raw = masker(tokens, coords=raw, generator=torch.Generator().manual_seed(0))
    for coords in (patchified, flatten_grid(patchified)):
        result = masker(tokens, coords=coords, generator=torch.Generator().manual_seed(0))
        assert result.scores is not None
        assert by_raw.scores is not None
        assert torch.equal(result.scores, by_raw.scores)
        assert torch.equal(result.mask, by_raw.mask)


def test_flat_tokens_take_their_grid_from_raw_or_patchified_coordinates() -> None:
    raw = torch.randn(2, 120, 25, 3)
    patchified = patchify(raw, 4)
    tokens = torch.randn(2, 30, 25, 16)
    expected = MotionAwareMasker(t_patch=4)(tokens, coords=raw).scores
    assert expected is not None
    for coords in (raw, patchified):
        result = MotionAwareMasker(t_patch=4)(flatten_grid(tokens), coords=coords)
        assert result.grid_size == (30, 25)
        assert result.scores is not None
        assert torch.equal(result.scores, expected)
    # Flat coordinates show no grid: the caller names it; the error names what was given.
    shown = r"no grid of 750 tokens in coords of shape \(2, 750, 12\)$"
    with pytest.raises(ValueError, match=shown):
        MotionAwareMasker(t_patch=4)(flatten_grid(tokens), coords=flatten_grid(patchified))
    named = MotionAwareMasker(t_patch=4)(
        flatten_grid(tokens), coords=flatten_grid(patchified), grid_size=(30, 25)
    )
    assert named.scores is not None
    assert torch.equal(named.scores, expected)


def test_mamps_call_with_per_call_ratio_and_temperature() -> None:
    # motion_aware_random_masking(x, x_orig, mask_ratio, tau) in MAMP's shapes.
    x, x_orig = torch.randn(2, 750, 32), torch.randn(2, 30, 25, 12)
    masker = MotionAwareMasker(0.5, t_patch=4)
    result = masker(x, coords=x_orig, mask_ratio=0.9, temperature=0.75)
    x_masked, mask, ids_restore, ids_keep = result.apply(x)
    assert x_masked.shape == (2, 75, 32)
    assert mask.sum(dim=1).tolist() == [675.0, 675.0]
    assert ids_restore.shape == (2, 750)
    assert ids_keep.shape == (2, 75)
    # The call's temperature is the one used: logits are scores / (0.75 · max score), so the
    # largest probability ratio is exp((max - min) / (0.75 · max)). float32 logits of size ≤ 1.4
    # carry ~1e-7 absolute error, so the ratio holds to well within rtol 1e-5.
    assert result.probs is not None
    assert result.scores is not None
    ratio = result.probs.amax(dim=1) / result.probs.amin(dim=1)
    top, bottom = result.scores.double().amax(dim=1), result.scores.double().amin(dim=1)
    expected = torch.exp((top - bottom) / (0.75 * top)).float()
    torch.testing.assert_close(ratio, expected, rtol=1e-5, atol=0.0)
    assert (masker.mask_ratio, masker.temperature) == (0.5, 0.8)


def test_attributes_are_checked_when_set() -> None:
    masker = MotionAwareMasker(0.5, t_patch=4)
    for name, value, message in [
        ("t_patch", 0, "t_patch must be a positive integer"),
        ("v_patch", 2.0, "v_patch must be a positive integer"),
        ("temperature", -1.0, "temperature must be a finite number > 0"),
        ("direction", "up", "direction must be one of"),
        ("mask_ratio", 1.5, r"mask_ratio must be in the open interval \(0, 1\)"),
    ]:
        with pytest.raises(ValueError, match=message):
            setattr(masker, name, value)
    assert (masker.t_patch, masker.v_patch, masker.temperature) == (4, 1, 0.8)
    assert (masker.direction, masker.mask_ratio) == ("hide_high", 0.5)
    masker.t_patch = 2
    assert masker(torch.zeros(1, 5, 3, 1), coords=torch.randn(1, 10, 3, 2)).grid_size == (5, 3)


def test_nan_coordinates_are_a_clear_error() -> None:
    coords = torch.zeros(2, 120, 25, 3)
    coords[1, 5, 3, 0] = float("nan")
    with pytest.raises(ValueError, match="coords contains 1 NaN or infinite values"):
        MotionAwareMasker(0.9, t_patch=4)(torch.zeros(2, 30, 25, 8), coords=coords)


def test_single_time_patch_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least 2 time patches"):
        MotionAwareMasker(0.5, t_patch=4)(torch.zeros(1, 1, 25, 8), coords=torch.zeros(1, 4, 25, 3))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"t_patch": 0}, "t_patch must be a positive integer"),
        ({"v_patch": 1.5}, "v_patch must be a positive integer"),
        ({"temperature": 0.0}, "temperature must be a finite number > 0"),
        ({"temperature": float("inf")}, "temperature must be a finite number > 0"),
        ({"direction": "up"}, "direction must be one of"),
    ],
)
def test_bad_constructor_arguments_are_clear_errors(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        MotionAwareMasker(0.9, **kwargs)  # type: ignore[arg-type]


def test_real_msr_action3d_hand_wave_hides_the_waving_arm(shared_data: object) -> None:
    """On a real 'high arm wave' (a01), the active arm's tokens are hidden more than the legs'."""
    from pathlib import Path

    assert isinstance(shared_data, Path)
    folder = shared_data / "msr-action3d" / "MSRAction3DSkeletonReal3D"
    layout = get_layout("msr-action3d")
    sequences = []
    for path in sorted(folder.glob("a01_s0[1-5]_e01_skeleton3D.txt")):
        frames = np.loadtxt(path).reshape(-1, 20, 4)[:, :, :3]
        index = np.linspace(0, len(frames) - 1, 40).round().astype(int)
        sequences.append(torch.from_numpy(frames[index]).float())
    assert sequences, f"no a01 files found in {folder}"
    coords = torch.stack(sequences)
    masker = MotionAwareMasker(0.5, t_patch=4, temperature=0.5)
    draws = 400
    result = masker(
        torch.zeros(draws * len(sequences), 10, 20, 1),
        coords=coords.repeat(draws, 1, 1, 1),
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.isfinite(result.scores).all()  # type: ignore[arg-type]
    hidden_rate = result.grid_mask.float().mean(dim=(0, 1))
    arms = [*layout.body_parts["left_arm"], *layout.body_parts["right_arm"]]
    legs = [*layout.body_parts["left_leg"], *layout.body_parts["right_leg"]]
    waving_hand = max(hidden_rate[layout.joint_index(n)] for n in ("left_hand", "right_hand"))
    assert waving_hand > hidden_rate[legs].mean() + 0.1
    assert hidden_rate[arms].max() > hidden_rate[legs].max()


def test_numpy_integer_patch_sizes_are_integers() -> None:
    # np.int64 (read from an array or a config) used to be refused as "not a positive integer".
    masker = MotionAwareMasker(t_patch=np.int64(4), v_patch=np.int32(1))  # type: ignore[arg-type]
    assert (type(masker.t_patch), masker.t_patch, type(masker.v_patch)) == (int, 4, int)
    coords = torch.randn(2, 32, 5, 3)
    result = masker(
        torch.randn(2, 8, 5, 16), coords=coords, generator=torch.Generator().manual_seed(0)
    )
    expected = MotionAwareMasker(t_patch=4)(
        torch.randn(2, 8, 5, 16), coords=coords, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(result.mask, expected.mask)
    for bad in (True, np.bool_(True), 4.0, np.float64(4.0)):
        with pytest.raises(ValueError, match="t_patch must be a positive integer"):
            MotionAwareMasker(t_patch=bad)  # type: ignore[arg-type]
