"""DegreeMotionMasker (ASMa): each view hides what it says; the two views are complementary."""

from __future__ import annotations

import pytest
import torch

from skelmask.layouts import SkeletonLayout
from skelmask.maskers.degree import DegreeMotionMasker, degree_motion_views, joint_degrees

# A star: joint 0 is the hub (degree 4), joints 1-4 are leaves (degree 1).
STAR = SkeletonLayout.from_parents([-1, 0, 0, 0, 0], name="star")


def still_then_moving(batch: int) -> torch.Tensor:
    """(B, 8, 5, 3) coords: still in frames 0-3 (time patches 0, 1), moving after."""
    generator = torch.Generator().manual_seed(0)
    coords = torch.zeros(batch, 8, 5, 3)
    coords[:, 4:] = torch.randn(batch, 4, 5, 3, generator=generator) * 5
    return coords


def test_joint_degrees_count_bones_and_scale_to_unit_range() -> None:
    layout = SkeletonLayout.from_parents([-1, 0, 1, 1], name="toy")  # degrees 1, 3, 1, 1
    assert joint_degrees(layout).tolist() == [0.0, 1.0, 0.0, 0.0]
    assert joint_degrees(STAR).tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_hub_still_view_hides_the_hub_in_still_time_patches() -> None:
    masker = DegreeMotionMasker("hub_still", 0.1, layout=STAR, t_patch=2)
    result = masker(torch.zeros(3, 4, 5, 1), coords=still_then_moving(3))
    assert result.num_hidden == 2
    expected = torch.zeros(4, 5, dtype=torch.bool)
    expected[:2, 0] = True
    assert torch.equal(result.grid_mask, expected.expand(3, 4, 5))


def test_limb_moving_view_hides_leaves_in_the_most_moving_time_patch() -> None:
    coords = still_then_moving(3)
    masker = DegreeMotionMasker("limb_moving", 0.2, layout=STAR, t_patch=2)
    result = masker(torch.zeros(3, 4, 5, 1), coords=coords)
    assert result.num_hidden == 4
    patches = coords.view(3, 4, 2, 5, 3)
    motion = (patches[:, 1:] - patches[:, :-1]).abs().mean(dim=(2, 3, 4))  # time patches 1-3
    busiest = motion.argmax(dim=1) + 1
    for sample in range(3):
        hidden = result.grid_mask[sample].nonzero().tolist()
        assert hidden == [[int(busiest[sample]), joint] for joint in range(1, 5)]


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.83])
def test_the_two_views_are_complementary_and_each_takes_its_own_end(ratio: float) -> None:
    tokens = torch.zeros(4, 6, 25, 1)
    coords = torch.randn(4, 24, 25, 3, generator=torch.Generator().manual_seed(1))
    hub, limb = degree_motion_views(tokens, coords, mask_ratio=ratio, t_patch=4)
    assert bool((hub.mask ^ limb.mask).all())
    assert hub.num_hidden + limb.num_hidden == 150
    assert hub.scores is not None
    assert limb.scores is not None
    torch.testing.assert_close(limb.scores, 2.0 - hub.scores)
    # Each view hides its own highest keys (up to the 1e-3 tie-breaking jitter).
    for result in (hub, limb):
        assert result.scores is not None
        hidden_low = result.scores.masked_fill(~result.mask, float("inf")).amin(dim=1)
        visible_high = result.scores.masked_fill(result.mask, float("-inf")).amax(dim=1)
        assert (hidden_low >= visible_high - 1e-3).all()


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="view must be one of"):
        DegreeMotionMasker("hubs")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="jitter must be a finite number > 0"):
        DegreeMotionMasker("hub_still", jitter=0.0)
    with pytest.raises(ValueError, match="Vp=20 joint patches"):
        DegreeMotionMasker("hub_still", t_patch=2)(
            torch.zeros(2, 4, 20, 1), coords=torch.zeros(2, 8, 20, 3)
        )
    with pytest.raises(ValueError, match="needs coords="):
        DegreeMotionMasker("hub_still", layout=STAR)(torch.zeros(2, 4, 5, 1))
