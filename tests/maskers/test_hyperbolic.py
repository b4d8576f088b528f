"""HyperbolicHierarchyMasker: HA-CM's spatial criterion, with the official code's defects fixed."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from pathlib import Path

import geoopt
import numpy as np
import pytest
import torch

from skelmask import _poincare as P
from skelmask.layouts import SkeletonLayout, get_layout
from skelmask.maskers.base import MaskContext, Region
from skelmask.maskers.cross import CrossMasker
from skelmask.maskers.hyperbolic import HyperbolicHierarchyMasker
from skelmask.sampling import num_hidden_tokens
from skelmask.tokens import flatten_grid, gather_tokens, patchify, restore_tokens

NTU_JOINTS = 25

# Most tokens here have the norms of real patch embeddings (4-16), above clip_r, on purpose: the
# masker must stay well-behaved there. The advice that such tokens are clipped is tested below.
pytestmark = pytest.mark.filterwarnings("ignore:HyperbolicHierarchyMasker.*clip_r:UserWarning")


def score(
    masker: HyperbolicHierarchyMasker,
    tokens: torch.Tensor,
    root_tokens: torch.Tensor | None = None,
) -> torch.Tensor:
    return masker.score(MaskContext(tokens, root_tokens=root_tokens))


def _tokens(
    batch: int = 3,
    time_patches: int = 6,
    joints: int = NTU_JOINTS,
    width: int = 64,
    norm: float = 8.0,
    seed: int = 0,
) -> torch.Tensor:
    """Tokens with norms around ``norm`` (typical patch embeddings have norms 4-16)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, time_patches, joints, width, generator=g)
    jitter = 1 + 0.1 * torch.randn(batch, time_patches, joints, 1, generator=g)
    return x / x.norm(dim=-1, keepdim=True) * norm * jitter


def _total_variation_from_uniform(probs: torch.Tensor) -> torch.Tensor:
    return 0.5 * (probs - 1.0 / probs.shape[1]).abs().sum(dim=1)


def _reordering_tolerance(masker: HyperbolicHierarchyMasker, tokens: torch.Tensor) -> float:
    """How far two float32 evaluations of ``masker.score`` in different orders may drift apart.

    A raw score adds ``V`` distances (one the zero self-distance) and the root term, all
    non-negative, up to at most ``S``; in float32 these ``V`` additions are within ``V·u·S`` of the
    exact sum in any order (``u = 2⁻²⁴``), so two orders differ by at most ``E = 2V·u·S`` (≈ 6e-4
    for ``S ≈ 200``). ``E`` also covers the rare last-bit flip of a distance whose Gram entry was
    accumulated in another order (as MKL's generic code path does): near the boundary artanh
    amplifies it to ``2u·cosh²(d/2) ≈ 2e-4``. The patch mean is off by at most ``2E`` (the ``E``
    above plus its own summation), so centred scores and their root mean square ``σ`` are off by
    at most ``3E``, and the standardised scores ``s`` by at most ``3E/σ · (1 + |s|)``:
    ``atol = rtol = 3E/σ``.
    """
    raw = masker.hierarchy_scores(tokens)
    unit_roundoff = torch.finfo(torch.float32).eps / 2
    sum_error = 2 * raw.shape[-1] * unit_roundoff * raw.max()
    return float(3 * sum_error / raw.std(dim=-1, unbiased=False).min())


# --- the masker contract -----------------------------------------------------------------------


def test_keeps_exactly_k_tokens_per_sample() -> None:
    tokens = _tokens()
    result = HyperbolicHierarchyMasker(mask_ratio=0.9)(tokens)
    num_tokens = 6 * NTU_JOINTS
    num_keep = num_tokens - num_hidden_tokens(num_tokens, 0.9)
    assert result.ids_keep.shape == (3, num_keep)
    assert ((~result.mask).sum(dim=1) == num_keep).all()
    assert result.scores is not None
    assert result.scores.shape == (3, num_tokens)
    assert result.scores.dtype == torch.float32


def test_every_visible_token_is_restored_to_its_own_slot() -> None:
    tokens = _tokens(width=16)
    result = HyperbolicHierarchyMasker(mask_ratio=0.75)(tokens)
    flat = flatten_grid(tokens)
    mask_token = torch.full((16,), 1234.0)
    restored = restore_tokens(gather_tokens(flat, result.ids_keep), result.ids_restore, mask_token)
    assert torch.equal(restored[~result.mask], flat[~result.mask])
    assert (restored[result.mask] == 1234.0).all()


def test_generator_seed_controls_the_mask() -> None:
    masker = HyperbolicHierarchyMasker(mask_ratio=0.9)
    tokens = _tokens()
    first = masker(tokens, generator=torch.Generator().manual_seed(7)).mask
    again = masker(tokens, generator=torch.Generator().manual_seed(7)).mask
    other = masker(tokens, generator=torch.Generator().manual_seed(8)).mask
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_scores_carry_no_gradient() -> None:
    tokens = _tokens().requires_grad_(True)
    result = HyperbolicHierarchyMasker()(tokens)
    assert result.scores is not None
    assert not result.scores.requires_grad


# --- the score: formula and order --------------------------------------------------------------


def test_hierarchy_scores_match_a_geoopt_reference() -> None:
    root_joints = (0, 1, 20)
    masker = HyperbolicHierarchyMasker(
        root_joints=root_joints, curvature=0.7, clip_r=2.0, root_weight=3.0
    )
    tokens = _tokens(batch=2, time_patches=4, width=32, norm=1.5)
    ball = geoopt.PoincareBall(c=0.7)
    exact = tokens.double()  # a float64 reference leaves only our float32 rounding to bound
    norms = exact.norm(dim=-1, keepdim=True)
    points = ball.expmap0(exact * (2.0 / norms).clamp(max=1.0))  # (B, Tp, V, D)
    pairwise = ball.dist(points.unsqueeze(-2), points.unsqueeze(-3))  # (B, Tp, V, V)
    roots = ball.weighted_midpoint(points[:, :, root_joints], reducedim=[2], dim=-1)
    to_root = ball.dist(points, roots.unsqueeze(2))  # (B, Tp, V)
    expected = pairwise.sum(dim=-1) + 3.0 * to_root
    # A float32 distance d = (2/√c)·artanh(a) gets its argument a to a few (≤ 4) units of roundoff
    # u, which artanh' = cosh²(√c·d/2) amplifies (≤ 80 here). A score adds 24 such distances and 3
    # times a root distance, and its float32 sum is off by at most 24u relative.
    u = torch.finfo(torch.float32).eps / 2
    sqrt_c = 0.7**0.5
    distance_error = 4 * u * (2 / sqrt_c) * torch.cosh(sqrt_c * pairwise.max() / 2) ** 2
    scores = masker.hierarchy_scores(tokens).double()
    torch.testing.assert_close(scores, expected, rtol=24 * u, atol=float(27 * distance_error))


def test_scores_follow_a_permutation_of_time_patches() -> None:
    masker = HyperbolicHierarchyMasker()
    tokens = _tokens(time_patches=8)
    order = torch.randperm(8, generator=torch.Generator().manual_seed(1))
    scores = score(masker, tokens)
    tolerance = _reordering_tolerance(masker, tokens)
    torch.testing.assert_close(
        score(masker, tokens[:, order]), scores[:, order], rtol=tolerance, atol=tolerance
    )


def test_scores_follow_a_permutation_of_non_root_joints() -> None:
    masker = HyperbolicHierarchyMasker()
    layout = get_layout("nturgb+d")
    others = torch.tensor(layout.complement(masker.root_joints))
    order = torch.arange(NTU_JOINTS)
    order[others] = others[torch.randperm(len(others), generator=torch.Generator().manual_seed(2))]
    tokens = _tokens()
    scores = score(masker, tokens)
    tolerance = _reordering_tolerance(masker, tokens)  # ≈ 4e-3; a misplaced joint is off by ~1
    torch.testing.assert_close(
        score(masker, tokens[:, :, order]), scores[:, :, order], rtol=tolerance, atol=tolerance
    )


def test_flat_scores_are_time_major() -> None:
    """An isolated token gets the top score at its own flat index ``t·Vp + v`` (HA-CM bug B5)."""
    masker = HyperbolicHierarchyMasker(mask_ratio=0.5)
    tokens = _tokens(batch=2, time_patches=5, norm=0.5)
    tokens[0, 3, 17] = 1.0  # far from the other (small) tokens
    tokens[1, 1, 2] = -1.0
    result = masker(tokens)
    assert result.scores is not None
    assert result.scores.argmax(dim=1).tolist() == [3 * NTU_JOINTS + 17, 1 * NTU_JOINTS + 2]


def test_root_weight_adds_the_distance_to_the_root_point() -> None:
    tokens = _tokens(norm=1.0)
    without = HyperbolicHierarchyMasker(root_weight=0.0).hierarchy_scores(tokens)
    with_root = HyperbolicHierarchyMasker(root_weight=2.0).hierarchy_scores(tokens)
    masker = HyperbolicHierarchyMasker()
    points = masker.to_ball(tokens)
    roots = P.midpoint(points[:, :, list(masker.root_joints)], masker.curvature)
    to_root = P.dist(points, roots.unsqueeze(2), masker.curvature)
    torch.testing.assert_close(with_root - without, 2.0 * to_root, rtol=1e-4, atol=1e-4)


def test_depth_prior_is_added_from_the_layout() -> None:
    layout = get_layout("nturgb+d")
    tokens = torch.ones(1, 2, NTU_JOINTS, 8)  # identical tokens: no hyperbolic signal
    scores = score(HyperbolicHierarchyMasker(depth_weight=2.0), tokens)
    expected = 2.0 * torch.tensor(layout.depth, dtype=torch.float32) / layout.max_depth
    torch.testing.assert_close(scores, expected.expand(1, 2, -1))


def test_default_root_joints() -> None:
    assert HyperbolicHierarchyMasker().root_joints == get_layout("nturgb+d").subset("hacm_root")
    msr = get_layout("msr-action3d")
    assert HyperbolicHierarchyMasker(layout="msr-action3d").root_joints == (msr.root,)
    assert HyperbolicHierarchyMasker(layout=msr, root_joints="trunk").root_joints == (2, 3, 6, 19)
    toy = SkeletonLayout.from_parents([-1, 0, 1, 1], name="toy")
    masker = HyperbolicHierarchyMasker(mask_ratio=0.5, layout=toy, root_joints=[0, 1])
    assert masker(torch.randn(2, 3, 4, 8)).num_keep == 6


# --- saturation: the scores must really spread -------------------------------------------------


def test_large_norm_tokens_give_spread_out_keep_probabilities() -> None:
    tokens = _tokens(batch=4, time_patches=12, width=256, norm=16.0)
    result = HyperbolicHierarchyMasker(temperature=0.9)(tokens)
    assert result.probs is not None
    ratio = result.probs.amax(dim=1) / result.probs.amin(dim=1)
    # Uniform random masking has ratio 1 and distance 0; exp(2/0.9) ≈ 9.2 is the sampler's cap.
    assert (ratio > 3.0).all(), ratio
    assert (_total_variation_from_uniform(result.probs) > 0.08).all()
    # Raw distance sums share a large offset: the shared sampler's tau·max normalisation then
    # gives almost uniform probabilities, which is why the masker standardises by default.
    raw = HyperbolicHierarchyMasker(standardize=False)(tokens)
    assert raw.probs is not None
    assert (raw.probs.amax(dim=1) / raw.probs.amin(dim=1) < 1.1).all()


def test_high_score_tokens_stay_visible_more_often() -> None:
    draws = 600
    sample = _tokens(batch=1, time_patches=4, width=256, norm=16.0, seed=3)
    tokens = sample.expand(draws, -1, -1, -1)
    masker = HyperbolicHierarchyMasker(mask_ratio=0.9)
    result = masker(tokens, generator=torch.Generator().manual_seed(0))
    assert result.scores is not None
    keep_rate = (~result.mask).float().mean(dim=0)  # (L,), over independent Gumbel draws
    order = result.scores[0].argsort(descending=True)
    fifth = order.numel() // 5
    top, bottom = keep_rate[order[:fifth]].mean(), keep_rate[order[-fifth:]].mean()
    assert top > 2.0 * bottom, (top, bottom)
    flipped = HyperbolicHierarchyMasker(mask_ratio=0.9, direction="hide_high")(
        tokens, generator=torch.Generator().manual_seed(0)
    )
    flipped_rate = (~flipped.mask).float().mean(dim=0)
    assert flipped_rate[order[:fifth]].mean() < flipped_rate[order[-fifth:]].mean()


# --- precision ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_inputs_give_finite_scores_and_a_valid_mask(dtype: torch.dtype) -> None:
    tokens = _tokens(width=256, norm=16.0).to(dtype)
    result = HyperbolicHierarchyMasker()(tokens)
    assert result.scores is not None
    assert result.probs is not None
    assert torch.isfinite(result.scores).all()
    assert torch.isfinite(result.probs).all()
    assert ((~result.mask).sum(dim=1) == result.num_keep).all()


def test_cpu_bf16_autocast_region() -> None:
    masker = HyperbolicHierarchyMasker()
    tokens = _tokens(width=256, norm=16.0)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        result = masker(tokens)
        points = masker.to_ball(tokens)
    assert result.scores is not None
    torch.testing.assert_close(result.scores, masker(tokens).scores)
    assert points.dtype == torch.float32
    assert torch.isfinite(points).all()


def test_module_cast_to_bf16_keeps_float32_curvature() -> None:
    masker = HyperbolicHierarchyMasker(curvature=1.0, learnable_curvature=True)
    masker.to(torch.bfloat16)
    assert masker.curvature.dtype == torch.float32
    assert abs(masker.curvature.item() - 1.0) < 1e-2
    result = masker(_tokens().to(torch.bfloat16))
    assert result.scores is not None
    assert torch.isfinite(result.scores).all()


# --- arguments ---------------------------------------------------------------------------------


def test_wrong_joint_count_is_a_clear_error() -> None:
    masker = HyperbolicHierarchyMasker(layout="nturgb+d")
    with pytest.raises(ValueError, match=r"expected Vp = 25.*got Vp = 18"):
        masker(torch.randn(2, 4, 18, 8))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"curvature": 0.0}, "curvature"),
        ({"curvature": -1.0}, "curvature"),
        ({"clip_r": 0.0}, "clip_r"),
        ({"clip_r": -2.0}, "clip_r"),
        ({"root_joints": "no_such_subset"}, "no_such_subset"),
        ({"root_joints": [0, 99]}, "99"),
        ({"root_joints": []}, "at least one"),
        ({"root_joints": [0, 0]}, "repeats"),
        ({"root_weight": -0.5}, "root_weight"),
        ({"depth_weight": float("nan")}, "depth_weight"),
        ({"temperature": 0.0}, "temperature"),
        ({"mask_ratio": 1.0}, "mask_ratio"),
        ({"direction": "sideways"}, "direction"),
    ],
)
def test_bad_arguments_are_value_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HyperbolicHierarchyMasker(**kwargs)  # type: ignore[arg-type]


# --- compile, parameters, state ----------------------------------------------------------------


@pytest.mark.parametrize("learnable", [False, True])
def test_compiles_with_fullgraph(learnable: bool) -> None:
    masker = HyperbolicHierarchyMasker(mask_ratio=0.9, learnable_curvature=learnable)
    compiled = torch.compile(masker, backend="eager", fullgraph=True)
    tokens = _tokens()
    result = compiled(tokens)
    assert ((~result.mask).sum(dim=1) == result.num_keep).all()
    assert result.scores is not None
    torch.testing.assert_close(result.scores, masker(tokens).scores)


def test_fixed_curvature_adds_nothing_to_the_hosts_state_dict() -> None:
    # A host model's strict load of a checkpoint saved before the masker was added must work.
    class Host(torch.nn.Module):
        def __init__(self, masker: torch.nn.Module | None) -> None:
            super().__init__()
            self.encoder = torch.nn.Linear(4, 4)
            self.masker = masker

    masker = HyperbolicHierarchyMasker(curvature=0.6)
    assert list(masker.parameters()) == []
    assert masker.state_dict() == {}
    assert masker.embedding is None
    torch.testing.assert_close(masker.curvature, torch.tensor(0.6))
    before = Host(None).state_dict()
    host = Host(masker)
    assert host.state_dict().keys() == before.keys()
    host.load_state_dict(before, strict=True)
    # The curvature is configuration: it follows the module's device, and no checkpoint sets it.
    assert "fixed_curvature" in dict(masker.named_buffers())


def test_learnable_curvature_is_a_parameter_and_state_dict_round_trips() -> None:
    masker = HyperbolicHierarchyMasker(curvature=0.6, learnable_curvature=True)
    parameters = dict(masker.named_parameters())
    assert list(parameters) == ["embedding.ball.isp_c"]
    assert parameters["embedding.ball.isp_c"].requires_grad
    assert list(masker.state_dict()) == ["embedding.ball.isp_c"]
    buffer = io.BytesIO()
    torch.save(masker.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    fresh = HyperbolicHierarchyMasker(curvature=2.0, learnable_curvature=True)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.curvature, torch.tensor(0.6))


def test_importing_skelmask_does_not_import_geoopt() -> None:
    code = (
        "import sys, skelmask, skelmask.maskers.hyperbolic\n"
        "assert 'geoopt' not in sys.modules, 'geoopt imported eagerly'\n"
        "skelmask.maskers.hyperbolic.HyperbolicHierarchyMasker()\n"
        "assert 'geoopt' not in sys.modules, 'a fixed curvature needs no geoopt ball'\n"
        "skelmask.maskers.hyperbolic.HyperbolicHierarchyMasker(learnable_curvature=True)\n"
        "assert 'geoopt' in sys.modules\n"
    )
    # -W error: building the masker must not leak geoopt's torch.jit.script deprecation warning.
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True)


# --- devices and real data ---------------------------------------------------------------------


def test_valid_mask_on_device(device: torch.device) -> None:
    masker = HyperbolicHierarchyMasker(mask_ratio=0.9).to(device)
    tokens = _tokens(width=128, norm=12.0).to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    result = masker(tokens, generator=generator)
    assert result.mask.device.type == device.type
    assert result.scores is not None
    assert torch.isfinite(result.scores).all()
    assert ((~result.mask).sum(dim=1) == result.num_keep).all()
    # Another device accumulates the Gram matrix and the sums in another order.
    tolerance = _reordering_tolerance(masker.cpu(), tokens.cpu())
    expected = masker(tokens.cpu()).scores
    torch.testing.assert_close(result.scores.cpu(), expected, rtol=tolerance, atol=tolerance)


def test_msr_action3d_real_skeletons(shared_data: Path) -> None:
    folder = shared_data / "msr-action3d" / "MSRAction3DSkeletonReal3D"
    files = [folder / f"a{a:02d}_s01_e01_skeleton3D.txt" for a in (1, 5, 10, 15, 20)]
    if not all(f.is_file() for f in files):
        pytest.skip(f"MSR Action3D files not found in {folder}")
    layout = get_layout("msr-action3d")
    hip = layout.joint_index("hip_center")
    embed = torch.randn(12, 64, generator=torch.Generator().manual_seed(0)) / 12**0.5
    masker = HyperbolicHierarchyMasker(mask_ratio=0.9, layout=layout, root_joints="trunk")
    extremities = [layout.joint_index(n) for n in ("left_hand", "right_hand", "left_foot")]
    extremities.append(layout.joint_index("right_foot"))
    trunk = [layout.joint_index(n) for n in ("neck", "spine", "hip_center")]
    for path in files:
        xyz = np.loadtxt(path).reshape(-1, 20, 4)[..., :3]
        frames = xyz.shape[0] // 4 * 4
        coords = torch.tensor(xyz[:frames], dtype=torch.float32)
        coords = coords - coords[:, hip : hip + 1]  # body-centred, as skeleton pipelines do
        tokens = patchify(coords.unsqueeze(0), t_patch=4) @ embed  # (1, Tp, 20, 64)
        result = masker(tokens, generator=torch.Generator().manual_seed(0))
        assert result.scores is not None
        assert result.probs is not None
        assert torch.isfinite(result.scores).all()
        assert (result.probs.amax() / result.probs.amin()) > 2.0
        assert _total_variation_from_uniform(result.probs).item() > 0.05
        # Extremities lie far from the body's centre, i.e. low in the hierarchy (leaf-like):
        # they score above the trunk and so stay visible more often.
        grid = result.scores.view(-1, 20)
        assert grid[:, extremities].mean() > grid[:, trunk].mean(), path.name


def test_region_hook_hides_only_inside_the_region() -> None:
    """CrossMasker runs the spatial criterion over the odd time patches only (HA-CM)."""
    masker = HyperbolicHierarchyMasker()
    tokens = _tokens(time_patches=6)
    odd = torch.zeros(6, NTU_JOINTS, dtype=torch.bool)
    odd[1::2] = True
    region = odd.flatten()
    context = MaskContext(tokens, region=Region(mask=region, size=75, time_patches=(1, 3, 5)))
    decision = masker.decide(context, 60)
    assert (decision.hidden.sum(dim=1) == 60).all()
    assert not decision.hidden[:, ~region].any()
    assert decision.probs is not None
    assert (decision.probs[:, ~region] == 0).all()


# --- roots outside the grid (HA-CM's 18 token joints and 7 torso roots) -------------------------


def test_root_tokens_equal_to_the_in_grid_roots_give_the_same_scores() -> None:
    masker = HyperbolicHierarchyMasker(root_weight=5.0)
    tokens = _tokens(norm=1.0)
    roots = tokens[:, :, list(masker.root_joints)]
    torch.testing.assert_close(
        masker.hierarchy_scores(tokens, root_tokens=roots), masker.hierarchy_scores(tokens)
    )
    # Other root tokens move the root point, hence the root term.
    moved = masker.hierarchy_scores(tokens, root_tokens=roots.flip(0))
    assert not torch.allclose(moved, masker.hierarchy_scores(tokens))


def test_root_tokens_outside_the_grid_set_the_root_point() -> None:
    layout = get_layout("nturgb+d").select("hacm_tokens")
    masker = HyperbolicHierarchyMasker(layout=layout, root_weight=2.0)
    grid = _tokens(batch=2, time_patches=4, joints=18, norm=1.0)
    torso = _tokens(batch=2, time_patches=4, joints=7, norm=1.0, seed=1)
    without = HyperbolicHierarchyMasker(layout=layout, root_weight=0.0)
    points, c = masker.to_ball(grid), masker.curvature
    root = P.midpoint(masker.to_ball(torso), c)  # (B, Tp, D)
    expected = without.hierarchy_scores(grid) + 2.0 * P.dist(points, root.unsqueeze(2), c)
    torch.testing.assert_close(
        masker.hierarchy_scores(grid, root_tokens=torso), expected, rtol=1e-5, atol=1e-4
    )


def test_hacm_shaped_call_masks_an_18_joint_grid_with_external_roots() -> None:
    layout = get_layout("nturgb+d").select("hacm_tokens")
    grid = _tokens(batch=2, time_patches=24, joints=18, width=32, norm=1.0)
    torso = _tokens(batch=2, time_patches=24, joints=7, width=32, norm=1.0, seed=1)
    spatial = HyperbolicHierarchyMasker(layout=layout)
    assert spatial(grid, root_tokens=torso).num_keep == 432 - num_hidden_tokens(432, 0.9)
    cross = CrossMasker.hacm(spatial)
    generator = torch.Generator().manual_seed(0)
    result = cross(grid, root_tokens=torso, generator=generator)
    assert result.num_keep == 43
    # The torso roots reach the odd-patch branch: other roots give other scores there.
    other = cross(grid, root_tokens=torso.flip(0), generator=torch.Generator().manual_seed(0))
    assert result.scores is not None
    assert other.scores is not None
    odd = result.scores.view(2, 24, 18)[:, 1::2]
    assert not torch.allclose(odd, other.scores.view(2, 24, 18)[:, 1::2])
    # Flat tokens (B, L, D) take their grid from the root tokens' (B, Tp, R, D).
    flat = spatial(
        flatten_grid(grid), root_tokens=torso, generator=torch.Generator().manual_seed(3)
    )
    assert flat.grid_size == (24, 18)
    again = spatial(grid, root_tokens=torso, generator=torch.Generator().manual_seed(3))
    assert torch.equal(flat.mask, again.mask)


@pytest.mark.parametrize(
    "shape",
    [(2, 4, 7), (2, 5, 7, 16), (3, 4, 7, 16), (2, 4, 0, 16), (2, 4, 7, 8)],
)
def test_root_tokens_that_do_not_fit_the_grid_are_a_clear_error(shape: tuple[int, ...]) -> None:
    masker = HyperbolicHierarchyMasker(layout=get_layout("nturgb+d").select("hacm_tokens"))
    with pytest.raises(ValueError, match=r"root_tokens must have shape \(B, Tp, R, D\) = \(2, 4"):
        masker(torch.randn(2, 4, 18, 16) * 0.1, root_tokens=torch.zeros(shape))


def test_root_tokens_to_a_masker_that_does_not_read_them_is_an_error() -> None:
    from skelmask.maskers.random import RandomMasker

    with pytest.raises(ValueError, match="RandomMasker does not read root_tokens="):
        RandomMasker()(torch.randn(2, 4, 18, 16), root_tokens=torch.randn(2, 4, 7, 16))


# --- token scale -------------------------------------------------------------------------------


@pytest.mark.filterwarnings("default")
def test_warns_once_when_most_tokens_are_clipped() -> None:
    large = _tokens(norm=8.0)  # every token longer than clip_r = 2.3
    small = _tokens(norm=1.0)
    masker = HyperbolicHierarchyMasker()
    assert masker.clipped_share(large) == 1.0
    assert masker.clipped_share(small) == 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        masker(large)
        masker(large)
    clipped = [w for w in caught if "clip_r" in str(w.message)]
    assert len(clipped) == 1
    assert clipped[0].category is UserWarning
    assert "100% of the tokens are longer than clip_r=2.3" in str(clipped[0].message)
    # The warning points at the caller's line, not at skelmask's internals.
    assert clipped[0].filename == __file__
    # Also from inside a CrossMasker, a few frames deeper.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CrossMasker.hacm(HyperbolicHierarchyMasker())(large)
    clipped = [w for w in caught if "clip_r" in str(w.message)]
    assert len(clipped) == 1
    assert clipped[0].filename == __file__
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        HyperbolicHierarchyMasker()(small)
        HyperbolicHierarchyMasker(clip_r=None)(large)
    assert not [w for w in caught if "clip_r" in str(w.message)]
