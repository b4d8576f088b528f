"""ScaledCosineError against hand-written maths, its gradients and its errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skelmask.losses.cosine import ScaledCosineError


def reference(pred: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-row ``(1 − p·t / (|p|·|t|))^β`` in float64."""
    p, t = pred.double(), target.double()
    cosine = (p * t).sum(-1) / (p.norm(dim=-1) * t.norm(dim=-1))
    return (1 - cosine) ** beta


def test_hand_computed_rows() -> None:
    pred = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-3.0, 0.0]])
    target = torch.tensor([[2.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    # cosines 1, 0, 1/sqrt(2), -1 → gaps 0, 1, 1 − 1/sqrt(2), 2
    gaps = torch.tensor([0.0, 1.0, 1 - 1 / math.sqrt(2), 2.0])
    per_row = ScaledCosineError(beta=2.0, reduction="none")(pred, target)
    torch.testing.assert_close(per_row, gaps**2)
    torch.testing.assert_close(ScaledCosineError(beta=3.0)(pred, target), (gaps**3).mean())
    torch.testing.assert_close(
        ScaledCosineError(beta=1.0, reduction="sum")(pred, target), gaps.sum()
    )


def test_mask_scores_only_the_true_rows() -> None:
    pred = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[-1.0, 0.0], [1.0, 1.0]]])
    target = torch.ones(2, 2, 2)
    mask = torch.tensor([[True, False], [False, True]])
    expected = reference(pred, target, 2.0)[mask].mean().float()
    torch.testing.assert_close(ScaledCosineError()(pred, target, mask), expected)
    per_row = ScaledCosineError(reduction="none")(pred, target, mask)
    assert per_row[~mask].eq(0).all()
    torch.testing.assert_close(per_row[mask], reference(pred, target, 2.0)[mask].float())


@given(
    rows=st.integers(1, 12),
    dim=st.integers(1, 6),
    beta=st.floats(1.0, 4.0),
    seed=st.integers(0, 2**31 - 1),
)
@settings(max_examples=40, deadline=None)
def test_matches_the_reference_formula(rows: int, dim: int, beta: float, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    pred = torch.randn(rows, dim, generator=generator) + 0.1
    target = torch.randn(rows, dim, generator=generator) + 0.1
    mask = torch.rand(rows, generator=generator) < 0.5
    mask[0] = True
    loss = ScaledCosineError(beta=beta)(pred, target, mask)
    expected = reference(pred, target, beta)[mask].mean()
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), expected, rtol=1e-4, atol=1e-5)


def test_scale_invariant_per_row() -> None:
    pred, target = torch.randn(5, 3), torch.randn(5, 3)
    loss = ScaledCosineError()
    scale = torch.tensor([0.1, 2.0, 7.0, 1e3, 0.5]).unsqueeze(1)
    torch.testing.assert_close(loss(pred * scale, target / scale), loss(pred, target))


@pytest.mark.parametrize("beta", [1.0, 2.0, 2.5])
def test_gradient_is_finite_at_identical_vectors(beta: float) -> None:
    target = torch.randn(6, 3)
    pred = target.clone().requires_grad_(True)
    loss = ScaledCosineError(beta=beta)(pred, target)
    loss.backward()
    assert pred.grad is not None
    assert torch.isfinite(pred.grad).all()
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-6)
    if beta > 1:
        torch.testing.assert_close(pred.grad, torch.zeros_like(pred.grad))


def test_zero_rows_and_an_empty_mask_stay_finite() -> None:
    pred = torch.zeros(3, 4, requires_grad=True)
    target = torch.randn(3, 4)
    loss = ScaledCosineError()(pred, target)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(1.0)  # cosine 0 against a zero vector
    assert pred.grad is not None
    assert torch.isfinite(pred.grad).all()
    empty = ScaledCosineError()(torch.randn(3, 4), target, torch.zeros(3, dtype=torch.bool))
    assert float(empty) == 0.0


def test_half_precision_inputs_give_a_float32_loss() -> None:
    pred, target = torch.randn(8, 3), torch.randn(8, 3)
    half = ScaledCosineError()(pred.half(), target.half())
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, ScaledCosineError()(pred, target), rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("beta", [0.5, 0.0, -1.0, float("nan"), float("inf")])
def test_beta_below_one_or_not_finite_is_an_error(beta: float) -> None:
    with pytest.raises(ValueError, match="beta must be a finite number >= 1"):
        ScaledCosineError(beta=beta)


def test_unknown_reduction_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"reduction must be one of \['mean', 'sum', 'none'\]"):
        ScaledCosineError(reduction="max")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pred", "target", "mask", "message"),
    [
        ((4, 3), (4, 2), None, r"same shape \(\.\.\., D\), got \(4, 3\) and \(4, 2\)"),
        ((4, 0), (4, 0), None, "non-empty last"),
        ((), (), None, "non-empty last"),
        ((4, 3), (4, 3), (3,), r"shape pred\.shape\[:-1\] = \(4,\)"),
    ],
)
def test_bad_shapes_are_clear_errors(
    pred: tuple[int, ...], target: tuple[int, ...], mask: tuple[int, ...] | None, message: str
) -> None:
    mask_tensor = None if mask is None else torch.ones(mask, dtype=torch.bool)
    with pytest.raises(ValueError, match=message):
        ScaledCosineError()(torch.randn(pred), torch.randn(target), mask_tensor)


def test_a_non_bool_mask_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"got dtype torch\.float32"):
        ScaledCosineError()(torch.randn(4, 3), torch.randn(4, 3), torch.ones(4))


def test_repr() -> None:
    assert repr(ScaledCosineError(3.0, "sum")) == "ScaledCosineError(beta=3.0, reduction='sum')"


def test_rows_of_1e20_are_scored_like_any_other() -> None:
    """F.normalize squares 1e20 into infinity (cosine 0, error 1); rows are rescaled first."""
    generator = torch.Generator().manual_seed(3)
    pred = torch.randn(5, 4, generator=generator)
    target = torch.randn(5, 4, generator=generator)
    loss_fn = ScaledCosineError(reduction="none")
    torch.testing.assert_close(loss_fn(pred * 1e20, target * 1e30), loss_fn(pred, target))
