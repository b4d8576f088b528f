"""SemanticTubeMasker: SLiM's tube rule, exact count, vectorised."""

from __future__ import annotations

import pytest
import torch

from skelmask.layouts import SkeletonLayout
from skelmask.maskers.base import MaskContext
from skelmask.maskers.cross import CrossMasker
from skelmask.maskers.tube import SemanticTubeMasker

# Parts in a non-sorted order, so that "contiguous in the part's order" differs from
# "contiguous joint indices".
PART_MAP = {"a": [3, 1, 0], "b": [2, 5, 4]}
LAYOUT = SkeletonLayout.from_parents([-1, 0, 1, 2, 3, 4], name="chain-6")


def part_positions() -> dict[int, tuple[str, int]]:
    return {joint: (name, k) for name, joints in PART_MAP.items() for k, joint in enumerate(joints)}


def assert_runs(times_by_joint: dict[int, list[int]]) -> None:
    """Joints lie in one part at contiguous positions; each joint's times are contiguous."""
    position = part_positions()
    parts = {position[joint][0] for joint in times_by_joint}
    assert len(parts) == 1, f"cells span parts {parts}"
    orders = sorted(position[joint][1] for joint in times_by_joint)
    assert orders == list(range(orders[0], orders[0] + len(orders)))
    for times in times_by_joint.values():
        assert times == list(range(times[0], times[0] + len(times)))


def keys_of(masker: SemanticTubeMasker, tokens: torch.Tensor, seed: int) -> torch.Tensor:
    context = MaskContext(
        tokens=tokens,
        num_hidden=masker.num_hidden(tuple(tokens.shape[1:3])),
        generator=torch.Generator().manual_seed(seed),
    )
    return masker.priority(context).keys


@pytest.mark.parametrize("seed", range(20))
def test_first_ranked_tube_is_a_full_rectangle_over_one_parts_contiguous_joints(seed: int) -> None:
    masker = SemanticTubeMasker(0.6, layout=LAYOUT, part_map=PART_MAP, min_area=4)
    time_patches, joints = 7, 6
    keys = keys_of(masker, torch.zeros(8, time_patches, joints, 1), seed)
    num_tokens = time_patches * joints
    rank = (-keys).long() // num_tokens
    for sample in range(keys.shape[0]):
        cells = (rank[sample] == 0).view(time_patches, joints).nonzero().tolist()
        assert cells, "the first tube always adds cells"
        times = sorted({t for t, _ in cells})
        columns = sorted({v for _, v in cells})
        assert len(cells) == len(times) * len(columns)  # a full tube: every time × every joint
        assert_runs(dict.fromkeys(columns, times))


@pytest.mark.parametrize("seed", range(20))
def test_the_count_is_exact_and_cuts_one_tube_after_a_time_major_prefix(seed: int) -> None:
    masker = SemanticTubeMasker(0.5, layout=LAYOUT, part_map=PART_MAP)
    time_patches, joints = 9, 6
    tokens = torch.zeros(6, time_patches, joints, 1)
    keys = keys_of(masker, tokens, seed)
    # The same seed gives the keys the call cut.
    result = masker(tokens, generator=torch.Generator().manual_seed(seed))
    assert result.mask.sum(dim=1).tolist() == [27] * 6
    num_tokens = time_patches * joints
    rank, order = (-keys).long() // num_tokens, (-keys).long() % num_tokens
    for sample in range(6):
        hidden = result.mask[sample]
        last = int(rank[sample][hidden].max())
        # Every tube ranked before the last one is hidden whole, none after it at all.
        assert hidden[rank[sample] < last].all()
        assert not hidden[rank[sample] > last].any()
        # The cut tube loses the end of its time-major order (whole time rows, then a part).
        mine = rank[sample] == last
        kept_orders = order[sample][mine & ~hidden]
        if kept_orders.numel():
            assert order[sample][mine & hidden].max() < kept_orders.min()


def test_keys_are_distinct_integers_ranked_by_tube() -> None:
    masker = SemanticTubeMasker(0.7, layout="nturgb+d")
    keys = keys_of(masker, torch.zeros(4, 8, 25, 1), 0)
    assert torch.equal(keys, keys.round())
    assert all(row.unique().numel() == 200 for row in keys)


def test_default_grid_hides_only_part_joints_and_hits_the_count() -> None:
    masker = SemanticTubeMasker(0.9, layout="nturgb+d")
    result = masker(torch.zeros(64, 8, 25, 1), generator=torch.Generator().manual_seed(0))
    assert result.mask.sum(dim=1).tolist() == [180] * 64


def test_joints_outside_every_part_are_hidden_only_as_a_last_resort() -> None:
    masker = SemanticTubeMasker(0.3, layout=LAYOUT, part_map={"a": [0, 1, 2]})
    result = masker(torch.zeros(16, 6, 6, 1), generator=torch.Generator().manual_seed(1))
    grid = result.grid_mask  # (B, Tp, Vp)
    assert result.num_hidden == 11
    assert not grid[:, :, 3:].any()


def test_inside_a_cross_masker_branch_the_share_is_exact() -> None:
    masker = CrossMasker(
        SemanticTubeMasker(0.5, layout=LAYOUT, part_map=PART_MAP),
        SemanticTubeMasker(0.5, layout=LAYOUT, part_map=PART_MAP),
        mask_ratio=0.6,
    )
    result = masker(torch.zeros(3, 8, 6, 1), generator=torch.Generator().manual_seed(0))
    assert result.num_hidden == masker.num_hidden((8, 6))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_area": 0.0}, "min_area must be a finite number > 0"),
        ({"num_tubes": 0}, "num_tubes must be a positive integer"),
        ({"num_tubes": 2**15}, r"num_tubes must be in \[1, 32766\]"),
        ({"v_patch": 2}, "v_patch=2 must divide"),
        ({"part_map": {"a": [0, 9]}}, "outside"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs: dict[str, object], message: str) -> None:
    layout = SkeletonLayout.from_parents([-1, 0, 1, 2, 3], name="chain-5")
    with pytest.raises(ValueError, match=message):
        SemanticTubeMasker(0.5, layout=layout, **kwargs)  # type: ignore[arg-type]


def test_a_grid_that_does_not_fit_the_layout_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Vp=20 joint patches"):
        SemanticTubeMasker(0.5)(torch.zeros(2, 8, 20, 1))


def test_layout_parts_run_along_the_skeleton_tree() -> None:
    # NTU lists its trunk as 0, 1, 2, 3, 20; along the spine it is 0, 1, 20, 2, 3 (as SLiM).
    masker = SemanticTubeMasker(layout="nturgb+d")
    trunk = (masker.patch_part == masker.part_names.index("trunk")).nonzero().flatten()
    along = trunk[masker.patch_position[trunk].argsort()].tolist()
    assert along == [0, 1, 20, 2, 3]
    # A part_map keeps the caller's order.
    custom = SemanticTubeMasker(layout="nturgb+d", part_map={"trunk": (0, 1, 2, 3, 20)})
    trunk = (custom.patch_part == 0).nonzero().flatten()
    assert trunk[custom.patch_position[trunk].argsort()].tolist() == [0, 1, 2, 3, 20]
