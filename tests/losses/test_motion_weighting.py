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
