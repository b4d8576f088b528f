"""The masker contract, checked for every masker with the same tests."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skelmask.layouts import SkeletonLayout
from skelmask.maskers.attention import GlobalAttentionMasker
from skelmask.maskers.base import Masker
from skelmask.maskers.body_part import BodyPartMasker, PartDraw
from skelmask.maskers.cross import CrossMasker
from skelmask.maskers.degree import DegreeMotionMasker
from skelmask.maskers.hyperbolic import HyperbolicHierarchyMasker
from skelmask.maskers.motion import MotionAwareMasker
from skelmask.maskers.random import RandomMasker
from skelmask.maskers.saliency import SaliencyMasker
from skelmask.maskers.tube import SemanticTubeMasker
from skelmask.tokens import MaskResult, flatten_grid, gather_tokens, patchify, restore_tokens

T_PATCH = 2

# Random tokens here are deliberately of any scale; the clipping advice is not under test.
pytestmark = pytest.mark.filterwarnings("ignore:HyperbolicHierarchyMasker.*clip_r:UserWarning")

# A factory builds a masker for a mask ratio and the grid's joint count.
MaskerFactory = Callable[[float, int], Masker]


def chain_layout(joints: int) -> SkeletonLayout:
    return SkeletonLayout.from_parents([-1, *range(joints - 1)], name=f"chain-{joints}")


def hyperbolic(ratio: float, joints: int) -> HyperbolicHierarchyMasker:
    return HyperbolicHierarchyMasker(ratio, layout=chain_layout(joints), root_joints=(0,))


def body_parts(ratio: float, joints: int, draw_per: PartDraw) -> BodyPartMasker:
    return BodyPartMasker(
        ratio,
        layout=chain_layout(joints),
        part_map={f"p{k}": range(k, joints, 3) for k in range(min(3, joints))},
        draw_per=draw_per,
    )


FACTORIES: dict[str, MaskerFactory] = {
    "random-token": lambda ratio, _: RandomMasker(ratio),
    "random-joint": lambda ratio, _: RandomMasker(ratio, granularity="joint"),
    "random-frame": lambda ratio, _: RandomMasker(ratio, granularity="frame"),
    "motion-hide-high": lambda ratio, _: MotionAwareMasker(ratio, t_patch=T_PATCH),
    "motion-keep-high": lambda ratio, _: MotionAwareMasker(
        ratio, t_patch=T_PATCH, direction="keep_high"
    ),
    "global-attention": lambda ratio, _: GlobalAttentionMasker(ratio),
    "hyperbolic": hyperbolic,
    "cross-hacm": lambda ratio, joints: CrossMasker.hacm(
        hyperbolic(ratio, joints), mask_ratio=ratio
    ),
    "cross-motion-random-joint-parity": lambda ratio, _: CrossMasker(
        MotionAwareMasker(ratio, t_patch=T_PATCH), RandomMasker(ratio), partition="joint_parity"
    ),
    # Unequal interleaved parts (joint j in part j % 3), so that the count cuts parts.
    "body-part-time-patch": lambda ratio, joints: body_parts(ratio, joints, "time_patch"),
    # Structured maskers inside branches: whole joints on even, whole parts on odd time patches.
    "cross-joint-body-part": lambda ratio, joints: CrossMasker(
        RandomMasker(ratio, granularity="joint"), body_parts(ratio, joints, "clip")
    ),
    "degree-hub-still": lambda ratio, joints: DegreeMotionMasker(
        "hub_still", ratio, layout=chain_layout(joints), t_patch=T_PATCH
    ),
    "degree-limb-moving": lambda ratio, joints: DegreeMotionMasker(
        "limb_moving", ratio, layout=chain_layout(joints), t_patch=T_PATCH
    ),
    "saliency-hide-high": lambda ratio, _: SaliencyMasker(ratio),
    "saliency-keep-high": lambda ratio, _: SaliencyMasker(ratio, direction="keep_high"),
    "semantic-tube": lambda ratio, joints: SemanticTubeMasker(
        ratio,
        layout=chain_layout(joints),
        part_map={f"p{k}": range(k, joints, 3) for k in range(min(3, joints))},
    ),
}


def guidance(masker: Masker, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Call-time inputs a masker requires besides tokens and coords."""
    if "saliency" in masker.call_inputs:
        return {"saliency": tokens.norm(dim=-1)}
    return {}


def run_masker(
    masker: Masker,
    tokens: torch.Tensor,
    generator: torch.Generator | None = None,
    mask_ratio: float | None = None,
    temperature: float | None = None,
) -> MaskResult:
    batch, time_patches, joint_patches, _ = tokens.shape
    coords_generator = torch.Generator(device=tokens.device).manual_seed(1234)
    coords = torch.randn(
        batch,
        time_patches * T_PATCH,
        joint_patches,
        3,
        generator=coords_generator,
        device=tokens.device,
    )
    return masker(
        tokens,
        coords=coords.to(tokens.dtype),
        generator=generator,
        mask_ratio=mask_ratio,
        temperature=temperature,
        **guidance(masker, tokens),
    )


def assert_valid(result: MaskResult, tokens: torch.Tensor) -> None:
    batch, time_patches, joint_patches, width = tokens.shape
    num_tokens = time_patches * joint_patches
    assert result.grid_size == (time_patches, joint_patches)
    assert result.mask.shape == (batch, num_tokens)
    assert result.mask.dtype == torch.bool
    assert result.ids_keep.shape == (batch, result.num_keep)
    assert result.ids_restore.shape == (batch, num_tokens)
    assert (~result.mask).sum(dim=1).tolist() == [result.num_keep] * batch
    assert 1 <= result.num_keep <= num_tokens - 1
    for extra in (result.scores, result.probs):
        if extra is not None:
            assert extra.shape == (batch, num_tokens)
            assert extra.dtype == torch.float32
            assert torch.isfinite(extra).all()
            assert not extra.requires_grad
    flat = flatten_grid(tokens.float())
    mask_token = torch.full((width,), -7.0, device=tokens.device)
    restored = restore_tokens(gather_tokens(flat, result.ids_keep), result.ids_restore, mask_token)
    assert torch.equal(restored, torch.where(result.mask.unsqueeze(-1), mask_token, flat))


@pytest.mark.parametrize("name", FACTORIES)
@given(
    batch=st.integers(1, 3),
    time_patches=st.integers(2, 9),
    joint_patches=st.integers(2, 9),
    ratio=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**31 - 1),
)
@settings(max_examples=25, deadline=None)
def test_exact_k_and_every_visible_token_restored(
    name: str, batch: int, time_patches: int, joint_patches: int, ratio: float, seed: int
) -> None:
    masker = FACTORIES[name](ratio, joint_patches)
    tokens = torch.randn(batch, time_patches, joint_patches, 4)
    result = run_masker(masker, tokens, torch.Generator().manual_seed(seed))
    assert_valid(result, tokens)
    assert result.num_hidden == masker.num_hidden((time_patches, joint_patches))


@pytest.mark.parametrize("name", FACTORIES)
def test_same_seed_same_mask_different_seed_different_mask(name: str) -> None:
    masker = FACTORIES[name](0.6, 12)
    tokens = torch.randn(4, 10, 12, 8)
    first = run_masker(masker, tokens, torch.Generator().manual_seed(7))
    again = run_masker(masker, tokens, torch.Generator().manual_seed(7))
    other = run_masker(masker, tokens, torch.Generator().manual_seed(8))
    assert torch.equal(first.mask, again.mask)
    assert not torch.equal(first.mask, other.mask)


@pytest.mark.parametrize("name", FACTORIES)
def test_without_generator_the_global_rng_is_used(name: str) -> None:
    masker = FACTORIES[name](0.6, 12)
    tokens = torch.randn(4, 10, 12, 8)
    torch.manual_seed(3)
    first = run_masker(masker, tokens)
    torch.manual_seed(3)
    again = run_masker(masker, tokens)
    assert torch.equal(first.mask, again.mask)


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_inputs_give_the_same_kind_of_result(name: str, dtype: torch.dtype) -> None:
    masker = FACTORIES[name](0.9, 25)
    tokens = (torch.randn(3, 12, 25, 16) * 8).to(dtype)
    result = run_masker(masker, tokens, torch.Generator().manual_seed(0))
    reference = run_masker(masker, tokens.float(), torch.Generator().manual_seed(0))
    assert_valid(result, tokens)
    assert result.num_keep == reference.num_keep
    assert (result.scores is None) == (reference.scores is None)


@pytest.mark.parametrize("name", FACTORIES)
def test_masking_under_cpu_bf16_autocast(name: str) -> None:
    masker = FACTORIES[name](0.75, 25)
    tokens = torch.randn(2, 8, 25, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = run_masker(masker, tokens, torch.Generator().manual_seed(0))
    assert_valid(result, tokens)


@pytest.mark.parametrize("name", FACTORIES)
def test_compiles_fullgraph_without_generator(name: str) -> None:
    masker = FACTORIES[name](0.8, 25)
    tokens = torch.randn(2, 6, 25, 8)
    coords = torch.randn(2, 6 * T_PATCH, 25, 3)
    compiled = torch.compile(masker, backend="eager", fullgraph=True)
    result = compiled(tokens, coords=coords, **guidance(masker, tokens))
    assert_valid(result, tokens)


@pytest.mark.parametrize("name", ["random-token", "motion-hide-high", "cross-hacm"])
def test_compiles_with_dynamic_shapes_across_batch_and_frames(name: str) -> None:
    # Regression: an explicit torch.rand(generator=None) broke dynamic-shape compilation.
    masker = FACTORIES[name](0.8, 25)
    compiled = torch.compile(masker, backend="eager", fullgraph=True, dynamic=True)
    for batch, time_patches in [(2, 6), (3, 8), (5, 4)]:
        tokens = torch.randn(batch, time_patches, 25, 8)
        coords = torch.randn(batch, time_patches * T_PATCH, 25, 3)
        assert_valid(compiled(tokens, coords=coords), tokens)


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_mask_ratio_outside_the_open_unit_interval_is_an_error(name: str, ratio: float) -> None:
    with pytest.raises(ValueError, match=r"mask_ratio must be in the open interval \(0, 1\)"):
        FACTORIES[name](ratio, 25)


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((2, 30, 25, 8, 1), r"\(B, Tp, Vp, D\) or flat tokens \(B, L, D\), got 5 dimensions"),
        ((25,), r"\(B, Tp, Vp, D\) or flat tokens \(B, L, D\), got 1 dimensions"),
        ((0, 30, 25, 8), "must not be empty"),
        ((2, 1, 1, 8), "at least 2 tokens"),
    ],
)
def test_bad_token_grids_are_clear_errors(name: str, shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FACTORIES[name](0.5, 25)(torch.zeros(shape))


@pytest.mark.parametrize("name", FACTORIES)
def test_flat_tokens_with_grid_size_give_the_grids_result(name: str) -> None:
    masker = FACTORIES[name](0.7, 12)
    tokens = torch.randn(3, 10, 12, 8)
    coords = torch.randn(3, 10 * T_PATCH, 12, 3)
    extra = guidance(masker, tokens)
    grid = masker(tokens, coords=coords, generator=torch.Generator().manual_seed(5), **extra)
    flat = masker(
        flatten_grid(tokens),
        grid_size=(10, 12),
        coords=coords,
        generator=torch.Generator().manual_seed(5),
        **extra,
    )
    assert flat.grid_size == (10, 12)
    assert torch.equal(flat.mask, grid.mask)
    assert torch.equal(flat.ids_restore, grid.ids_restore)
    for flat_extra, grid_extra in ((flat.scores, grid.scores), (flat.probs, grid.probs)):
        assert (flat_extra is None) == (grid_extra is None)
        if flat_extra is not None:
            assert torch.equal(flat_extra, grid_extra)


@pytest.mark.parametrize("name", [name for name in FACTORIES if name != "random-token"])
def test_flat_tokens_of_an_unknown_grid_are_a_clear_error(name: str) -> None:
    # Without coords nothing shows the grid of flat tokens, and these maskers read its shape.
    with pytest.raises(ValueError, match=r"need grid_size=\(Tp, Vp\) with Tp·Vp = L = 120"):
        FACTORIES[name](0.5, 12)(torch.zeros(2, 120, 8))


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("grid_size", [(7, 12), (0, 12)])
def test_grid_size_that_does_not_fit_flat_tokens_is_a_clear_error(
    name: str, grid_size: tuple[int, int]
) -> None:
    with pytest.raises(ValueError, match=r"must multiply to the L = 120 flat tokens"):
        FACTORIES[name](0.5, 12)(torch.zeros(2, 120, 8), grid_size=grid_size)


@pytest.mark.parametrize("name", FACTORIES)
def test_grid_size_that_contradicts_a_token_grid_is_a_clear_error(name: str) -> None:
    with pytest.raises(ValueError, match=r"grid_size=\(12, 10\) does not match .* \(10, 12\)"):
        FACTORIES[name](0.5, 12)(torch.zeros(2, 10, 12, 8), grid_size=(12, 10))


@pytest.mark.parametrize("name", FACTORIES)
def test_flat_tokens_take_their_grid_from_patchified_coords(name: str) -> None:
    # MAMP passes x (B, L, D) with its patchified x_orig (B, Tp, Vp, t_patch·C) and no grid size.
    masker = FACTORIES[name](0.7, 12)
    tokens = torch.randn(3, 10, 12, 8)
    raw = torch.randn(3, 10 * T_PATCH, 12, 3)
    patchified = patchify(raw, T_PATCH)
    extra = guidance(masker, tokens)
    grid = masker(tokens, coords=raw, generator=torch.Generator().manual_seed(2), **extra)
    flat = masker(
        flatten_grid(tokens),
        coords=patchified,
        generator=torch.Generator().manual_seed(2),
        **extra,
    )
    assert flat.grid_size == (10, 12)
    assert torch.equal(flat.mask, grid.mask)


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("ratio", [0.0, 1.0, 1.5, float("nan")])
def test_a_call_ratio_outside_the_open_unit_interval_is_an_error(name: str, ratio: float) -> None:
    masker = FACTORIES[name](0.5, 12)
    with pytest.raises(ValueError, match=r"mask_ratio must be in the open interval \(0, 1\)"):
        run_masker(masker, torch.randn(2, 10, 12, 8), mask_ratio=ratio)
    with pytest.raises(ValueError, match=r"mask_ratio must be in the open interval \(0, 1\)"):
        masker.mask_ratio = ratio
    assert masker.mask_ratio == 0.5


@pytest.mark.parametrize("name", FACTORIES)
def test_a_call_ratio_overrides_the_maskers_own_for_that_call_only(name: str) -> None:
    masker = FACTORIES[name](0.5, 12)
    tokens = torch.randn(2, 10, 12, 8)
    default = run_masker(masker, tokens, torch.Generator().manual_seed(0))
    override = run_masker(masker, tokens, torch.Generator().manual_seed(0), mask_ratio=0.8)
    again = run_masker(masker, tokens, torch.Generator().manual_seed(0))
    assert override.num_hidden == masker.num_hidden((10, 12), 0.8)
    assert override.num_hidden > default.num_hidden
    assert default.num_hidden == again.num_hidden == masker.num_hidden((10, 12))
    assert masker.mask_ratio == 0.5
    assert_valid(override, tokens)


@pytest.mark.parametrize("name", FACTORIES)
def test_a_call_temperature_overrides_a_score_guided_maskers_own(name: str) -> None:
    masker = FACTORIES[name](0.5, 12)
    tokens = torch.randn(2, 10, 12, 8)
    if not masker.takes_temperature:
        with pytest.raises(ValueError, match=r"takes no temperature, got temperature=0\.5"):
            run_masker(masker, tokens, temperature=0.5)
        return
    default = run_masker(masker, tokens, torch.Generator().manual_seed(0))
    flat = run_masker(masker, tokens, torch.Generator().manual_seed(0), temperature=50.0)
    again = run_masker(masker, tokens, torch.Generator().manual_seed(0))
    assert default.probs is not None
    assert flat.probs is not None
    assert again.probs is not None
    # |logits| ≤ 1/temperature, so within a branch (both branches hold 60 tokens here) no
    # probability exceeds another by more than exp(2/temperature).
    bound = math.exp(2 / 50.0) * (1 + 1e-5)
    assert (flat.probs.amax(dim=1) / flat.probs.amin(dim=1) <= bound).all()
    assert (default.probs.amax(dim=1) / default.probs.amin(dim=1) > bound).all()
    assert torch.equal(default.probs, again.probs)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            run_masker(masker, tokens, temperature=bad)


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("guidance", ["attention", "root_tokens"])
def test_a_guidance_input_the_masker_does_not_read_is_an_error(name: str, guidance: str) -> None:
    masker = FACTORIES[name](0.5, 12)
    if guidance in masker.call_inputs:
        return  # read: the masker's own tests check how
    value = torch.rand(2, 12, 10, 10) if guidance == "attention" else torch.randn(2, 10, 3, 8)
    with pytest.raises(ValueError, match=f"does not read {guidance}="):
        masker(torch.randn(2, 10, 12, 8), **{guidance: value})


@pytest.mark.parametrize("name", FACTORIES)
def test_setting_mask_ratio_changes_later_calls(name: str) -> None:
    masker = FACTORIES[name](0.5, 12)
    tokens = torch.randn(2, 10, 12, 8)
    masker.mask_ratio = 0.8
    assert masker.mask_ratio == 0.8
    result = run_masker(masker, tokens, torch.Generator().manual_seed(0))
    assert result.num_hidden == masker.num_hidden((10, 12), 0.8)
    assert result.num_hidden > masker.num_hidden((10, 12), 0.5)


@pytest.mark.parametrize("name", FACTORIES)
def test_numpy_scalars_are_numbers_and_bools_are_not(name: str) -> None:
    # Ratios from NumPy (an np.float32 config value or array element) work like Python floats.
    tokens = torch.randn(2, 10, 12, 8)
    ratio = np.float32(0.8)
    expected = run_masker(FACTORIES[name](0.5, 12), tokens, torch.Generator().manual_seed(0),
                          mask_ratio=float(ratio))  # fmt: skip
    called = run_masker(FACTORIES[name](0.5, 12), tokens, torch.Generator().manual_seed(0),
                        mask_ratio=ratio)  # type: ignore[arg-type]  # fmt: skip
    assert torch.equal(called.mask, expected.mask)
    built = FACTORIES[name](ratio, 12)  # type: ignore[arg-type]
    assert type(built.mask_ratio) is float
    assert built.mask_ratio == float(ratio)
    for flag in (True, np.bool_(True)):
        with pytest.raises(TypeError, match="mask_ratio must be a number in"):
            run_masker(FACTORIES[name](0.5, 12), tokens, mask_ratio=flag)  # type: ignore[arg-type]


@pytest.mark.parametrize("guidance", ["coords", "attention", "root_tokens", "saliency"])
def test_a_guidance_input_that_is_not_a_tensor_is_a_clear_error(guidance: str) -> None:
    # A NumPy array used to fail inside the masker with an AttributeError about .dim().
    with pytest.raises(TypeError, match=rf"{guidance} must be a torch\.Tensor, got ndarray"):
        MotionAwareMasker(0.5, t_patch=T_PATCH)(
            torch.randn(2, 10, 12, 8), **{guidance: np.zeros((2, 10, 12, 3))}
        )


def test_tokens_must_be_a_tensor() -> None:
    with pytest.raises(TypeError, match=r"tokens must be a torch\.Tensor, got list"):
        RandomMasker(0.5)([[1.0]])  # type: ignore[arg-type]


@pytest.mark.parametrize("name", FACTORIES)
def test_runs_on_device(name: str, device: torch.device) -> None:
    masker = FACTORIES[name](0.9, 25).to(device)
    tokens = torch.randn(4, 30, 25, 32, device=device)
    result = run_masker(masker, tokens, torch.Generator(device=device).manual_seed(0))
    assert result.mask.device.type == device.type
    assert_valid(result, tokens)


def test_sizes_and_joint_indices_must_be_integers_not_truncated_floats() -> None:
    # int() used to truncate these silently: grid_size=(30.9, 25) passed as (30, 25).
    tokens = torch.randn(2, 40, 8)
    with pytest.raises(TypeError, match=r"grid_size\[0\] must be an integer, got 8\.0"):
        RandomMasker(0.5, granularity="joint")(tokens, grid_size=(8.0, 5))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"grid_size must be \(Tp, Vp\), got \(8, 5, 1\)"):
        RandomMasker(0.5, granularity="joint")(tokens, grid_size=(8, 5, 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"root_joints\[0\] must be an integer, got 0\.5"):
        HyperbolicHierarchyMasker(0.5, layout=chain_layout(4), root_joints=(0.5,))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"part_map\['a'\]\[0\] must be an integer, got 1\.5"):
        BodyPartMasker(layout=chain_layout(4), part_map={"a": [1.5], "b": [2]}, num_parts=1)  # type: ignore[list-item]
    assert RandomMasker(0.5, granularity="joint")(tokens, grid_size=(np.int64(8), 5)).grid_size == (
        8,
        5,
    )
