"""SaliencyMasker: the caller's saliency steers the shared sampler in the asked direction."""

from __future__ import annotations

import pytest
import torch

from skelmask.maskers.cross import CrossMasker
from skelmask.maskers.random import RandomMasker
from skelmask.maskers.saliency import SaliencyMasker


def half_salient(batch: int, time_patches: int, joints: int) -> torch.Tensor:
    """Saliency 1 on the first half of the joints, 0 on the rest."""
    saliency = torch.zeros(batch, time_patches, joints)
    saliency[:, :, : joints // 2] = 1.0
    return saliency


@pytest.mark.parametrize(
    ("direction", "low", "high"), [("hide_high", 0.8, 1.0), ("keep_high", 0.0, 0.2)]
)
def test_direction_is_honoured_over_many_draws(direction: str, low: float, high: float) -> None:
    # With tau = 0.25 a salient token weighs exp(4) ≈ 55 times a plain one; ignoring the
    # saliency would put half of the hidden tokens on each side.
    masker = SaliencyMasker(0.3, temperature=0.25, direction=direction)  # type: ignore[arg-type]
    saliency = half_salient(256, 6, 10)
    result = masker(
        torch.zeros(256, 6, 10, 1), saliency=saliency, generator=torch.Generator().manual_seed(0)
    )
    share = (result.grid_mask & (saliency > 0)).sum() / result.grid_mask.sum()
    assert low <= float(share) <= high


def test_scores_and_probs_are_the_saliency_and_its_softmax() -> None:
    saliency = torch.rand(3, 4, 5)
    result = SaliencyMasker(0.5)(torch.zeros(3, 4, 5, 2), saliency=saliency)
    assert torch.equal(result.scores, saliency.flatten(1))
    expected = torch.softmax(saliency.flatten(1) / saliency.flatten(1).amax(1, keepdim=True), 1)
    torch.testing.assert_close(result.probs, expected)


def test_flat_saliency_and_flat_tokens_are_read_as_the_grid() -> None:
    saliency = torch.rand(2, 4, 5)
    masker = SaliencyMasker(0.5)
    grid = masker(
        torch.zeros(2, 4, 5, 3), saliency=saliency, generator=torch.Generator().manual_seed(1)
    )
    # Flat tokens take the grid from the (B, Tp, Vp) saliency; a flat map needs grid_size.
    flat = masker(
        torch.zeros(2, 20, 3), saliency=saliency, generator=torch.Generator().manual_seed(1)
    )
    flat_map = masker(
        torch.zeros(2, 20, 3),
        saliency=saliency.flatten(1),
        grid_size=(4, 5),
        generator=torch.Generator().manual_seed(1),
    )
    assert flat.grid_size == (4, 5)
    assert torch.equal(grid.mask, flat.mask)
    assert torch.equal(grid.mask, flat_map.mask)


def test_missing_or_misshapen_or_non_finite_saliency_is_a_clear_error() -> None:
    masker = SaliencyMasker(0.5)
    tokens = torch.zeros(2, 4, 5, 3)
    with pytest.raises(ValueError, match="needs saliency="):
        masker(tokens)
    with pytest.raises(ValueError, match=r"saliency must have shape .* got \(2, 5, 4\)"):
        masker(tokens, saliency=torch.rand(2, 5, 4))
    bad = torch.rand(2, 4, 5)
    bad[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="saliency contains 1 NaN"):
        masker(tokens, saliency=bad)


def test_saliency_for_a_masker_that_does_not_read_it_is_an_error() -> None:
    with pytest.raises(ValueError, match="RandomMasker does not read saliency="):
        RandomMasker(0.5)(torch.zeros(2, 4, 5, 3), saliency=torch.rand(2, 4, 5))


def test_cross_masker_routes_saliency_to_the_branch_that_reads_it() -> None:
    masker = CrossMasker(SaliencyMasker(0.5, temperature=0.1), RandomMasker(0.5))
    saliency = torch.zeros(64, 4, 6)
    saliency[:, 0::2, :3] = 1.0  # salient joints in the first masker's (even) time patches
    result = masker(torch.zeros(64, 4, 6, 1), saliency=saliency)
    even = result.grid_mask[:, 0::2]
    assert even.sum(dim=(1, 2)).tolist() == [6] * 64
    # Hiding 6 of 12 tokens with salient ones weighing exp(10) hides nearly only salient ones.
    assert float(even[:, :, :3].sum() / even.sum()) > 0.95
    with pytest.raises(ValueError, match="does not read saliency="):
        CrossMasker(RandomMasker(0.5), RandomMasker(0.5))(
            torch.zeros(2, 4, 6, 1), saliency=saliency[:2]
        )
