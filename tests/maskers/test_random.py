from __future__ import annotations

import pytest
import torch

from skelmask.maskers.base import MaskContext, Region
from skelmask.maskers.random import Granularity, RandomMasker


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


@pytest.mark.parametrize(
    ("granularity", "num_hidden"), [("joint", 13), ("frame", 13), ("token", 13)]
)
def test_inside_a_region_hides_exactly_the_count_there_cutting_at_most_one_unit(
    granularity: Granularity, num_hidden: int
) -> None:
    # Region: the even time patches of a 6×5 grid (15 tokens); 13 is no whole number of units.
    time_patches, joint_patches = 6, 5
    inside = (torch.arange(time_patches) % 2 == 0).repeat_interleave(joint_patches)
    region = Region(mask=inside, size=15, time_patches=(0, 2, 4))
    context = MaskContext(
        tokens=torch.zeros(64, time_patches, joint_patches, 1),
        generator=torch.Generator().manual_seed(0),
        region=region,
    )
    hidden = RandomMasker(0.5, granularity=granularity).decide(context, num_hidden).hidden
    assert hidden.sum(dim=1).tolist() == [num_hidden] * 64
    assert not hidden[:, ~inside].any()
    grid = hidden.view(64, time_patches, joint_patches)[:, ::2]  # the region's (3, 5) tokens
    if granularity == "token":
        return
    # Units are joint columns or time-patch rows of the region; all but one are all or nothing.
    per_unit = grid.sum(dim=1) if granularity == "joint" else grid.sum(dim=2)
    full = 3 if granularity == "joint" else 5
    partial = ((per_unit > 0) & (per_unit < full)).sum(dim=1)
    assert (partial <= 1).all()
    assert (partial == 1).all()  # 13 is not a multiple of the unit, so one unit is cut


def test_mask_ratio_and_granularity_are_checked_when_set() -> None:
    masker = RandomMasker(0.5)
    with pytest.raises(ValueError, match="granularity must be one of"):
        masker.granularity = "body"  # type: ignore[assignment]
    with pytest.raises(ValueError, match=r"mask_ratio must be in the open interval \(0, 1\)"):
        masker.mask_ratio = 1.5
    assert (masker.mask_ratio, masker.granularity) == (0.5, "token")
    masker.granularity = "joint"
    assert masker.num_hidden((4, 10)) == 20


def test_token_masking_of_flat_tokens_needs_no_grid_size() -> None:
    # MAE's random_masking(x, mask_ratio): flat tokens, the ratio per call.
    tokens = torch.randn(3, 750, 16)
    result = RandomMasker()(tokens, mask_ratio=0.8, generator=torch.Generator().manual_seed(0))
    assert result.num_keep == 150
    visible, mask, ids_restore, ids_keep = result.apply(tokens)
    assert visible.shape == (3, 150, 16)
    assert mask.dtype == torch.float32
    assert mask.sum(dim=1).tolist() == [600.0] * 3
    assert torch.equal(visible, torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, 16)))
    assert torch.equal(ids_restore, result.ids_restore)


def test_joint_masking_of_flat_tokens_needs_their_grid() -> None:
    with pytest.raises(ValueError, match="need grid_size"):
        RandomMasker(0.5, granularity="joint")(torch.randn(2, 750, 16))
    result = RandomMasker(0.4, granularity="joint")(torch.randn(2, 750, 16), grid_size=(30, 25))
    grid = result.grid_mask
    assert torch.equal(grid, grid[:, :1].expand_as(grid))
    assert grid[:, 0].sum(dim=1).tolist() == [10] * 2


def test_repr_shows_the_configuration() -> None:
    assert "granularity='frame'" in repr(RandomMasker(0.3, granularity="frame"))
