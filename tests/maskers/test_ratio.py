"""Mask ratios that vary: ranges drawn per batch and schedules over training steps."""

from __future__ import annotations

import math

import pytest
import torch

from skelmask.maskers.body_part import BodyPartMasker
from skelmask.maskers.cross import CrossMasker
from skelmask.maskers.random import RandomMasker
from skelmask.maskers.ratio import RatioSchedule, check_ratio_spec, nominal_ratio
from skelmask.sampling import num_hidden_tokens


def test_linear_schedule_values() -> None:
    schedule = RatioSchedule(0.5, 0.9, steps=8)
    values = [schedule.value(step) for step in (0, 2, 4, 8, 100)]
    assert values == pytest.approx([0.5, 0.6, 0.7, 0.9, 0.9])


def test_cosine_schedule_values() -> None:
    schedule = RatioSchedule(0.9, 0.5, steps=4, shape="cosine")
    expected = [0.9 - 0.4 * (1 - math.cos(math.pi * k / 4)) / 2 for k in range(5)]
    assert [schedule.value(k) for k in range(5)] == pytest.approx(expected)
    assert schedule.value(2) == pytest.approx(0.7)


def test_schedule_counts_its_steps_and_restores_them() -> None:
    schedule = RatioSchedule(0.5, 0.9, steps=10)
    schedule.step()
    schedule.step(4)
    assert schedule.value() == pytest.approx(0.7)
    other = RatioSchedule(0.5, 0.9, steps=10)
    other.load_state_dict(schedule.state_dict())
    assert other.current_step == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": 0.0, "end": 0.5, "steps": 3}, r"start must be in the open interval"),
        ({"start": 0.5, "end": 1.0, "steps": 3}, r"end must be in the open interval"),
        ({"start": 0.5, "end": 0.6, "steps": 0}, "steps must be a positive integer"),
        ({"start": 0.5, "end": 0.6, "steps": 3, "shape": "step"}, "shape must be one of"),
    ],
)
def test_bad_schedules_are_clear_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RatioSchedule(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ((0.9, 0.5), ValueError, r"needs low <= high, got \(0.9, 0.5\)"),
        ((0.0, 0.5), ValueError, r"mask_ratio\[0\] \(low\) must be in the open interval"),
        ((0.5, 0.6, 0.7), ValueError, r"as a range must be \(low, high\)"),
        ("0.5", TypeError, "got str"),
    ],
)
def test_bad_ratio_specs_are_clear_errors(spec: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        check_ratio_spec(spec)
    with pytest.raises(error, match=message):
        RandomMasker(spec)  # type: ignore[arg-type]


def test_a_range_is_drawn_once_per_batch_and_covers_its_span() -> None:
    masker = RandomMasker((0.5, 0.9))
    assert masker.mask_ratio == pytest.approx(0.7)
    generator = torch.Generator().manual_seed(0)
    counts = []
    for _ in range(300):
        result = masker(torch.zeros(4, 10, 10, 1), generator=generator)
        per_sample = result.mask.sum(dim=1)
        assert (per_sample == result.num_hidden).all()  # one exact count for the batch
        counts.append(result.num_hidden)
    assert min(counts) >= 50
    assert max(counts) <= 90
    # A uniform draw over 41 counts: 300 draws reach both ends' neighbourhoods.
    assert min(counts) <= 52
    assert max(counts) >= 88


def test_a_range_draw_is_reproducible_with_a_generator_or_the_global_seed() -> None:
    masker = RandomMasker((0.2, 0.8))
    tokens = torch.zeros(2, 10, 10, 1)
    first = [
        masker(tokens, generator=torch.Generator().manual_seed(s)).num_hidden for s in range(8)
    ]
    again = [
        masker(tokens, generator=torch.Generator().manual_seed(s)).num_hidden for s in range(8)
    ]
    assert first == again
    assert len(set(first)) > 1
    torch.manual_seed(5)
    global_first = [masker(tokens).num_hidden for _ in range(5)]
    torch.manual_seed(5)
    assert [masker(tokens).num_hidden for _ in range(5)] == global_first


def test_per_call_range_and_schedule_override_the_masker_ratio() -> None:
    masker = RandomMasker(0.5)
    tokens = torch.zeros(2, 10, 10, 1)
    assert masker(tokens, mask_ratio=(0.3, 0.3)).num_hidden == 30
    schedule = RatioSchedule(0.2, 0.8, steps=2)
    assert masker(tokens, mask_ratio=schedule).num_hidden == 20
    schedule.step()
    assert masker(tokens, mask_ratio=schedule).num_hidden == 50


def test_a_schedule_set_at_construction_moves_with_its_steps() -> None:
    schedule = RatioSchedule(0.4, 0.8, steps=4)
    masker = RandomMasker(schedule)
    tokens = torch.zeros(2, 10, 10, 1)
    counts = []
    for _ in range(6):
        counts.append(masker(tokens).num_hidden)
        schedule.step()
    assert counts == [40, 50, 60, 70, 80, 80]
    assert masker.ratio_spec is schedule


def test_cross_masker_with_a_range_hides_an_exact_varying_count() -> None:
    masker = CrossMasker(RandomMasker(0.5), RandomMasker(0.5), mask_ratio=(0.5, 0.9))
    generator = torch.Generator().manual_seed(0)
    counts = set()
    for _ in range(50):
        result = masker(torch.zeros(3, 10, 10, 1), generator=generator)
        assert (result.mask.sum(dim=1) == result.num_hidden).all()
        counts.add(result.num_hidden)
    assert len(counts) > 5
    assert min(counts) >= 50
    assert max(counts) <= 90


def test_nominal_ratio_of_each_form() -> None:
    assert nominal_ratio(0.3) == 0.3
    assert nominal_ratio((0.5, 0.9)) == pytest.approx(0.7)
    assert nominal_ratio(RatioSchedule(0.1, 0.5, steps=2)) == pytest.approx(0.1)


def test_a_fixed_count_masker_refuses_a_range() -> None:
    masker = BodyPartMasker(num_parts=2, layout="coco")
    with pytest.raises(ValueError, match="cannot be set"):
        masker.mask_ratio = (0.5, 0.9)


def test_a_range_cannot_be_drawn_inside_a_compiled_call_but_draw_ratio_can() -> None:
    masker = RandomMasker((0.5, 0.9))
    compiled = torch.compile(masker, backend="eager", fullgraph=True)
    tokens = torch.zeros(2, 10, 10, 1)
    with pytest.raises(Exception, match="draw it outside the compiled call"):
        compiled(tokens)
    ratio = masker.draw_ratio(torch.Generator().manual_seed(0))
    assert 0.5 <= ratio <= 0.9
    assert compiled(tokens, mask_ratio=ratio).num_hidden == num_hidden_tokens(100, ratio)


def test_range_and_schedule_ratios_refuse_strings_and_bools() -> None:
    # float("0.5") and float(True) used to pass inside a (low, high) range and a schedule.
    with pytest.raises(
        ValueError,
        match=r"mask_ratio\[0\] \(low\) must be in the open interval \(0, 1\), got '0\.5'",
    ):
        RandomMasker(("0.5", 0.9))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"start must be in the open interval \(0, 1\), got True"):
        RatioSchedule(start=True, end=0.9, steps=10)
