from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skelmask.layouts import SkeletonLayout, get_layout
from skelmask.maskers.skelemix import SkeleMix, mask_pool

LAYOUTS = ["nturgb+d", "coco", "openpose", "msr-action3d", "nw-ucla"]


def _batch(n: int, t: int, v: int, m: int = 2, c: int = 3) -> torch.Tensor:
    # Every entry is unique, so any value that moves can be traced back to its source.
    return torch.arange(n * c * t * v * m, dtype=torch.float32).reshape(n, c, t, v, m)


@settings(max_examples=30, deadline=None)
@given(
    layout_name=st.sampled_from(LAYOUTS),
    batch=st.integers(2, 6),
    feature_frames=st.integers(1, 6),
    stride=st.integers(1, 4),
    per_sample=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_pastes_exactly_the_region_from_the_donor(
    layout_name: str, batch: int, feature_frames: int, stride: int, per_sample: bool, seed: int
) -> None:
    layout = get_layout(layout_name)
    frames = feature_frames * stride
    x = _batch(batch, frames, layout.num_joints)
    mix = SkeleMix(layout, t_patch=stride, per_sample=per_sample)
    result = mix(x, generator=torch.Generator().manual_seed(seed))

    assert result.mixed.shape == x.shape
    assert result.donor.dtype == torch.int64
    assert bool((result.donor != torch.arange(batch)).all())
    assert sorted(result.donor.tolist()) == list(range(batch))
    region = result.input_mask[:, None, :, :, None].expand_as(x)
    assert torch.equal(result.mixed[region], x[result.donor][region])
    assert torch.equal(result.mixed[~region], x[~region])
    # The feature mask lines up with the input region after the stride.
    assert result.feature_mask.shape == (batch, feature_frames, layout.num_joints)
    assert torch.equal(result.input_mask, result.feature_mask.repeat_interleave(stride, dim=1))
    for i in range(batch):
        frames_hit = result.feature_mask[i].any(dim=1).nonzero().flatten()
        joints_hit = result.feature_mask[i].any(dim=0)
        # One contiguous segment and a product region (joints × frames).
        assert frames_hit.numel() >= 1
        assert frames_hit.tolist() == list(range(int(frames_hit[0]), int(frames_hit[-1]) + 1))
        assert torch.equal(
            result.feature_mask[i], result.feature_mask[i].any(dim=1)[:, None] & joints_hit
        )
        # The joints are a union of 2–3 whole body parts.
        parts = [set(p) for p in layout.body_parts.values()]
        chosen = [p for p in parts if all(joints_hit[j] for j in p)]
        assert 2 <= len(chosen) <= 3
        assert set(joints_hit.nonzero().flatten().tolist()) == set().union(*chosen)
    if not per_sample:
        assert bool((result.feature_mask == result.feature_mask[0]).all())


def test_segment_length_follows_the_ratio() -> None:
    mix = SkeleMix(get_layout("nturgb+d"), t_patch=4)
    lengths = set()
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        result = mix(torch.zeros(2, 3, 64, 25, 1), generator=generator)
        lengths.add(int(result.feature_mask[0].any(dim=1).sum()))
    assert lengths == set(range(7, 12))
    assert mix.segment_lengths(16) == (7, 11)
    assert mix.segment_lengths(1) == (1, 1)


def test_every_donor_shift_occurs_for_small_batches() -> None:
    mix = SkeleMix(get_layout("coco"), t_patch=1)
    generator = torch.Generator().manual_seed(1)
    shifts = {
        int(mix(torch.zeros(3, 2, 4, 17, 1), generator=generator).donor[0]) for _ in range(50)
    }
    assert shifts == {1, 2}
    two = mix(torch.zeros(2, 2, 4, 17, 1), generator=generator)
    assert two.donor.tolist() == [1, 0]


def test_generator_reproducibility() -> None:
    mix = SkeleMix(get_layout("nturgb+d"), per_sample=True)
    x = torch.randn(5, 3, 16, 25, 2)
    first = mix(x, generator=torch.Generator().manual_seed(3))
    second = mix(x, generator=torch.Generator().manual_seed(3))
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    torch.manual_seed(7)
    third = mix(x)
    torch.manual_seed(7)
    assert torch.equal(third.mixed, mix(x).mixed)


def test_per_sample_regions_differ() -> None:
    mix = SkeleMix(get_layout("nturgb+d"), per_sample=True)
    result = mix(torch.zeros(16, 3, 64, 25, 1), generator=torch.Generator().manual_seed(0))
    assert not bool((result.feature_mask == result.feature_mask[0]).all())


def test_input_errors() -> None:
    mix = SkeleMix(get_layout("nturgb+d"), t_patch=4)
    with pytest.raises(ValueError, match="N >= 2"):
        mix(torch.zeros(1, 3, 8, 25, 1))
    with pytest.raises(ValueError, match="multiple of t_patch = 4"):
        mix(torch.zeros(2, 3, 10, 25, 1))
    with pytest.raises(ValueError, match="V = 20 joints"):
        mix(torch.zeros(2, 3, 8, 20, 1))
    with pytest.raises(ValueError, match=r"\(N, C, T, V, M\)"):
        mix(torch.zeros(2, 3, 8, 25))


def test_constructor_errors() -> None:
    layout = get_layout("nturgb+d")
    with pytest.raises(ValueError, match="num_parts"):
        SkeleMix(layout, num_parts=(0, 2))
    with pytest.raises(ValueError, match="num_parts"):
        SkeleMix(layout, num_parts=(2, 6))
    with pytest.raises(ValueError, match="segment_ratio"):
        SkeleMix(layout, segment_ratio=(0.5, 0.2))
    with pytest.raises(ValueError, match="t_patch must be a positive integer"):
        SkeleMix(layout, t_patch=0)
    with pytest.raises(ValueError, match="no body_parts"):
        SkeleMix(SkeletonLayout.from_parents([-1, 0]))


def test_mask_pool_matches_a_hand_computation() -> None:
    features = torch.tensor(
        [[[[1.0, 2.0], [3.0, 4.0]], [[10.0, 20.0], [30.0, 40.0]]]]
    )  # (N=1, D=2, T'=2, V=2)
    mask = torch.tensor([[[True, False], [True, False]]])
    trimmed, truncated = mask_pool(features, mask)
    assert torch.allclose(trimmed, torch.tensor([[(1 + 3) / 2, (10 + 30) / 2]]))
    assert torch.allclose(truncated, torch.tensor([[(2 + 4) / 2, (20 + 40) / 2]]))


@settings(max_examples=20, deadline=None)
@given(
    batch=st.integers(1, 3),
    persons=st.integers(1, 3),
    frames=st.integers(1, 4),
    joints=st.integers(1, 4),
    seed=st.integers(0, 1000),
)
def test_mask_pool_with_persons_matches_loops(
    batch: int, persons: int, frames: int, joints: int, seed: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(batch, persons, 3, frames, joints, generator=generator)
    mask = torch.rand(batch, frames, joints, generator=generator) < 0.5
    trimmed, truncated = mask_pool(features, mask)
    for n in range(batch):
        for d in range(3):
            inside, outside = [], []
            for m in range(persons):
                values_in = [
                    float(features[n, m, d, t, v])
                    for t in range(frames)
                    for v in range(joints)
                    if mask[n, t, v]
                ]
                values_out = [
                    float(features[n, m, d, t, v])
                    for t in range(frames)
                    for v in range(joints)
                    if not mask[n, t, v]
                ]
                inside.append(sum(values_in) / len(values_in) if values_in else 0.0)
                outside.append(sum(values_out) / len(values_out) if values_out else 0.0)
            assert float(trimmed[n, d]) == pytest.approx(sum(inside) / persons, abs=1e-5)
            assert float(truncated[n, d]) == pytest.approx(sum(outside) / persons, abs=1e-5)


def test_mask_pool_errors() -> None:
    with pytest.raises(ValueError, match="features must be"):
        mask_pool(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be a bool"):
        mask_pool(torch.zeros(2, 3, 4, 5), torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match="mask must be a bool"):
        mask_pool(torch.zeros(2, 3, 4, 5), torch.zeros(2, 4, 6, dtype=torch.bool))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_keeps_the_input_dtype(dtype: torch.dtype) -> None:
    x = torch.randn(3, 3, 8, 25, 1).to(dtype)
    result = SkeleMix(get_layout("nturgb+d"))(x, generator=torch.Generator().manual_seed(0))
    assert result.mixed.dtype == dtype
    trimmed, truncated = mask_pool(torch.randn(3, 4, 2, 25).to(dtype), result.feature_mask)
    assert trimmed.dtype == truncated.dtype == dtype
    assert bool(torch.isfinite(trimmed).all())
