from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skelmask.maskers.base import MaskContext, ScoreGuidedMasker
from skelmask.sampling import (
    Direction,
    check_direction,
    hide_top,
    num_hidden_tokens,
    score_priority,
    scores_to_logits,
)


def sample_hidden(
    scores: torch.Tensor,
    num_hidden: int,
    *,
    temperature: float,
    direction: Direction,
    region: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The score-guided path of every masker: priorities from scores, then the exact cut."""
    keys, probs = score_priority(
        scores, temperature=temperature, direction=direction, region=region, generator=generator
    )
    return hide_top(keys, num_hidden, region), probs


class ColumnMasker(ScoreGuidedMasker):
    """A score-guided masker in one method: the first feature of every token is its score."""

    def score(self, context: MaskContext) -> torch.Tensor:
        return context.tokens[..., 0]


@given(st.integers(2, 2000), st.floats(0.001, 0.999))
def test_num_hidden_rounds_and_keeps_at_least_one_of_each(num_tokens: int, ratio: float) -> None:
    hidden = num_hidden_tokens(num_tokens, ratio)
    assert 1 <= hidden <= num_tokens - 1
    if 1 <= round(ratio * num_tokens) <= num_tokens - 1:
        assert abs(hidden - ratio * num_tokens) <= 0.5 + 1e-9


def test_num_hidden_avoids_mamps_float_truncation() -> None:
    # MAMP keeps int(750 * (1 - 0.9)) = 74 tokens through float error; the intent is 75.
    assert 750 - num_hidden_tokens(750, 0.9) == 75
    with pytest.raises(ValueError, match="at least 2 tokens"):
        num_hidden_tokens(1, 0.5)


def test_scores_to_logits_is_mamps_tau_max_normalisation() -> None:
    scores = torch.tensor([[0.0, 1.0, 4.0], [0.0, 0.0, 0.0]])
    logits = scores_to_logits(scores, temperature=0.5)
    assert torch.allclose(logits[0], torch.tensor([0.0, 0.5, 2.0]))
    # A motionless (all-zero) sample gives uniform, finite logits.
    assert torch.equal(logits[1], torch.zeros(3))


def test_scores_to_logits_restricts_to_a_region() -> None:
    scores = torch.tensor([[1.0, 2.0, 100.0]])
    region = torch.tensor([True, True, False])
    logits = scores_to_logits(scores, temperature=1.0, region=region)
    assert torch.allclose(logits[0, :2], torch.tensor([0.5, 1.0]))
    assert logits[0, 2] == float("-inf")


@given(
    batch=st.integers(1, 4),
    num_tokens=st.integers(2, 60),
    ratio=st.floats(0.01, 0.99),
    direction=st.sampled_from(["hide_high", "keep_high"]),
    temperature=st.floats(0.05, 5.0),
    seed=st.integers(0, 2**31 - 1),
)
@settings(max_examples=80, deadline=None)
def test_score_priority_then_hide_top_hides_exactly_k_per_row(
    batch: int, num_tokens: int, ratio: float, direction: str, temperature: float, seed: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    scores = torch.rand(batch, num_tokens, generator=generator) * 10
    num_hidden = num_hidden_tokens(num_tokens, ratio)
    hidden, probs = sample_hidden(
        scores,
        num_hidden,
        temperature=temperature,
        direction=check_direction(direction),
        generator=generator,
    )
    assert hidden.dtype == torch.bool
    assert hidden.sum(dim=1).tolist() == [num_hidden] * batch
    assert torch.allclose(probs.sum(dim=1), torch.ones(batch))


@given(
    num_tokens=st.integers(3, 40),
    data=st.data(),
    direction=st.sampled_from(["hide_high", "keep_high"]),
)
@settings(max_examples=50, deadline=None)
def test_score_priority_then_hide_top_never_touches_tokens_outside_the_region(
    num_tokens: int, data: st.DataObject, direction: str
) -> None:
    members = data.draw(
        st.lists(st.booleans(), min_size=num_tokens, max_size=num_tokens).filter(
            lambda m: sum(m) >= 2
        )
    )
    region = torch.tensor(members)
    size = int(region.sum())
    num_hidden = data.draw(st.integers(1, size - 1))
    hidden, probs = sample_hidden(
        torch.rand(3, num_tokens),
        num_hidden,
        temperature=1.0,
        direction=check_direction(direction),
        region=region,
    )
    assert not hidden[:, ~region].any()
    assert hidden.sum(dim=1).tolist() == [num_hidden] * 3
    assert torch.all(probs[:, ~region] == 0)
    assert torch.allclose(probs.sum(dim=1), torch.ones(3))


@given(
    num_tokens=st.integers(2, 40),
    data=st.data(),
)
@settings(max_examples=50, deadline=None)
def test_hide_top_hides_exactly_the_highest_keys_inside_the_region(
    num_tokens: int, data: st.DataObject
) -> None:
    members = data.draw(
        st.lists(st.booleans(), min_size=num_tokens, max_size=num_tokens).filter(
            lambda m: sum(m) >= 2
        )
    )
    region = torch.tensor(members)
    num_hidden = data.draw(st.integers(1, int(region.sum()) - 1))
    # Distinct keys, the highest ones outside the region, which hide_top must skip.
    keys = torch.randperm(num_tokens).float().expand(2, num_tokens) + 100.0 * ~region
    hidden = hide_top(keys, num_hidden, region)
    inside = keys[0, region].sort(descending=True).values
    threshold = inside[num_hidden - 1]
    expected = region & (keys[0] >= threshold)
    assert torch.equal(hidden, expected.expand(2, num_tokens))


@pytest.mark.parametrize("direction", ["hide_high", "keep_high"])
def test_score_priority_draws_from_the_softmax(direction: Direction) -> None:
    # Gumbel-top-k: with one token hidden ("hide_high") or one kept ("keep_high"), that token is
    # distributed as the softmax of the logits.
    scores = torch.tensor([[0.0, 1.0, 2.0, -1.0]]).expand(20000, 4)
    generator = torch.Generator().manual_seed(0)
    num_hidden = 1 if direction == "hide_high" else 3
    hidden, probs = sample_hidden(
        scores, num_hidden, temperature=0.5, direction=direction, generator=generator
    )
    drawn = hidden if direction == "hide_high" else ~hidden
    frequency = drawn.float().mean(dim=0)
    softmax = torch.softmax(scores_to_logits(scores[:1], temperature=0.5)[0], dim=0)
    assert torch.allclose(probs[0], softmax)
    assert torch.allclose(frequency, softmax, atol=0.015)


@pytest.mark.parametrize("direction", ["hide_high", "keep_high"])
def test_direction_decides_whether_high_scores_are_hidden(direction: str) -> None:
    scores = torch.tensor([[0.0, 0.0, 0.0, 1.0]]).expand(4000, 4)
    hidden, _ = sample_hidden(scores, 2, temperature=0.25, direction=check_direction(direction))
    rate_high = hidden[:, 3].float().mean().item()
    rate_low = hidden[:, :3].float().mean().item()
    if direction == "hide_high":
        assert rate_high > rate_low + 0.3
    else:
        assert rate_high < rate_low - 0.3


def test_sampler_probability_ratio_is_bounded_by_the_temperature() -> None:
    scores = torch.tensor([[0.0, 0.3, 7.0, 10.0]])
    _, probs = sample_hidden(scores, 1, temperature=0.8, direction="hide_high")
    ratio = (probs.max() / probs.min()).item()
    assert ratio == pytest.approx(math.exp(1 / 0.8), rel=1e-5)


def test_a_masker_decides_only_counts_it_can_hide() -> None:
    masker = ColumnMasker(0.5, temperature=1.0, direction="hide_high")
    context = MaskContext(tokens=torch.rand(2, 2, 2, 1))
    with pytest.raises(ValueError, match=r"num_hidden must be in \[1, 3\] for 4 tokens, got 4"):
        masker.decide(context, 4)
    with pytest.raises(ValueError, match=r"num_hidden must be in \[1, 3\] for 4 tokens, got 0"):
        masker.decide(context, 0)
    assert masker.decide(context, 3).hidden.sum(dim=1).tolist() == [3, 3]


def test_a_one_method_score_guided_masker_samples_from_its_scores() -> None:
    masker = ColumnMasker(0.25, temperature=0.8, direction="hide_high")
    tokens = torch.tensor([0.0, 0.3, 7.0, 10.0]).view(1, 2, 2, 1)
    result = masker(tokens)
    assert result.scores is not None
    assert result.probs is not None
    assert torch.equal(result.scores, torch.tensor([[0.0, 0.3, 7.0, 10.0]]))
    # Non-negative scores map into [0, 1/tau], so the probability ratio is exactly exp(1/tau).
    ratio = (result.probs.max() / result.probs.min()).item()
    assert ratio == pytest.approx(math.exp(1 / 0.8), rel=1e-5)


def test_non_finite_scores_are_a_clear_error() -> None:
    masker = ColumnMasker(0.5, temperature=1.0, direction="hide_high")
    # The tokens hold a NaN, so the error names them rather than the scores made from them.
    with pytest.raises(ValueError, match="tokens contains 1 NaN"):
        masker(torch.tensor([0.0, float("nan"), 1.0, 2.0]).view(1, 2, 2, 1))

    class NaNMasker(ScoreGuidedMasker):
        def score(self, context: MaskContext) -> torch.Tensor:
            return context.tokens[..., 0] / 0.0

    with pytest.raises(ValueError, match="scores contains 4 NaN"):
        NaNMasker(0.5, 1.0, "hide_high")(torch.zeros(1, 2, 2, 1))


def test_direction_and_temperature_are_checked_when_set() -> None:
    with pytest.raises(ValueError, match="direction must be one of"):
        check_direction("hide_low")
    masker = ColumnMasker(0.5, temperature=1.0, direction="hide_high")
    with pytest.raises(ValueError, match="direction must be one of"):
        masker.direction = "hide_low"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        masker.temperature = 0.0
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        ColumnMasker(0.5, temperature=float("inf"), direction="hide_high")
    assert (masker.direction, masker.temperature) == ("hide_high", 1.0)


def test_counts_and_ratios_are_checked_at_the_public_helpers() -> None:
    # A ratio of 1.5 used to be clamped silently to L - 1, and hide_top's k beyond L was
    # torch's "selected index k out of range".
    with pytest.raises(
        ValueError, match=r"mask_ratio must be in the open interval \(0, 1\), got 1\.5"
    ):
        num_hidden_tokens(40, 1.5)
    with pytest.raises(ValueError, match=r"num_tokens must be an integer, at least 2 .* got 40\.0"):
        num_hidden_tokens(40.0, 0.5)  # type: ignore[arg-type]
    assert num_hidden_tokens(np.int64(40), np.float32(0.5)) == 20  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"num_hidden in \[0, L\], got keys of shape \(2, 10\) and num_hidden=11"
    ):
        hide_top(torch.zeros(2, 10), 11)
    with pytest.raises(TypeError, match=r"keys must be a torch\.Tensor, got ndarray"):
        hide_top(np.zeros((2, 10)), 3)  # type: ignore[arg-type]
