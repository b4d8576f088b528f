from __future__ import annotations

import math

import pytest
import torch

from skelmask.maskers.attention import GlobalAttentionMasker
from skelmask.maskers.base import MaskContext, Region


def even_time_patches(time_patches: int, joint_patches: int) -> Region:
    """The region of the even time patches (HA-CM's temporal branch)."""
    mask = (torch.arange(time_patches) % 2 == 0).repeat_interleave(joint_patches)
    times = tuple(range(0, time_patches, 2))
    return Region(mask=mask, size=len(times) * joint_patches, time_patches=times)


def score(
    masker: GlobalAttentionMasker,
    tokens: torch.Tensor,
    *,
    attention: torch.Tensor | None = None,
    region: Region | None = None,
) -> torch.Tensor:
    return masker.score(MaskContext(tokens, attention=attention, region=region))


def reference_scores(
    tokens: torch.Tensor, *, include_self: bool, region: torch.Tensor | None = None
) -> torch.Tensor:
    """The received-attention score written out with explicit loops, in float64."""
    batch, time_patches, joint_patches, width = tokens.shape
    x = tokens.double()
    normed = (x - x.mean(-1, keepdim=True)) / torch.sqrt(
        x.var(-1, unbiased=False, keepdim=True) + 1e-5
    )
    inside = (
        torch.ones(time_patches, joint_patches, dtype=torch.bool)
        if region is None
        else region.view(time_patches, joint_patches)
    )
    scores = torch.zeros(batch, time_patches, joint_patches, dtype=torch.float64)
    for b in range(batch):
        for v in range(joint_patches):
            for t in range(time_patches):
                if not inside[t, v]:
                    continue
                keys = [u for u in range(time_patches) if inside[u, v] and (include_self or u != t)]
                logits = [float(normed[b, t, v] @ normed[b, u, v]) / math.sqrt(width) for u in keys]
                top = max(logits, default=0.0)
                total = sum(math.exp(value - top) for value in logits)
                for u, value in zip(keys, logits, strict=True):
                    scores[b, u, v] += math.exp(value - top) / total
    return scores


@pytest.mark.parametrize("include_self", [False, True])
def test_score_matches_hand_written_attention(include_self: bool) -> None:
    tokens = torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(0))
    masker = GlobalAttentionMasker(include_self=include_self)
    scores = score(masker, tokens)
    assert scores.shape == (2, 4, 3)
    assert scores.dtype == torch.float32
    expected = reference_scores(tokens, include_self=include_self)
    torch.testing.assert_close(scores.double(), expected, rtol=1e-5, atol=1e-6)
    # Every query spreads one unit of attention over its joint's keys.
    torch.testing.assert_close(scores.sum(dim=1), torch.full((2, 3), 4.0))


def test_score_with_region_matches_hand_written_attention() -> None:
    tokens = torch.randn(2, 5, 3, 6, generator=torch.Generator().manual_seed(1))
    region = even_time_patches(5, 3)
    scores = score(GlobalAttentionMasker(), tokens, region=region)
    expected = reference_scores(tokens, include_self=False, region=region.mask)
    torch.testing.assert_close(scores.double(), expected, rtol=1e-5, atol=1e-6)


def hub_tokens(batch: int = 1) -> tuple[torch.Tensor, int]:
    """Tokens where, in every joint, time patch ``hub`` is the sum of all the others."""
    generator = torch.Generator().manual_seed(3)
    time_patches, joint_patches, width, hub = 6, 4, 64, 2
    tokens = torch.randn(1, time_patches, joint_patches, width, generator=generator)
    others = torch.cat([tokens[:, :hub], tokens[:, hub + 1 :]], dim=1)
    tokens[:, hub] = others.sum(dim=1)
    return tokens.expand(batch, -1, -1, -1).contiguous(), hub


def test_token_every_query_attends_to_scores_highest_and_stays_visible() -> None:
    tokens, hub = hub_tokens(batch=800)
    masker = GlobalAttentionMasker(mask_ratio=0.5)
    scores = score(masker, tokens[:1])
    assert (scores[0].argmax(dim=0) == hub).all()
    result = masker(tokens, generator=torch.Generator().manual_seed(0))
    visible = (~result.grid_mask).float().mean(dim=0)  # (Tp, Vp) frequency over draws
    others = torch.cat([visible[:hub], visible[hub + 1 :]])
    assert (visible[hub] > others.max(dim=0).values + 0.05).all()


def test_hide_high_hides_the_hub_instead() -> None:
    tokens, hub = hub_tokens(batch=800)
    masker = GlobalAttentionMasker(mask_ratio=0.5, direction="hide_high")
    result = masker(tokens, generator=torch.Generator().manual_seed(0))
    visible = (~result.grid_mask).float().mean(dim=0)
    others = torch.cat([visible[:hub], visible[hub + 1 :]])
    assert (visible[hub] < others.min(dim=0).values - 0.05).all()


def test_caller_supplied_attention_is_used() -> None:
    batch, time_patches, joint_patches, target = 800, 5, 3, 4
    tokens = torch.randn(batch, time_patches, joint_patches, 8)
    attention = torch.zeros(batch, joint_patches, time_patches, time_patches)
    attention[..., target] = 1.0  # every query puts all its mass on key `target`
    masker = GlobalAttentionMasker(mask_ratio=0.5)
    scores = score(masker, tokens, attention=attention)
    expected = torch.zeros(batch, time_patches, joint_patches)
    expected[:, target] = time_patches
    torch.testing.assert_close(scores, expected)
    result = masker(tokens, attention=attention, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(result.scores, expected.flatten(1))
    visible = (~result.grid_mask).float().mean(dim=0)
    others = visible[:target]
    assert (visible[target] > others.max(dim=0).values + 0.1).all()


def test_supplied_attention_is_restricted_and_renormalised_in_a_region() -> None:
    time_patches, joint_patches = 4, 2
    attention = torch.full((1, joint_patches, time_patches, time_patches), 0.25)
    region = even_time_patches(time_patches, joint_patches)
    scores = score(
        GlobalAttentionMasker(),
        torch.randn(1, time_patches, joint_patches, 3),
        attention=attention,
        region=region,
    )
    # Two in-region queries, each renormalised over the two in-region keys.
    expected = torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    torch.testing.assert_close(scores[0], expected)


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((2, 5, 3, 3), r"attention must have shape \(B, Vp, Tp, Tp\) = \(2, 3, 5, 5\)"),
        ((2, 3, 5), r"got \(2, 3, 5\)"),
    ],
)
def test_wrong_attention_shape_is_a_clear_error(shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GlobalAttentionMasker()(torch.randn(2, 5, 3, 4), attention=torch.rand(shape))


def test_non_finite_attention_is_a_clear_error() -> None:
    attention = torch.rand(1, 3, 5, 5)
    attention[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="attention contains 1 NaN"):
        GlobalAttentionMasker()(torch.randn(1, 5, 3, 4), attention=attention)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ("scaled", r"row sums in \[2, 2\] and minimum 0"),
        ("negative", r"minimum -0\.5"),
    ],
)
def test_attention_rows_that_are_not_distributions_are_rejected(change: str, match: str) -> None:
    # HA-CM's maps do not sum to 1 per row; silently accepting them skewed the scores.
    tokens = torch.randn(2, 5, 3, 4)
    attention = torch.full((2, 3, 5, 5), 0.2)
    if change == "scaled":
        attention = attention * 2
    else:
        attention[0, 0, 0, :2] = torch.tensor([-0.5, 0.9])
    with pytest.raises(ValueError, match=match) as error:
        GlobalAttentionMasker()(tokens, attention=attention)
    assert "normalize_attention=True" in str(error.value)


def test_normalize_attention_renormalises_rows() -> None:
    tokens = torch.randn(2, 5, 3, 4)
    distributions = torch.softmax(torch.randn(2, 3, 5, 5), dim=-1)
    unnormalised = distributions * torch.rand(2, 3, 5, 1) * 7 + 0.0
    with_negatives = distributions.clone()
    with_negatives[..., 0] = -1.0  # clipped to 0, then the row rescaled
    clipped = distributions.clone()
    clipped[..., 0] = 0.0
    clipped = clipped / clipped.sum(dim=-1, keepdim=True)
    masker = GlobalAttentionMasker(normalize_attention=True)
    expected = score(GlobalAttentionMasker(), tokens, attention=distributions)
    torch.testing.assert_close(score(masker, tokens, attention=unnormalised), expected)
    torch.testing.assert_close(
        score(masker, tokens, attention=with_negatives),
        score(GlobalAttentionMasker(), tokens, attention=clipped),
    )
    assert "normalize_attention=True" in repr(masker)


def test_a_bf16_softmax_map_is_accepted() -> None:
    # Rows of a bf16 softmax sum to 1 only within bf16 rounding.
    attention = torch.softmax(torch.randn(2, 3, 5, 5), dim=-1).bfloat16()
    masker = GlobalAttentionMasker(0.5)
    assert masker(torch.randn(2, 5, 3, 4), attention=attention).num_keep == 7


def test_parameter_free() -> None:
    masker = GlobalAttentionMasker()
    assert list(masker.parameters()) == []
    assert list(masker.buffers()) == []
    assert masker.state_dict() == {}


def test_defaults_follow_hacm() -> None:
    masker = GlobalAttentionMasker()
    assert (masker.mask_ratio, masker.temperature, masker.direction) == (0.9, 0.9, "keep_high")
    assert "include_self=False" in repr(masker)


def test_out_of_region_tokens_do_not_affect_in_region_scores() -> None:
    generator = torch.Generator().manual_seed(5)
    tokens = torch.randn(3, 6, 4, 8, generator=generator)
    region = even_time_patches(6, 4)
    changed = tokens.clone()
    changed[:, 1::2] = 100 * torch.randn(3, 3, 4, 8, generator=generator)
    masker = GlobalAttentionMasker()
    before = score(masker, tokens, region=region)
    after = score(masker, changed, region=region)
    torch.testing.assert_close(before, after)
    assert (before[:, 1::2] == 0).all()
    # Without the region, the odd patches do change the even patches' scores.
    assert not torch.allclose(score(masker, tokens)[:, 0::2], score(masker, changed)[:, 0::2])


def test_decide_in_a_region_hides_only_there() -> None:
    tokens = torch.randn(2, 6, 4, 8)
    region = even_time_patches(6, 4)
    decision = GlobalAttentionMasker().decide(MaskContext(tokens, region=region), 7)
    assert (decision.hidden.sum(dim=1) == 7).all()
    assert not decision.hidden[:, ~region.mask].any()
    assert decision.probs is not None
    torch.testing.assert_close(decision.probs[:, region.mask].sum(dim=1), torch.ones(2))
    assert (decision.probs[:, ~region.mask] == 0).all()


def test_attention_over_a_regions_time_patches_is_placed_on_them() -> None:
    # HA-CM's map over its even time patches only: (B, Vp, n, n), n = 3 of Tp = 6.
    batch, time_patches, joint_patches = 2, 6, 4
    tokens = torch.randn(batch, time_patches, joint_patches, 8)
    region = even_time_patches(time_patches, joint_patches)
    branch_map = torch.softmax(torch.randn(batch, joint_patches, 3, 3), dim=-1)
    scores = score(GlobalAttentionMasker(), tokens, attention=branch_map, region=region)
    torch.testing.assert_close(scores[:, 0::2], branch_map.sum(dim=-2).transpose(1, 2))
    assert (scores[:, 1::2] == 0).all()
    # Without a region, or in a region not made of whole time patches, only whole-grid maps fit.
    with pytest.raises(
        ValueError, match=r"\(B, Vp, Tp, Tp\) = \(2, 4, 6, 6\) \(rows.*got \(2, 4, 3, 3\)"
    ):
        score(GlobalAttentionMasker(), tokens, attention=branch_map)
    joints = Region(mask=(torch.arange(24) % 4 < 2), size=12, time_patches=None)
    with pytest.raises(
        ValueError, match=r"\(B, Vp, Tp, Tp\) = \(2, 4, 6, 6\) \(rows.*got \(2, 4, 3, 3\)"
    ):
        score(GlobalAttentionMasker(), tokens, attention=branch_map, region=joints)
    # A map over the region must be square over its n time patches.
    with pytest.raises(ValueError, match=r"over this branch's 3 time patches, \(2, 4, 3, 3\)"):
        score(GlobalAttentionMasker(), tokens, attention=branch_map[..., :2], region=region)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 6e4])
def test_low_precision_inputs_never_give_nan(dtype: torch.dtype, scale: float) -> None:
    # Clamped to the float16 range: the masker must cope with any finite input.
    tokens = (torch.randn(2, 6, 5, 32) * scale).clamp(-6e4, 6e4).to(dtype)
    tokens[0, 0, 0] = 0.0  # a constant token has zero variance
    masker = GlobalAttentionMasker()
    result = masker(tokens)
    assert result.scores is not None
    assert result.probs is not None
    assert result.scores.dtype == torch.float32
    assert torch.isfinite(result.scores).all()
    assert torch.isfinite(result.probs).all()


def test_autocast_does_not_lower_the_score_precision() -> None:
    tokens = torch.randn(2, 6, 5, 32)
    masker = GlobalAttentionMasker()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = score(masker, tokens)
    assert scores.dtype == torch.float32
    torch.testing.assert_close(scores, score(masker, tokens))


def test_scores_carry_no_gradient() -> None:
    tokens = torch.randn(2, 6, 5, 8, requires_grad=True)
    result = GlobalAttentionMasker()(tokens)
    assert result.scores is not None
    assert not result.scores.requires_grad


def test_same_seed_same_mask_different_seed_different_mask() -> None:
    tokens = torch.randn(4, 8, 6, 16)
    masker = GlobalAttentionMasker(mask_ratio=0.5)
    first = masker(tokens, generator=torch.Generator().manual_seed(11))
    again = masker(tokens, generator=torch.Generator().manual_seed(11))
    other = masker(tokens, generator=torch.Generator().manual_seed(12))
    assert torch.equal(first.mask, again.mask)
    assert not torch.equal(first.mask, other.mask)


def test_single_time_patch_gives_uniform_scores() -> None:
    result = GlobalAttentionMasker(mask_ratio=0.5)(torch.randn(2, 1, 6, 4))
    assert result.scores is not None
    assert (result.scores == 0).all()
    torch.testing.assert_close(result.probs, torch.full((2, 6), 1 / 6))


def test_compiles_fullgraph_without_generator() -> None:
    masker = GlobalAttentionMasker(mask_ratio=0.75)
    compiled = torch.compile(masker, backend="eager", fullgraph=True)
    tokens = torch.randn(2, 6, 5, 8)
    result = compiled(tokens)
    assert result.ids_keep.shape == (2, 7)
    assert result.scores is not None
    torch.testing.assert_close(result.scores, score(masker, tokens).flatten(1))
    attention = torch.softmax(torch.randn(2, 5, 6, 6), dim=-1)
    assert compiled(tokens, attention=attention).num_keep == 7


def test_runs_on_device(device: torch.device) -> None:
    tokens = torch.randn(2, 6, 5, 8, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    result = GlobalAttentionMasker()(tokens, generator=generator)
    assert result.mask.device.type == device.type
    assert result.num_keep == 3
