from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from skelmask.maskers.attention import GlobalAttentionMasker
from skelmask.maskers.base import MaskContext, Masker, Region, ScoreGuidedMasker
from skelmask.maskers.cross import CrossMasker, Partition, PartitionName
from skelmask.maskers.motion import MotionAwareMasker
from skelmask.maskers.random import RandomMasker
from skelmask.sampling import Direction, num_hidden_tokens
from skelmask.tokens import MaskResult, flatten_grid, gather_tokens, restore_tokens

T_PATCH = 2

PARTITION_NAMES: tuple[PartitionName, ...] = ("time_parity", "joint_parity")

CHILDREN: dict[str, Callable[[float], Masker]] = {
    "attention": GlobalAttentionMasker,
    "random": RandomMasker,
    "random-joint": lambda ratio: RandomMasker(ratio, granularity="joint"),
    "motion": lambda ratio: MotionAwareMasker(ratio, t_patch=T_PATCH),
}


class PositionScorer(ScoreGuidedMasker):
    """Scores token ``(t, v)`` with ``offset + t·Vp + v``: every token's score is its own."""

    def __init__(
        self,
        mask_ratio: float,
        offset: float,
        temperature: float = 1.0,
        direction: Direction = "keep_high",
    ) -> None:
        super().__init__(mask_ratio, temperature, direction)
        self.offset = offset

    def score(self, context: MaskContext) -> torch.Tensor:
        tokens = context.tokens
        batch, time_patches, joint_patches, _ = tokens.shape
        flat = torch.arange(time_patches * joint_patches, device=tokens.device) + self.offset
        return flat.float().view(1, time_patches, joint_patches).expand(batch, -1, -1)


class PeakScorer(ScoreGuidedMasker):
    """Scores one token ``(t, v)`` 1 and every other 0."""

    def __init__(self, mask_ratio: float, peak: tuple[int, int]) -> None:
        super().__init__(mask_ratio, temperature=0.01, direction="keep_high")
        self.peak = peak

    def score(self, context: MaskContext) -> torch.Tensor:
        tokens = context.tokens
        scores = torch.zeros(tokens.shape[:3], device=tokens.device)
        scores[:, self.peak[0], self.peak[1]] = 1.0
        return scores


def make_coords(tokens: torch.Tensor) -> torch.Tensor:
    batch, time_patches, joint_patches, _ = tokens.shape
    generator = torch.Generator(device=tokens.device).manual_seed(99)
    return torch.randn(
        batch, time_patches * T_PATCH, joint_patches, 3, generator=generator, device=tokens.device
    )


def branch_grid(partition: str, time_patches: int, joint_patches: int) -> torch.Tensor:
    t = torch.arange(time_patches).view(-1, 1).expand(time_patches, joint_patches)
    v = torch.arange(joint_patches).view(1, -1).expand(time_patches, joint_patches)
    return (t if partition == "time_parity" else v) % 2


def even_time_region(time_patches: int, joint_patches: int) -> Region:
    even = (torch.arange(time_patches * joint_patches) // joint_patches) % 2 == 0
    times = tuple(range(0, time_patches, 2))
    return Region(mask=even, size=len(times) * joint_patches, time_patches=times)


def expected_branch_counts(sizes: tuple[int, int], ratio: float) -> tuple[int, int]:
    """The documented split of a whole-grid ratio: the total first, branch 0 its own share."""
    total = min(max(num_hidden_tokens(sum(sizes), ratio), 2), sum(sizes) - 2)
    first = num_hidden_tokens(sizes[0], ratio)
    # Each branch hides at least one token and keeps one.
    first = min(max(first, total - (sizes[1] - 1), 1), sizes[0] - 1, total - 1)
    return first, total - first


def assert_restores_every_visible_token(result: MaskResult, tokens: torch.Tensor) -> None:
    flat = flatten_grid(tokens)
    mask_token = torch.full((tokens.shape[-1],), -99.0, device=tokens.device)
    restored = restore_tokens(gather_tokens(flat, result.ids_keep), result.ids_restore, mask_token)
    expected = torch.where(result.mask.unsqueeze(-1), mask_token, flat)
    assert torch.equal(restored, expected)


class Case(NamedTuple):
    batch: int
    grid: tuple[int, int]
    ids: torch.Tensor
    sizes: tuple[int, int]
    partition: Partition
    children: tuple[str, str]
    ratios: tuple[float, float]
    override: float | None
    seed: int


@st.composite
def cross_cases(draw: st.DrawFn) -> Case:
    time_patches = draw(st.integers(2, 6))
    joint_patches = draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["named", "tensor", "callable"]))
    partition: Partition
    if kind == "named":
        name = draw(st.sampled_from(PARTITION_NAMES))
        ids = branch_grid(name, time_patches, joint_patches)
        partition = name
    else:
        values = draw(
            st.lists(
                st.integers(0, 1),
                min_size=time_patches * joint_patches,
                max_size=time_patches * joint_patches,
            )
        )
        ids = torch.tensor(values).view(time_patches, joint_patches)
        partition = ids.clone() if kind == "tensor" else (lambda tp, vp: ids.clone())
    sizes = (int((ids == 0).sum()), int((ids == 1).sum()))
    assume(min(sizes) >= 2)
    names = list(CHILDREN)
    return Case(
        batch=draw(st.integers(1, 3)),
        grid=(time_patches, joint_patches),
        ids=ids,
        sizes=sizes,
        partition=partition,
        children=(draw(st.sampled_from(names)), draw(st.sampled_from(names))),
        ratios=(draw(st.floats(0.05, 0.95)), draw(st.floats(0.05, 0.95))),
        override=draw(st.none() | st.floats(0.05, 0.95)),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


@given(case=cross_cases())
@settings(max_examples=50, deadline=None)
def test_cross_masker_properties(case: Case) -> None:
    batch, (time_patches, joint_patches), ids, sizes = case.batch, case.grid, case.ids, case.sizes
    names, ratios, override = case.children, case.ratios, case.override
    children = [CHILDREN[name](ratio) for name, ratio in zip(names, ratios, strict=True)]
    masker = CrossMasker(children[0], children[1], partition=case.partition, mask_ratio=override)
    generator = torch.Generator().manual_seed(case.seed)
    tokens = torch.randn(batch, time_patches, joint_patches, 3, generator=generator)
    result = masker(tokens, coords=make_coords(tokens), generator=generator)

    assert_restores_every_visible_token(result, tokens)
    flat_ids = ids.reshape(-1)
    if override is None:
        expected_hidden = [
            num_hidden_tokens(size, ratio) for size, ratio in zip(sizes, ratios, strict=True)
        ]
    else:
        expected_hidden = list(expected_branch_counts(sizes, override))
        total = time_patches * joint_patches
        if 2 <= num_hidden_tokens(total, override) <= total - 2:
            assert sum(expected_hidden) == num_hidden_tokens(total, override)
    for branch_id in (0, 1):
        in_branch = flat_ids == branch_id
        hidden_here = (result.mask & in_branch).sum(dim=1)
        assert hidden_here.tolist() == [expected_hidden[branch_id]] * batch
        # Whole-joint random masking has no per-token sampling weights, so no merged probs.
        if "random-joint" in names:
            assert result.probs is None
        else:
            assert result.probs is not None
            torch.testing.assert_close(result.probs[:, in_branch].sum(dim=1), torch.ones(batch))
    num_keep = time_patches * joint_patches - sum(expected_hidden)
    assert result.num_keep == num_keep
    assert masker.num_hidden((time_patches, joint_patches)) == sum(expected_hidden)
    assert (~result.mask).sum(dim=1).tolist() == [num_keep] * batch
    assert torch.equal(masker.branch_ids(case.grid, tokens.device), flat_ids)
    assert torch.equal(masker.visible_branch(result), flat_ids[result.ids_keep])
    assert (result.ids_keep.diff(dim=1) > 0).all()
    if all(name.startswith("random") for name in names):
        assert result.scores is None
    else:
        assert result.scores is not None
        assert result.scores.shape == (batch, time_patches * joint_patches)
        assert torch.isfinite(result.scores).all()


def test_default_partition_sends_even_time_patches_to_the_first_masker() -> None:
    tokens = torch.randn(2, 7, 4, 8)
    first, second = RandomMasker(0.5), RandomMasker(0.75)
    masker = CrossMasker(first, second)
    result = masker(tokens)
    time_of_kept = torch.div(result.ids_keep, 4, rounding_mode="floor")
    assert torch.equal(masker.visible_branch(result), time_of_kept % 2)
    grid_mask = result.grid_mask
    # 4 even patches × 4 joints = 16 tokens at 0.5; 3 odd patches × 4 = 12 tokens at 0.75.
    assert grid_mask[:, 0::2].sum(dim=(1, 2)).tolist() == [8, 8]
    assert grid_mask[:, 1::2].sum(dim=(1, 2)).tolist() == [9, 9]


def test_joint_parity_sends_even_joints_to_the_first_masker() -> None:
    masker = CrossMasker(RandomMasker(0.5), RandomMasker(0.5), partition="joint_parity")
    result = masker(torch.randn(2, 4, 5, 8))
    assert torch.equal(masker.visible_branch(result), (result.ids_keep % 5) % 2)
    assert result.grid_mask[:, :, 0::2].sum(dim=(1, 2)).tolist() == [6, 6]  # of 12 tokens
    assert result.grid_mask[:, :, 1::2].sum(dim=(1, 2)).tolist() == [4, 4]  # of 8 tokens


def test_scores_land_on_their_own_tokens_regression_b5() -> None:
    # HA-CM's code applied the spatial score flattened joint-major to frame-major tokens (B5).
    time_patches, joint_patches = 6, 5
    first, second = PositionScorer(0.5, offset=100.0), PositionScorer(0.5, offset=10_000.0)
    result = CrossMasker(first, second)(torch.randn(2, time_patches, joint_patches, 4))
    flat = torch.arange(time_patches * joint_patches).float()
    odd = (flat // joint_patches) % 2 == 1
    expected = torch.where(odd, flat + 10_000.0, flat + 100.0).expand(2, -1)
    assert result.scores is not None
    assert torch.equal(result.scores, expected)


def test_the_spatial_branchs_top_token_stays_visible_regression_b5_b6() -> None:
    # A near-greedy scorer in the odd branch keeps one token; it must be visible in its own slot.
    time_patches, joint_patches, peak = 6, 5, (3, 1)
    odd_tokens = (time_patches // 2) * joint_patches
    ratio = (odd_tokens - 1) / odd_tokens  # keeps exactly one odd-patch token
    masker = CrossMasker(RandomMasker(0.5), PeakScorer(ratio, peak))
    tokens = torch.randn(64, time_patches, joint_patches, 4)
    result = masker(tokens, generator=torch.Generator().manual_seed(0))
    assert not result.grid_mask[:, peak[0], peak[1]].any()
    assert result.grid_mask[:, 1::2].sum(dim=(1, 2)).eq(odd_tokens - 1).all()
    assert_restores_every_visible_token(result, tokens)


def test_each_branch_uses_its_own_scores_and_temperature() -> None:
    tokens = torch.randn(3, 6, 4, 8)
    coords = make_coords(tokens)
    temporal = GlobalAttentionMasker(0.5, temperature=0.3)
    spatial = MotionAwareMasker(0.5, t_patch=T_PATCH, temperature=2.0)
    result = CrossMasker(temporal, spatial)(tokens, coords=coords)
    region = even_time_region(6, 4)
    even = region.mask
    attention_scores = temporal.score(MaskContext(tokens, region=region)).flatten(1)
    motion_scores = spatial.score(MaskContext(tokens, coords=coords)).flatten(1)
    assert result.scores is not None
    torch.testing.assert_close(result.scores[:, even], attention_scores[:, even])
    torch.testing.assert_close(result.scores[:, ~even], motion_scores[:, ~even])
    assert result.probs is not None
    # keep_high at tau=0.3 vs hide_high at tau=2.0: the branches' softmaxes differ in spread.
    even_probs, odd_probs = result.probs[:, even], result.probs[:, ~even]
    assert (even_probs.amax(1) / even_probs.amin(1) > odd_probs.amax(1) / odd_probs.amin(1)).all()


def test_uniform_child_scores_are_zero_and_none_when_both_are_uniform() -> None:
    tokens = torch.randn(2, 4, 3, 8)
    mixed = CrossMasker(PositionScorer(0.5, offset=1.0), RandomMasker(0.5))(tokens)
    assert mixed.scores is not None
    assert (mixed.scores.view(2, 4, 3)[:, 1::2] == 0).all()
    assert (mixed.scores.view(2, 4, 3)[:, 0::2] > 0).all()
    assert CrossMasker(RandomMasker(0.5), RandomMasker(0.5))(tokens).scores is None


def test_the_generator_is_used_by_the_first_then_the_second_masker() -> None:
    tokens = torch.randn(2, 6, 4, 8)
    first, second = GlobalAttentionMasker(0.5), RandomMasker(0.5)
    result = CrossMasker(first, second)(tokens, generator=torch.Generator().manual_seed(7))
    generator = torch.Generator().manual_seed(7)
    even = even_time_region(6, 4)
    odd = Region(mask=~even.mask, size=12, time_patches=(1, 3, 5))
    by_first = first.decide(MaskContext(tokens, generator=generator, region=even), 6)
    by_second = second.decide(MaskContext(tokens, generator=generator, region=odd), 6)
    assert torch.equal(result.mask, by_first.hidden | by_second.hidden)


def test_same_seed_same_mask_different_seed_different_mask() -> None:
    tokens = torch.randn(4, 8, 6, 8)
    masker = CrossMasker(GlobalAttentionMasker(0.5), RandomMasker(0.5))
    first = masker(tokens, generator=torch.Generator().manual_seed(1))
    again = masker(tokens, generator=torch.Generator().manual_seed(1))
    other = masker(tokens, generator=torch.Generator().manual_seed(2))
    assert torch.equal(first.mask, again.mask)
    assert not torch.equal(first.mask, other.mask)


def test_mask_ratio_overrides_both_branches_when_given() -> None:
    tokens = torch.randn(1, 10, 10, 4)
    children = (RandomMasker(0.2), RandomMasker(0.4))
    own = CrossMasker(*children)
    assert own.mask_ratio == pytest.approx(0.3)
    assert own.grid_mask_ratio is None
    assert own(tokens).grid_mask[:, 0::2].sum() == 10
    assert own(tokens).grid_mask[:, 1::2].sum() == 20
    overridden = CrossMasker(*children, mask_ratio=0.9)
    assert overridden.mask_ratio == overridden.grid_mask_ratio == 0.9
    result = overridden(tokens)
    assert result.grid_mask[:, 0::2].sum() == result.grid_mask[:, 1::2].sum() == 45
    with pytest.raises(ValueError, match=r"mask_ratio must be in the open interval \(0, 1\)"):
        CrossMasker(*children, mask_ratio=1.0)


def test_a_grid_ratio_per_call_or_set_later_splits_over_the_branches() -> None:
    tokens = torch.randn(1, 10, 10, 4)
    children = (RandomMasker(0.2), RandomMasker(0.4))
    masker = CrossMasker(*children)
    per_call = masker(tokens, mask_ratio=0.7)
    assert per_call.grid_mask[:, 0::2].sum() == per_call.grid_mask[:, 1::2].sum() == 35
    assert masker.grid_mask_ratio is None  # the call's ratio does not stick
    assert masker(tokens).num_hidden == 30
    masker.mask_ratio = 0.7  # sets the whole grid's ratio, not silently ignored
    assert masker.grid_mask_ratio == 0.7
    assert masker(tokens).num_hidden == 70
    assert masker.num_hidden((10, 10)) == 70
    with pytest.raises(ValueError, match=r"mask_ratio must be in the open interval \(0, 1\)"):
        masker.mask_ratio = 1.5
    with pytest.raises(ValueError, match=r"mask_ratio must be in the open interval \(0, 1\)"):
        masker(tokens, mask_ratio=0.0)
    assert masker.grid_mask_ratio == 0.7
    # The children keep their own ratios; the grid ratio lives with the composite.
    assert (children[0].mask_ratio, children[1].mask_ratio) == (0.2, 0.4)


def test_a_grid_ratio_hides_the_whole_grids_count_when_branches_differ_in_size() -> None:
    # 5 time patches × 3 joints: 9 even-patch and 6 odd-patch tokens. At 0.7 per-branch
    # rounding would hide round(6.3) + round(4.2) = 6 + 4 = 10; the grid's count is round(10.5)
    # = 11. At 0.9 the grid's round(13.5) = 14 leaves one branch no visible token, so 13.
    tokens = torch.randn(2, 5, 3, 4)
    for ratio, total in ((0.1, 2), (0.3, 5), (0.5, 8), (0.7, 11), (0.9, 13)):
        masker = CrossMasker(RandomMasker(), RandomMasker(), mask_ratio=ratio)
        result = masker(tokens)
        assert result.num_hidden == masker.num_hidden((5, 3)) == total
        even, odd = expected_branch_counts((9, 6), ratio)
        assert even + odd == total
        assert result.grid_mask[:, 0::2].sum(dim=(1, 2)).tolist() == [even, even]
        assert result.grid_mask[:, 1::2].sum(dim=(1, 2)).tolist() == [odd, odd]


def test_a_grid_ratio_on_a_tiny_grid_leaves_each_branch_one_hidden_and_one_kept() -> None:
    # 2×2 grid, two branches of 2 tokens: 0.25 of 4 is one token, but each branch must hide one.
    masker = CrossMasker(RandomMasker(), RandomMasker(), mask_ratio=0.25)
    result = masker(torch.randn(3, 2, 2, 4))
    assert masker.num_hidden((2, 2)) == 2
    assert result.grid_mask.sum(dim=2).tolist() == [[1, 1]] * 3


def test_odd_number_of_time_patches_is_handled() -> None:
    tokens = torch.randn(2, 5, 3, 4)
    result = CrossMasker(RandomMasker(0.5), RandomMasker(0.5))(tokens)
    assert result.grid_mask[:, 0::2].sum(dim=(1, 2)).tolist() == [5, 5]  # round(4.5) of 9
    assert result.grid_mask[:, 1::2].sum(dim=(1, 2)).tolist() == [3, 3]  # of 6
    assert_restores_every_visible_token(result, tokens)


def test_supplied_attention_is_routed_to_the_attention_masker() -> None:
    batch, time_patches, joint_patches, target = 400, 6, 3, 2
    tokens = torch.randn(batch, time_patches, joint_patches, 8)
    attention = torch.zeros(batch, joint_patches, time_patches, time_patches)
    attention[..., target] = 1.0
    masker = CrossMasker(GlobalAttentionMasker(0.5), RandomMasker(0.5))
    result = masker(tokens, attention=attention, generator=torch.Generator().manual_seed(0))
    assert result.scores is not None
    grid_scores = result.scores.view(batch, time_patches, joint_patches)
    # Three in-region (even) queries, all mass on the even key `target`.
    assert (grid_scores[:, target] == 3.0).all()
    assert (grid_scores[:, [0, 4]] == 0.0).all()
    visible = (~result.grid_mask).float().mean(dim=0)
    assert (visible[target] > visible[[0, 4]].max(dim=0).values + 0.1).all()
    with pytest.raises(
        ValueError,
        match=r"attention must have shape \(B, Vp, Tp, Tp\) = \(400, 3, 6, 6\) or, over this "
        r"branch's 3 time patches, \(400, 3, 3, 3\)",
    ):
        masker(tokens, attention=attention[:, :, :4, :4])
    plain = CrossMasker(RandomMasker(0.5), RandomMasker(0.5))
    with pytest.raises(ValueError, match="CrossMasker does not read attention="):
        plain(tokens, attention=attention)


def test_attention_over_the_branchs_time_patches_only_is_accepted() -> None:
    # HA-CM computes one map over its even time patches: (B, Vp, n, n) with n = ceil(Tp / 2).
    batch, time_patches, joint_patches = 300, 7, 3
    tokens = torch.randn(batch, time_patches, joint_patches, 8)
    branch_map = torch.softmax(torch.randn(batch, joint_patches, 4, 4), dim=-1)
    # The whole grid's map: the same rows over even keys; odd queries are outside the branch.
    whole_map = torch.softmax(torch.randn(batch, joint_patches, time_patches, time_patches), -1)
    whole_map[:, :, 0::2] = 0.0
    whole_map[:, :, 0::2, 0::2] = branch_map
    masker = CrossMasker(GlobalAttentionMasker(0.5), RandomMasker(0.5))
    generator = torch.Generator().manual_seed(0)
    by_branch = masker(tokens, attention=branch_map, generator=generator)
    by_whole = masker(tokens, attention=whole_map, generator=torch.Generator().manual_seed(0))
    assert by_branch.scores is not None
    assert by_whole.scores is not None
    # Each even key's score is the attention it receives from the 4 even queries.
    expected = branch_map.sum(dim=-2).transpose(1, 2)  # (B, 4, Vp)
    even_scores = by_branch.scores.view(batch, time_patches, joint_patches)[:, 0::2]
    torch.testing.assert_close(even_scores, expected)
    torch.testing.assert_close(by_branch.scores, by_whole.scores)
    assert torch.equal(by_branch.mask, by_whole.mask)


def test_hacm_composition() -> None:
    masker = CrossMasker.hacm(RandomMasker(0.5), mask_ratio=0.9, temperature=0.8)
    assert isinstance(masker.first, GlobalAttentionMasker)
    assert masker.first.temperature == 0.8
    assert masker.first.direction == "keep_high"
    result = masker(torch.randn(2, 24, 18, 16))
    assert result.num_keep == 432 - num_hidden_tokens(432, 0.9) == 43
    assert "partition='time_parity'" in repr(masker)


def test_hacm_keeps_exactly_75_of_750_tokens_at_ratio_0_9() -> None:
    # Per-branch rounding kept 2 × round(0.1 · 375) = 2 × 37 = 74; the whole grid's count is 75.
    masker = CrossMasker.hacm(RandomMasker(), mask_ratio=0.9)
    tokens = torch.randn(3, 30, 25, 8)
    result = masker(tokens, generator=torch.Generator().manual_seed(0))
    assert result.num_keep == 75
    assert (~result.mask).sum(dim=1).tolist() == [75] * 3
    # Branch 0 hides round(0.9 · 375) = 338 (keeps 37), branch 1 the rest (keeps 38).
    assert (~result.grid_mask[:, 0::2]).sum(dim=(1, 2)).tolist() == [37] * 3
    assert (~result.grid_mask[:, 1::2]).sum(dim=(1, 2)).tolist() == [38] * 3
    masker.mask_ratio = 0.8
    assert masker(tokens).num_keep == 150


def test_joint_granularity_child_hides_whole_joint_columns_of_its_branch() -> None:
    # A joint-granularity RandomMasker inside a branch hides exactly its share, in whole joint
    # columns of the branch's time patches except at most one cut column.
    batch, time_patches, joint_patches = 50, 6, 5
    masker = CrossMasker(RandomMasker(0.5), RandomMasker(0.5, granularity="joint"))
    result = masker(torch.randn(batch, time_patches, joint_patches, 4))
    odd = result.grid_mask[:, 1::2]  # (B, 3, 5): the second branch's 15 tokens
    hidden = num_hidden_tokens(15, 0.5)
    assert odd.sum(dim=(1, 2)).tolist() == [hidden] * batch
    per_column = odd.sum(dim=1)  # (B, Vp) hidden tokens per joint column
    cut = ((per_column > 0) & (per_column < 3)).sum(dim=1)
    assert (cut == 1).all()  # 8 hidden of columns of 3: two whole columns and one cut
    assert ((per_column == 3).sum(dim=1) == 2).all()
    assert result.grid_mask[:, 0::2].sum(dim=(1, 2)).tolist() == [hidden] * batch


def test_cross_masker_cannot_be_nested() -> None:
    inner = CrossMasker(RandomMasker(0.5), RandomMasker(0.5))
    outer = CrossMasker(RandomMasker(0.5), inner)
    with pytest.raises(ValueError, match="cannot decide inside a region"):
        outer(torch.randn(1, 8, 4, 4))


def test_decide_checks_its_hidden_count() -> None:
    masker = CrossMasker(RandomMasker(0.5), RandomMasker(0.5))
    tokens = torch.randn(1, 4, 4, 4)
    decision = masker.decide(MaskContext(tokens), 8)
    assert decision.hidden.sum() == 8
    with pytest.raises(ValueError, match=r"hides 8 tokens on a \(4, 4\) grid \(branches 4 \+ 4\)"):
        masker.decide(MaskContext(tokens), 7)


@pytest.mark.parametrize(
    ("partition", "error", "match"),
    [
        ("time", ValueError, r"partition must be one of \['time_parity', 'joint_parity'\]"),
        (3, TypeError, "partition must be a name, a .* got int"),
        (torch.zeros(4, 4), ValueError, "partition must hold integer or bool branch ids"),
        (torch.zeros(16, dtype=torch.long), ValueError, r"shape \(Tp, Vp\), got \(16,\)"),
        (torch.full((4, 4), 2), ValueError, r"only branch ids 0 and 1, got values \[2\]"),
        (torch.zeros(4, 4, dtype=torch.long), ValueError, "gives the second masker no tokens"),
        (torch.ones(4, 4, dtype=torch.bool), ValueError, "gives the first masker no tokens"),
    ],
)
def test_bad_partitions_are_clear_errors(
    partition: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        CrossMasker(RandomMasker(0.5), RandomMasker(0.5), partition=partition)  # type: ignore[arg-type]


def test_partitions_that_do_not_fit_the_grid_are_clear_errors() -> None:
    tokens = torch.randn(1, 4, 4, 4)
    fixed = CrossMasker(RandomMasker(), RandomMasker(), partition=torch.eye(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"partition has shape \(3, 3\) but the token grid"):
        fixed(tokens)
    wrong = CrossMasker(
        RandomMasker(), RandomMasker(), partition=lambda tp, vp: torch.eye(tp, dtype=torch.long)
    )
    with pytest.raises(
        ValueError, match=r"partition\(Tp, Vp\) must have shape \(Tp, Vp\) = \(4, 5\)"
    ):
        wrong(torch.randn(1, 4, 5, 4))
    not_tensor = CrossMasker(RandomMasker(), RandomMasker(), partition=lambda tp, vp: [[0, 1]])  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match=r"partition\(Tp, Vp\) must be a torch.Tensor"):
        not_tensor(tokens)
    parity = CrossMasker(RandomMasker(), RandomMasker())
    with pytest.raises(ValueError, match="gives the second masker's branch 0 token"):
        parity(torch.randn(1, 1, 8, 4))
    with pytest.raises(ValueError, match="gives the first masker's branch 1 token"):
        parity(torch.randn(1, 2, 1, 4))


def test_children_must_be_maskers() -> None:
    with pytest.raises(TypeError, match="second must be a Masker, got Linear"):
        CrossMasker(RandomMasker(), torch.nn.Linear(2, 2))  # type: ignore[arg-type]


def test_fixed_partition_is_a_non_persistent_buffer() -> None:
    partition = torch.tensor([[0, 1], [1, 0]])
    masker = CrossMasker(RandomMasker(0.5), RandomMasker(0.5), partition=partition)
    assert masker.partition_ids is not None
    assert torch.equal(masker.partition_ids, partition)
    assert "partition_ids" not in masker.state_dict()
    result = masker(torch.randn(3, 2, 2, 4))
    assert torch.equal(masker.visible_branch(result), partition.reshape(-1)[result.ids_keep])


@pytest.mark.parametrize("partition", ["time_parity", "tensor"])
def test_compiles_fullgraph_without_generator(partition: str) -> None:
    time_patches, joint_patches = 6, 4
    chosen: str | torch.Tensor = partition
    if partition == "tensor":
        chosen = (
            torch.arange(time_patches * joint_patches).view(time_patches, joint_patches) % 3 == 0
        )
    masker = CrossMasker(
        GlobalAttentionMasker(0.5),
        MotionAwareMasker(0.5, t_patch=T_PATCH),
        partition=chosen,  # type: ignore[arg-type]
    )
    compiled = torch.compile(masker, backend="eager", fullgraph=True)
    tokens = torch.randn(2, time_patches, joint_patches, 8)
    coords = make_coords(tokens)
    result = compiled(tokens, coords=coords)
    eager = masker(tokens, coords=coords)
    assert result.num_keep == eager.num_keep
    assert masker.visible_branch(result).shape == masker.visible_branch(eager).shape
    torch.testing.assert_close(result.scores, eager.scores)
    assert_restores_every_visible_token(result, tokens)
    attention = torch.softmax(torch.randn(2, joint_patches, time_patches, time_patches), dim=-1)
    assert compiled(tokens, coords=coords, attention=attention).num_keep == eager.num_keep


def test_runs_on_device(device: torch.device) -> None:
    tokens = torch.randn(2, 6, 5, 8, device=device)
    masker = CrossMasker(GlobalAttentionMasker(0.5), MotionAwareMasker(0.5, t_patch=T_PATCH))
    generator = torch.Generator(device=device).manual_seed(0)
    result = masker(tokens, coords=make_coords(tokens), generator=generator)
    assert result.mask.device.type == device.type
    assert masker.visible_branch(result).device.type == device.type
    assert masker.branch_ids((6, 5), device).device.type == device.type
    assert_restores_every_visible_token(result, tokens)
