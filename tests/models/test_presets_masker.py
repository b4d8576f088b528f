"""``create_mae(..., masker=...)`` and ``create_masker``: any masker in a preset's model."""

from __future__ import annotations

import math
from typing import Any, get_args

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skelmask.layouts import SkeletonLayout
from skelmask.maskers import (
    BodyPartMasker,
    CrossMasker,
    DegreeMotionMasker,
    GlobalAttentionMasker,
    HyperbolicHierarchyMasker,
    Masker,
    MotionAwareMasker,
    RandomMasker,
    RatioSchedule,
    SaliencyMasker,
    SemanticTubeMasker,
)
from skelmask.models import MaskerName, Preset, TransformerMAE, create_mae, create_masker

NAMES: tuple[MaskerName, ...] = get_args(MaskerName)
# MSR Action3D, 8 frames of 4 per token: a 2 × 20 grid of L = 40 tokens.
TINY: dict[str, Any] = {
    "layout": "msr-action3d",
    "num_frames": 8,
    "t_patch": 4,
    "embed_dim": 16,
    "depth": 1,
    "num_heads": 2,
    "decoder_dim": 8,
    "decoder_depth": 1,
}
TOKENS = 40
EXPECTED: dict[str, type[Masker]] = {
    "random": RandomMasker,
    "joint-tube": RandomMasker,
    "frame": RandomMasker,
    "motion": MotionAwareMasker,
    "hyperbolic": HyperbolicHierarchyMasker,
    "attention": GlobalAttentionMasker,
    "hacm-cross": CrossMasker,
    "body-part": BodyPartMasker,
    "tube": SemanticTubeMasker,
    "degree-hub-still": DegreeMotionMasker,
    "degree-limb-moving": DegreeMotionMasker,
}
# Tokens hidden at ratio 0.75 on the 2 × 20 grid: round(0.75 · 40) = 30, and 15 whole joints in
# both time patches for "joint-tube"; "frame" rounds 0.75 · 2 = 1.5 up to 2 time patches,
# clamped to 1 so that one stays visible: 20 tokens.
HIDDEN_AT_075 = dict.fromkeys(EXPECTED, 30) | {"frame": 20}


def tiny_mae(preset: Preset, **kwargs: Any) -> TransformerMAE:
    torch.manual_seed(0)
    return create_mae(preset, **{**TINY, **kwargs})


def clips(count: int = 3) -> torch.Tensor:
    """``(N, C, T, V, M)`` random-walk clips in metres, one person."""
    generator = torch.Generator().manual_seed(1)
    return (0.02 * torch.randn(count, 3, 8, 20, 1, generator=generator)).cumsum(dim=2)


def hidden_counts(mae: TransformerMAE, x: torch.Tensor) -> list[int]:
    out = mae(x)
    assert bool(out.loss.isfinite())
    counts: list[int] = out.mask.sum(dim=1).tolist()
    assert len(set(counts)) == 1, "every sample of a batch hides the same count"
    return counts


def test_every_name_is_listed_with_its_masker() -> None:
    assert set(NAMES) == set(EXPECTED)


@pytest.mark.parametrize("preset", ["mae", "mamp"])
@pytest.mark.parametrize("name", NAMES)
def test_a_named_masker_trains_in_the_preset_and_keeps_its_encoder_and_target(
    preset: Preset, name: MaskerName
) -> None:
    mae = tiny_mae(preset, masker=name, mask_ratio=0.75)
    assert type(mae.masker) is EXPECTED[name]
    assert mae.target == ("coords" if preset == "mae" else "motion")
    assert not mae.encoder.hyperbolic
    assert mae.contrast is None
    assert hidden_counts(mae, clips()) == [HIDDEN_AT_075[name]] * 3
    mae(clips()).loss.backward()
    assert all(p.grad is not None for p in mae.encoder.blocks.parameters())


def test_named_maskers_use_the_layout_t_patch_and_view() -> None:
    hub = create_masker("degree-hub-still", layout="msr-action3d", t_patch=2)
    limb = create_masker("degree-limb-moving", layout="msr-action3d", t_patch=2)
    assert isinstance(hub, DegreeMotionMasker)
    assert isinstance(limb, DegreeMotionMasker)
    assert (hub.view, limb.view) == ("hub_still", "limb_moving")
    assert hub.layout.name == "msr-action3d"
    assert hub.motion.t_patch == 2
    motion = create_masker("motion", t_patch=3)
    assert isinstance(motion, MotionAwareMasker)
    assert motion.t_patch == 3
    cross = create_masker("hacm-cross", layout="coco")
    assert isinstance(cross, CrossMasker)
    assert isinstance(cross.second, HyperbolicHierarchyMasker)
    assert cross.second.layout.name == "coco"
    assert isinstance(create_masker("body-part", layout="coco"), BodyPartMasker)


def test_default_ratios_are_the_presets_and_the_papers() -> None:
    for preset in ("mae", "mamp", "hacm"):
        assert hidden_counts(tiny_mae(preset), clips()) == [36] * 3  # 0.9 of 40, as before
    assert create_masker("tube").ratio_spec == (0.5, 0.9)  # SLiM
    assert create_masker("degree-hub-still").ratio_spec == 0.5
    for name in (
        "random", "joint-tube", "frame", "motion", "hyperbolic", "attention", "hacm-cross",
        "body-part",
    ):  # fmt: skip
        assert create_masker(name).ratio_spec == 0.9


@pytest.mark.parametrize(("name", "granularity"), [("joint-tube", "joint"), ("frame", "frame")])
def test_joint_tube_and_frame_are_random_masking_of_whole_units(
    name: MaskerName, granularity: str
) -> None:
    masker = create_masker(name, mask_ratio=0.5)
    assert type(masker) is RandomMasker
    assert masker.granularity == granularity
    assert masker.ratio_spec == 0.5
    # "tube" is SLiM's semantic tube masker, not a RandomMasker at joint granularity.
    assert type(create_masker("tube")) is SemanticTubeMasker


def rounded_units(ratio: float, units: int) -> int:
    """round(ratio · units), halves up, kept in [1, units - 1]: one unit hidden, one visible."""
    return min(max(math.floor(ratio * units + 0.5), 1), units - 1)


@given(
    batch=st.integers(1, 3),
    time_patches=st.integers(2, 12),
    joints=st.integers(2, 30),
    ratio=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**31 - 1),
)
@settings(max_examples=40, deadline=None)
def test_joint_tube_hides_whole_joint_columns_and_frame_whole_time_rows(
    batch: int, time_patches: int, joints: int, ratio: float, seed: int
) -> None:
    tokens = torch.randn(batch, time_patches, joints, 4)
    generator = torch.Generator().manual_seed(seed)
    columns = create_masker("joint-tube", mask_ratio=ratio)(tokens, generator=generator)
    grid = columns.grid_mask  # (B, Tp, V), True = hidden
    assert torch.equal(grid, grid[:, :1].expand_as(grid))  # a joint is hidden in every row or none
    hidden_joints = grid[:, 0].sum(dim=1)
    assert hidden_joints.tolist() == [rounded_units(ratio, joints)] * batch
    assert columns.num_hidden == rounded_units(ratio, joints) * time_patches

    rows = create_masker("frame", mask_ratio=ratio)(tokens, generator=generator)
    grid = rows.grid_mask
    assert torch.equal(grid, grid[:, :, :1].expand_as(grid))  # a time patch is hidden whole
    hidden_rows = grid[:, :, 0].sum(dim=1)
    assert hidden_rows.tolist() == [rounded_units(ratio, time_patches)] * batch
    assert rows.num_hidden == rounded_units(ratio, time_patches) * joints


def test_a_tiny_grid_keeps_one_unit_visible_or_is_refused() -> None:
    tokens = torch.randn(4, 2, 20, 8)  # two time patches
    for ratio in (0.5, 0.9, 0.99):  # round(0.99 · 2) = 2 is clamped to 1
        rows = create_masker("frame", mask_ratio=ratio)(tokens).grid_mask
        assert rows[:, :, 0].sum(dim=1).tolist() == [1] * 4
    with pytest.raises(
        ValueError, match="granularity='frame' needs at least 2 time patches, got 1"
    ):
        create_masker("frame")(torch.randn(1, 1, 20, 8))
    # create_mae refuses such a grid when the model is built, naming the sizes.
    with pytest.raises(
        ValueError,
        match=r"cannot mask the 1 × 20 token grid \(num_frames=4 // t_patch=4 .*needs at least "
        r"2 time patches, got 1",
    ):
        tiny_mae("mae", masker="frame", num_frames=4)
    point = SkeletonLayout.from_parents([-1], name="point")
    with pytest.raises(ValueError, match="needs at least 2 joint patches, got 1"):
        tiny_mae("mae", masker="joint-tube", layout=point)
    with pytest.raises(ValueError, match=r"CrossMasker cannot mask the 1 × 20 token grid"):
        tiny_mae("hacm", num_frames=4)


def test_create_mae_with_joint_tubes_hides_whole_joints_and_trains() -> None:
    mae = tiny_mae("mae", masker="joint-tube")  # default ratio 0.9: 18 of 20 joints
    out = mae(clips())
    grid = out.mask.reshape(3, 2, 20)  # (N, Tp, V)
    assert torch.equal(grid[:, 0], grid[:, 1])
    assert grid[:, 0].sum(dim=1).tolist() == [18] * 3
    assert out.pred.shape[:2] == (3, TOKENS)
    out.loss.backward()
    assert bool(out.loss.isfinite())
    assert all(p.grad is not None for p in mae.encoder.blocks.parameters())


def test_hacm_keeps_its_contrast_loss_with_any_cross_masker() -> None:
    layout = "msr-action3d"
    cross = CrossMasker(SemanticTubeMasker(0.8, layout=layout), RandomMasker(0.8))
    mae = tiny_mae("hacm", masker=cross)
    assert mae.masker is cross
    assert mae.encoder.hyperbolic
    out = mae(clips())
    assert set(out.losses) == {"reconstruction", "contrast"}
    assert bool(out.loss.isfinite())
    named = tiny_mae("hacm", masker="hacm-cross", mask_ratio=0.8)
    assert isinstance(named.masker, CrossMasker)
    assert hidden_counts(named, clips()) == [32] * 3


@pytest.mark.parametrize("name", ["tube", "random", "joint-tube", "frame", "degree-limb-moving"])
def test_hacm_refuses_a_masker_without_branches(name: MaskerName) -> None:
    with pytest.raises(ValueError, match="preset 'hacm' keeps HA-CM's cross-contrast loss"):
        tiny_mae("hacm", masker=name)


@pytest.mark.parametrize("name", ["random", "tube", "hacm-cross"])
def test_a_range_varies_the_count_per_batch_within_its_bounds(name: MaskerName) -> None:
    preset: Preset = "hacm" if name == "hacm-cross" else "mamp"
    mae = tiny_mae(preset, masker=name, mask_ratio=(0.5, 0.9))
    assert mae.masker.ratio_spec == (0.5, 0.9)
    torch.manual_seed(2)  # the range is drawn from the global CPU RNG
    counts = {hidden_counts(mae, clips())[0] for _ in range(12)}
    assert len(counts) > 1
    assert all(20 <= count <= 36 for count in counts)


def test_a_schedule_is_shared_with_the_caller_who_steps_it() -> None:
    schedule = RatioSchedule(0.5, 0.9, steps=4)
    mae = tiny_mae("mae", masker="tube", mask_ratio=schedule)
    assert mae.masker.ratio_spec is schedule
    assert hidden_counts(mae, clips()) == [20] * 3
    schedule.step(2)
    assert hidden_counts(mae, clips()) == [28] * 3
    schedule.step(10)
    assert hidden_counts(mae, clips()) == [36] * 3
    # The presets' own maskers take a schedule too.
    preset_schedule = RatioSchedule(0.5, 0.9, steps=4)
    mamp = tiny_mae("mamp", mask_ratio=preset_schedule)
    assert isinstance(mamp.masker, MotionAwareMasker)
    assert mamp.masker.ratio_spec is preset_schedule


def test_a_masker_instance_is_used_as_given() -> None:
    masker = RandomMasker(0.6, granularity="joint")
    mae = tiny_mae("mae", masker=masker)
    assert mae.masker is masker
    assert hidden_counts(mae, clips()) == [24] * 3  # 12 of 20 joints in both time patches


def test_bad_masker_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"masker must be one of \['random', 'joint-tube'"):
        tiny_mae("mae", masker="saliency")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"masker must be a name in .* or a skelmask Masker"):
        tiny_mae("mae", masker=torch.nn.Identity())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"mask_ratio=0\.5 was given with a RandomMasker"):
        tiny_mae("mae", masker=RandomMasker(0.9), mask_ratio=0.5)
    with pytest.raises(ValueError, match="SaliencyMasker needs saliency= at every call"):
        tiny_mae("mae", masker=SaliencyMasker(0.9))
    with pytest.raises(ValueError, match=r"mask_ratio\[1\] \(high\)"):
        tiny_mae("mae", masker="tube", mask_ratio=(0.5, 1.0))
    with pytest.raises(ValueError, match="t_patch"):
        create_masker("motion", t_patch=0)


def test_mask_temperature_sets_tau_of_a_score_guided_masker() -> None:
    mae = create_mae("mamp", layout="coco", num_frames=8, embed_dim=16, depth=1, num_heads=2,
                     decoder_dim=8, decoder_depth=1, mask_temperature=0.75)  # fmt: skip
    assert mae.masker.temperature == 0.75
    with pytest.raises(ValueError, match="RandomMasker does not sample from scores"):
        create_mae("mae", layout="coco", num_frames=8, embed_dim=16, depth=1, num_heads=2,
                   decoder_dim=8, decoder_depth=1, mask_temperature=0.75)  # fmt: skip
