"""``create_mae(..., masker=...)`` and ``create_masker``: any masker in a preset's model."""

from __future__ import annotations

from typing import Any, get_args

import pytest
import torch

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
    "motion": MotionAwareMasker,
    "hyperbolic": HyperbolicHierarchyMasker,
    "attention": GlobalAttentionMasker,
    "hacm-cross": CrossMasker,
    "body-part": BodyPartMasker,
    "tube": SemanticTubeMasker,
    "degree-hub-still": DegreeMotionMasker,
    "degree-limb-moving": DegreeMotionMasker,
}


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
    assert hidden_counts(mae, clips()) == [30] * 3
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
    for name in ("random", "motion", "hyperbolic", "attention", "hacm-cross", "body-part"):
        assert create_masker(name).mask_ratio == 0.9


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


@pytest.mark.parametrize("name", ["tube", "random", "degree-limb-moving"])
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
    with pytest.raises(ValueError, match=r"masker must be one of \['random', 'motion'"):
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
