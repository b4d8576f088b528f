"""Second-order motion targets (MaskSem) and motion-energy weighting (AMR)."""

from __future__ import annotations

import pytest
import torch

from skelmask.losses.reconstruction import motion_target


def test_second_order_target_is_hand_computed_acceleration() -> None:
    # One joint, one coordinate, 6 frames: x = t^3 → second differences 6t + 6.
    coords = torch.arange(6.0).pow(3).view(1, 6, 1, 1)
    target = motion_target(coords, t_patch=3, order=2)
    # x = 0, 1, 8, 27, 64, 125 → a[t] = x[t+2] - 2x[t+1] + x[t] = 6, 12, 18, 24, then 0, 0.
    assert target.shape == (1, 2, 1, 3)
    assert target.flatten().tolist() == [6.0, 12.0, 18.0, 24.0, 0.0, 0.0]


def test_second_order_is_the_difference_of_first_order_before_padding() -> None:
    coords = torch.randn(2, 8, 5, 3)
    velocity = coords[:, 1:] - coords[:, :-1]
    acceleration = velocity[:, 1:] - velocity[:, :-1]
    target = motion_target(coords, t_patch=1, order=2).squeeze(-1)
    expected = torch.cat([acceleration, torch.zeros(2, 2, 5, 3)], dim=1)
    torch.testing.assert_close(target.view(2, 8, 5, 3), expected)


@pytest.mark.parametrize("order", [0, 8, 1.5, True])
def test_bad_order_is_a_clear_error(order: object) -> None:
    with pytest.raises(ValueError, match=r"order must be an integer in \[1, T - 1\] = \[1, 7\]"):
        motion_target(torch.zeros(1, 8, 2, 3), t_patch=2, order=order)  # type: ignore[arg-type]


def test_motion_weighted_loss_matches_a_hand_computed_reference() -> None:
    from skelmask.losses.reconstruction import MaskedReconstructionLoss

    # One sample, three tokens of P = 2; tokens 0 and 2 hidden.
    target = torch.tensor([[[1.0, 1.0], [5.0, 5.0], [3.0, 1.0]]])
    pred = torch.tensor([[[0.0, 1.0], [0.0, 0.0], [1.0, 1.0]]])
    mask = torch.tensor([[True, False, True]])
    loss = MaskedReconstructionLoss(normalize_target=False, motion_weighted=True, eps=1e-6)
    # energies: 1, 25, 5; hidden mean (1 + 5) / 2 = 3; weights (1+ε)/(3+ε), (5+ε)/(3+ε)
    # errors: mean((1, 0)^2) = 0.5, mean((2, 0)^2) = 2
    eps = 1e-6
    expected = (0.5 * (1 + eps) / (3 + eps) + 2.0 * (5 + eps) / (3 + eps)) / 2
    assert float(loss(pred, target, mask)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_motion_weighted_loss_is_finite_for_still_and_huge_motion(dtype: torch.dtype) -> None:
    from skelmask.losses.reconstruction import MaskedReconstructionLoss

    loss = MaskedReconstructionLoss(motion_weighted=True)
    mask = torch.rand(2, 12, generator=torch.Generator().manual_seed(0)) < 0.5
    mask[:, 0] = True
    still = torch.zeros(2, 12, 6, dtype=dtype)
    huge = torch.full((2, 12, 6), 6e4, dtype=dtype)
    huge[:, ::2] = 0
    pred = torch.randn(2, 12, 6).to(dtype)
    for target in (still, huge):
        value = loss(pred, target, mask)
        assert value.dtype == torch.float32
        assert torch.isfinite(value)


def test_motion_energy_weights_are_the_loss_weights_and_average_one_over_hidden_tokens() -> None:
    from skelmask.losses.reconstruction import MaskedReconstructionLoss, motion_energy_weights

    generator = torch.Generator().manual_seed(0)
    target = torch.randn(3, 4, 5, 6, generator=generator)  # (B, Tp, Vp, P) grid
    mask = torch.rand(3, 20, generator=generator) < 0.6
    mask[:, 0] = True
    weights = motion_energy_weights(target, mask.view(3, 4, 5))
    assert weights.shape == (3, 20)
    assert weights.dtype == torch.float32
    hidden_mean = (weights * mask).sum(dim=1) / mask.sum(dim=1)
    torch.testing.assert_close(hidden_mean, torch.ones(3))
    # The loss applies exactly these weights: with pred = 0 and no normalisation, the per-token
    # error is the energy itself.
    flat = target.flatten(1, 2)
    energy = flat.square().mean(dim=-1)
    expected = (weights * energy * mask).sum() / mask.sum()
    loss = MaskedReconstructionLoss(normalize_target=False, motion_weighted=True)
    torch.testing.assert_close(loss(torch.zeros_like(flat), target, mask), expected)


def test_motion_energy_weights_reject_a_mask_that_does_not_fit() -> None:
    from skelmask.losses.reconstruction import motion_energy_weights

    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        motion_energy_weights(torch.zeros(1, 4, 2), torch.ones(1, 4))
    with pytest.raises(ValueError, match=r"mask must have shape \(B, L\) = \(1, 4\)"):
        motion_energy_weights(torch.zeros(1, 4, 2), torch.ones(1, 5, dtype=torch.bool))
