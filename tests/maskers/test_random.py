from __future__ import annotations

import pytest
import torch

from skelmask.maskers.random import RandomMasker


def test_token_masking_is_uniform_over_positions() -> None:
    masker = RandomMasker(0.5)
    result = masker(torch.zeros(4000, 2, 3, 1), generator=torch.Generator().manual_seed(0))
    rate = result.mask.float().mean(dim=0)
    assert torch.allclose(rate, torch.full((6,), 0.5), atol=0.03)
    assert result.scores is None
    assert result.probs is not None
    assert torch.allclose(result.probs, torch.full_like(result.probs, 1 / 6))


def test_samples_in_a_batch_draw_different_masks() -> None:
    result = RandomMasker(0.5)(torch.zeros(8, 10, 25, 1))
    assert len({tuple(row.tolist()) for row in result.mask}) == 8


def test_joint_granularity_hides_the_same_joints_in_every_frame() -> None:
    result = RandomMasker(0.4, granularity="joint")(torch.zeros(5, 30, 25, 1))
    grid = result.grid_mask
    assert torch.equal(grid, grid[:, :1].expand_as(grid))
    assert grid[:, 0].sum(dim=1).tolist() == [10] * 5


def test_frame_granularity_hides_whole_time_patches() -> None:
    result = RandomMasker(0.5, granularity="frame")(torch.zeros(5, 30, 25, 1))
    grid = result.grid_mask
    assert torch.equal(grid, grid[:, :, :1].expand_as(grid))
    assert grid[:, :, 0].sum(dim=1).tolist() == [15] * 5


def test_axis_granularity_needs_two_units_on_its_axis() -> None:
    with pytest.raises(ValueError, match="needs at least 2 joint patches, got 1"):
        RandomMasker(0.5, granularity="joint")(torch.zeros(1, 8, 1, 4))
    with pytest.raises(ValueError, match="needs at least 2 time patches, got 1"):
        RandomMasker(0.5, granularity="frame")(torch.zeros(1, 1, 8, 4))


def test_unknown_granularity_is_an_error() -> None:
    with pytest.raises(ValueError, match="granularity must be one of"):
        RandomMasker(0.5, granularity="body")  # type: ignore[arg-type]


def test_axis_granularity_cannot_run_inside_a_region() -> None:
    masker = RandomMasker(0.5, granularity="joint")
    with pytest.raises(ValueError, match="cannot mask inside a region"):
        masker.decide(
            torch.zeros(1, 2, 2, 1),
            coords=None,
            generator=None,
            region=torch.tensor([True, True, False, False]),
            num_hidden=1,
        )


def test_repr_shows_the_configuration() -> None:
    assert "granularity='frame'" in repr(RandomMasker(0.3, granularity="frame"))
