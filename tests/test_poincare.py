"""The branch-free Poincaré-ball functions agree with geoopt and stay finite."""

from __future__ import annotations

import geoopt
import pytest
import torch

from skelmask import _poincare as P
from skelmask.poincare import DEFAULT_CLIP_R, PoincareEmbedding

CURVATURES = [0.5, 1.0, 2.0]


def _tangents(shape: tuple[int, ...], c: float, seed: int, max_scaled_norm: float = 1.2):
    """Tangent vectors with sqrt(c)·‖u‖ ≤ max_scaled_norm: images stay away from the boundary."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(shape, generator=g)
    radius = torch.rand((*shape[:-1], 1), generator=g) * max_scaled_norm / c**0.5
    return u / u.norm(dim=-1, keepdim=True) * radius


def _points(shape: tuple[int, ...], c: float, seed: int) -> torch.Tensor:
    return geoopt.PoincareBall(c=c).expmap0(_tangents(shape, c, seed))


def _assert_rel_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-5) -> None:
    scale = expected.abs().max().clamp_min(1e-6)
    assert (actual - expected).abs().max() <= rtol * scale, (actual - expected).abs().max()


@pytest.mark.parametrize("c", CURVATURES)
def test_expmap0_matches_geoopt(c: float) -> None:
    u = _tangents((6, 5, 16), c, seed=0)
    _assert_rel_close(P.expmap0(u, torch.tensor(c)), geoopt.PoincareBall(c=c).expmap0(u))


@pytest.mark.parametrize("c", CURVATURES)
def test_expmap0_clip_shortens_long_tangents_only(c: float) -> None:
    u = torch.randn(32, 64) * 8
    u[0] *= 1e-3
    clip_r = 1.5 / c**0.5
    norms = u.norm(dim=-1, keepdim=True)
    clipped = u * (clip_r / norms).clamp(max=1.0)
    expected = geoopt.PoincareBall(c=c).expmap0(clipped)
    _assert_rel_close(P.expmap0(u, torch.tensor(c), clip_r=clip_r), expected)
    # Clipped images keep a margin from the boundary instead of all sitting on it.
    radius = P.expmap0(u, torch.tensor(c), clip_r=clip_r).norm(dim=-1) * c**0.5
    assert radius.max() <= torch.tanh(torch.tensor(1.5)) + 1e-6


@pytest.mark.parametrize("c", CURVATURES)
def test_project_matches_geoopt(c: float) -> None:
    x = torch.randn(10, 8) * torch.logspace(-2, 1, 10).unsqueeze(-1)
    projected = P.project(x, torch.tensor(c))
    _assert_rel_close(projected, geoopt.PoincareBall(c=c).projx(x))
    assert (projected.norm(dim=-1) * c**0.5 <= 1 - 4e-3 + 1e-6).all()


@pytest.mark.parametrize("c", CURVATURES)
def test_mobius_add_matches_geoopt(c: float) -> None:
    x = _points((6, 5, 16), c, seed=1)
    y = _points((6, 5, 16), c, seed=2)
    _assert_rel_close(
        P.mobius_add(x, y, torch.tensor(c)), geoopt.PoincareBall(c=c).mobius_add(x, y)
    )


@pytest.mark.parametrize("c", CURVATURES)
def test_mobius_scalar_mul_matches_geoopt(c: float) -> None:
    x = _points((6, 16), c, seed=3)
    r = torch.rand(6, 1) * 2
    expected = geoopt.PoincareBall(c=c).mobius_scalar_mul(r, x)
    _assert_rel_close(P.mobius_scalar_mul(r, x, torch.tensor(c)), expected)


@pytest.mark.parametrize("c", CURVATURES)
@pytest.mark.parametrize("keepdim", [False, True])
def test_dist_and_dist0_match_geoopt(c: float, keepdim: bool) -> None:
    ball = geoopt.PoincareBall(c=c)
    x = _points((6, 5, 16), c, seed=4)
    y = _points((6, 5, 16), c, seed=5)
    curvature = torch.tensor(c)
    _assert_rel_close(P.dist(x, y, curvature, keepdim), ball.dist(x, y, keepdim=keepdim))
    _assert_rel_close(P.dist0(x, curvature, keepdim), ball.dist0(x, keepdim=keepdim))


@pytest.mark.parametrize("c", CURVATURES)
def test_pairwise_dist_matches_geoopt(c: float) -> None:
    x = _points((3, 7, 25, 32), c, seed=6)
    expected = geoopt.PoincareBall(c=c).dist(x.unsqueeze(-2), x.unsqueeze(-3))
    actual = P.pairwise_dist(x, torch.tensor(c))
    _assert_rel_close(actual, expected)
    # Symmetric to that accuracy, not bitwise: a BLAS may accumulate the Gram entries x_i·x_j and
    # x_j·x_i in different orders (MKL's generic code path does, by ~1 ulp).
    _assert_rel_close(actual, actual.transpose(-1, -2))
    assert (actual.diagonal(dim1=-2, dim2=-1) == 0).all()


@pytest.mark.parametrize("c", CURVATURES)
def test_midpoint_matches_geoopt(c: float) -> None:
    ball = geoopt.PoincareBall(c=c)
    x = _points((4, 7, 16), c, seed=7)
    weights = torch.rand(4, 7)
    curvature = torch.tensor(c)
    _assert_rel_close(P.midpoint(x, curvature), ball.weighted_midpoint(x, reducedim=[-2], dim=-1))
    _assert_rel_close(
        P.midpoint(x, curvature, weights),
        ball.weighted_midpoint(x, weights, reducedim=[-2], dim=-1),
    )


@pytest.mark.parametrize("c", CURVATURES)
def test_midpoint_is_a_hyperbolic_mean(c: float) -> None:
    curvature = torch.tensor(c)
    x = _points((5, 1, 16), c, seed=8)
    torch.testing.assert_close(P.midpoint(x, curvature), x[:, 0], rtol=1e-5, atol=1e-6)
    pair = torch.cat([x, -x], dim=1)
    assert P.midpoint(pair, curvature).abs().max() < 1e-6
    # Near-boundary points: the mean stays strictly inside the ball.
    edge = P.expmap0(torch.randn(5, 9, 16) * 50, curvature)
    assert (P.midpoint(edge, curvature).norm(dim=-1) * c**0.5 < 1).all()
    # It is not the Euclidean mean: two points on a diameter, one near the edge.
    a = torch.tensor([[0.9, 0.0], [0.0, 0.0]]) / c**0.5
    euclidean = a.mean(dim=0)
    hyperbolic = P.midpoint(a, curvature)
    d_a = P.dist(hyperbolic, a[0], curvature)
    d_b = P.dist(hyperbolic, a[1], curvature)
    torch.testing.assert_close(d_a, d_b, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(hyperbolic, euclidean, atol=1e-2)


def test_dist_gradient_is_finite_at_zero_distance() -> None:
    x = _points((4, 8), 1.0, seed=9).requires_grad_(True)
    P.dist(x, x, torch.tensor(1.0)).sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()


def test_pairwise_dist_gradient_is_finite() -> None:
    u = torch.randn(2, 6, 8, requires_grad=True)
    points = P.expmap0(u, torch.tensor(1.0), clip_r=2.0)
    P.pairwise_dist(points, torch.tensor(1.0)).sum().backward()
    assert u.grad is not None
    assert torch.isfinite(u.grad).all()


def test_expmap0_gradient_at_zero_is_identity() -> None:
    u = torch.zeros(3, 8, requires_grad=True)
    P.expmap0(u, torch.tensor(1.0), clip_r=2.3).sum().backward()
    assert u.grad is not None
    torch.testing.assert_close(u.grad, torch.ones(3, 8))


def test_artanh_is_finite_everywhere() -> None:
    assert torch.isfinite(P.artanh(torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]))).all()


def test_functions_compile_with_fullgraph() -> None:
    def pipeline(u: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        points = P.expmap0(u, c, clip_r=2.3)
        root = P.midpoint(points[:, :3], c)
        return (
            P.pairwise_dist(points, c).sum(-1)
            + P.dist(points, root.unsqueeze(1), c)
            + P.dist0(P.mobius_add(points, -points, c), c)
        )

    u = torch.randn(2, 10, 16) * 4
    c = torch.tensor(1.0)
    compiled = torch.compile(pipeline, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(u, c), pipeline(u, c))


def _embeddings(width: int, norm: float, seed: int = 0) -> torch.Tensor:
    """``(3, 6, 25, width)`` tokens with norms around ``norm`` (patch embeddings have 4-16)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 6, 25, width, generator=g)
    jitter = 1 + 0.1 * torch.randn(3, 6, 25, 1, generator=g)
    return x / x.norm(dim=-1, keepdim=True) * norm * jitter


def test_poincare_embedding_clipping_keeps_points_off_the_boundary() -> None:
    points = PoincareEmbedding(clip_r=DEFAULT_CLIP_R)(_embeddings(width=256, norm=16.0))
    assert points.norm(dim=-1).max() <= torch.tanh(torch.tensor(DEFAULT_CLIP_R)) + 1e-6
    assert points.norm(dim=-1).max() < 1 - 4e-3 - 1e-3


def test_poincare_embedding_gradient_is_finite_including_zero() -> None:
    embed = PoincareEmbedding(learnable_curvature=True)
    tokens = _embeddings(width=32, norm=4.0)
    tokens[0, 0, 0] = 0.0
    tokens.requires_grad_(True)
    points = embed(tokens)
    P.dist0(points, embed.curvature).sum().backward()
    assert tokens.grad is not None
    assert torch.isfinite(tokens.grad).all()
    isp_c = embed.ball.isp_c
    assert isp_c.grad is not None
    assert torch.isfinite(isp_c.grad).all()


def test_poincare_embedding_matches_clipped_geoopt_expmap0() -> None:
    tokens = _embeddings(width=32, norm=4.0)
    points = PoincareEmbedding(curvature=0.5, clip_r=1.0)(tokens)
    clipped = tokens * (1.0 / tokens.norm(dim=-1, keepdim=True)).clamp(max=1.0)
    expected = geoopt.PoincareBall(c=0.5).expmap0(clipped)
    torch.testing.assert_close(points, expected, rtol=1e-5, atol=1e-6)


def test_poincare_embedding_curvature_is_exact_and_float32_after_a_cast() -> None:
    embed = PoincareEmbedding(curvature=0.6, learnable_curvature=False)
    torch.testing.assert_close(embed.curvature, torch.tensor(0.6))
    assert not embed.ball.isp_c.requires_grad
    embed.to(torch.bfloat16)
    assert embed.curvature.dtype == torch.float32
    assert embed(torch.randn(2, 8, dtype=torch.bfloat16)).dtype == torch.float32
    with pytest.raises(ValueError, match="curvature must be a finite number > 0"):
        PoincareEmbedding(curvature=0.0)
    with pytest.raises(ValueError, match="clip_r must be a finite number > 0"):
        PoincareEmbedding(clip_r=-1.0)


def test_pairwise_distances_of_identical_and_close_points_do_not_cancel() -> None:
    # Regression: the Gram form ‖x‖² + ‖y‖² − 2x·y left identical tokens up to 0.018 apart under
    # MKL's generic code path and gave close points ~180 % error.
    c = torch.tensor(1.0)
    base = P.expmap0(torch.randn(4, 16) * 0.5, c)
    points = torch.cat([base, base[:2], base[:2] * (1 + 1e-4)])  # duplicates and near-duplicates
    distances = P.pairwise_dist(points, c)
    # Identical points: only the floor that keeps the gradient finite separates them (~2e-6).
    assert float(distances[4, 0]) < 1e-5
    assert float(distances[5, 1]) < 1e-5
    exact = P.pairwise_dist(points.double(), c.double())
    # Float32 coordinate differences of ~1e-5 are exact to ~1e-3 relative after the subtraction
    # (one rounding of numbers of size ~0.5, u·0.5 ≈ 3e-8, against differences of ~3e-5).
    torch.testing.assert_close(distances[6:, :2].double(), exact[6:, :2], rtol=5e-3, atol=1e-7)
