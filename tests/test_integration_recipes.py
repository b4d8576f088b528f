"""The recipes of docs/integration.md, run against small models written from the interfaces the
page describes (MAMP's flat tokens and patchified ``x_orig``, HA-CM's 18-joint grid with external
torso roots, a flat-token ViT MAE, SkeletonMAE-Wu's in-place masking)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from skelmask import CrossMasker, get_layout, num_hidden_tokens, patchify

PAGE = Path(__file__).resolve().parents[1] / "docs" / "integration.md"


def recipe(index: int, **names: object) -> dict[str, object]:
    """Runs the page's ``index``-th python block with ``names`` (the user's code) in scope."""
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)
    namespace: dict[str, object] = dict(names)
    exec(blocks[index], namespace)  # noqa: S102 - the page's own recipe
    return namespace


class MAMP(nn.Module):
    """MAMP's interface: flat time-major tokens, patchified ``x_orig``, MAE's masking and
    decoder restore (append mask tokens, gather with ``ids_restore``)."""

    def __init__(self, dim: int = 16, t_patch: int = 4, frames: int = 16, joints: int = 25) -> None:
        super().__init__()
        self.t_patch = t_patch
        self.joints_embed = nn.Linear(3 * t_patch, dim)
        self.pos_embed = nn.Parameter(torch.randn(1, 1, joints, dim) * 0.02)
        self.temp_embed = nn.Parameter(torch.randn(1, frames // t_patch, 1, dim) * 0.02)
        self.encoder = nn.Identity()
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.decoder_pred = nn.Linear(dim, 3 * t_patch)
        self.calls: list[str] = []

    def random_masking(
        self, x: torch.Tensor, mask_ratio: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.calls.append("random")
        batch, length, dim = x.shape
        keep = int(length * (1 - mask_ratio))
        ids_shuffle = torch.argsort(torch.rand(batch, length), dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        kept = torch.gather(x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, dim))
        mask = torch.ones(batch, length)
        mask[:, :keep] = 0
        return kept, torch.gather(mask, 1, ids_restore), ids_restore

    def motion_aware_random_masking(
        self, x: torch.Tensor, x_orig: torch.Tensor, mask_ratio: float, tau: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        self.calls.append("motion")
        kept, mask, ids_restore = self.random_masking(x, mask_ratio)
        return kept, mask, ids_restore, ids_restore

    def forward(
        self, x: torch.Tensor, mask_ratio: float = 0.9, motion_aware_tau: float = 0.8
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n, c, t, v, m = x.shape
        coords = x.permute(0, 4, 2, 3, 1).reshape(n * m, t, v, c)
        x_orig = patchify(coords, self.t_patch)  # (B, Tp, V, t_patch·C)
        tokens = (self.joints_embed(x_orig) + self.pos_embed + self.temp_embed).flatten(1, 2)
        if motion_aware_tau > 0:
            visible, mask, ids_restore, _ = self.motion_aware_random_masking(
                tokens, x_orig, mask_ratio, motion_aware_tau
            )
        else:
            visible, mask, ids_restore = self.random_masking(tokens, mask_ratio)
        latent = self.encoder(visible)
        filler = self.mask_token.expand(latent.shape[0], tokens.shape[1] - latent.shape[1], -1)
        full = torch.cat([latent, filler], dim=1)
        restored = torch.gather(full, 1, ids_restore[..., None].expand(-1, -1, full.shape[-1]))
        self.restored, self.tokens = restored, tokens
        return self.decoder_pred(restored), mask, ids_restore


def skeletons(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, 16, 25, 2)


def assert_restored_in_place(model: MAMP, mask: torch.Tensor) -> None:
    visible = mask == 0
    assert torch.equal(model.restored[visible], model.tokens[visible])
    hidden_slots = model.restored[~visible]
    assert torch.equal(hidden_slots, model.mask_token.reshape(1, -1).expand_as(hidden_slots))


@pytest.mark.parametrize("tau", [0.8, 0.0])
def test_mamp_recipe_masks_through_both_of_mamps_functions(tau: float) -> None:
    names = recipe(0, MAMP=MAMP)
    model = names["MAMPWithSkelmask"]()  # type: ignore[operator]
    torch.manual_seed(0)
    pred, mask, _ = model(skeletons(), mask_ratio=0.9, motion_aware_tau=tau)
    length = 4 * 25
    assert pred.shape == (4, length, 12)
    assert mask.sum(dim=1).tolist() == [float(num_hidden_tokens(length, 0.9))] * 4
    assert_restored_in_place(model, mask)
    assert model.calls == []  # MAMP's own masking functions never ran


def test_mamp_recipe_samples_from_mamps_motion_probabilities() -> None:
    names = recipe(0, MAMP=MAMP)
    masker = names["motion_masker"]
    x, x_orig = torch.randn(2, 100, 16), torch.randn(2, 4, 25, 12)
    result = masker(x, coords=x_orig, mask_ratio=0.9, temperature=0.75)  # type: ignore[operator]
    # MAMP: motion |x_orig[t] - x_orig[t-1]| averaged per patch, first patch copies the second,
    # divided by tau·max, softmaxed over the L tokens.
    motion = (x_orig[:, 1:] - x_orig[:, :-1]).abs().mean(dim=-1)
    motion = torch.cat([motion[:, :1], motion], dim=1).reshape(2, -1)
    expected = torch.softmax(motion / (0.75 * motion.amax(dim=1, keepdim=True) + 1e-10), dim=1)
    # Both sides are float32 softmaxes of the same 100 logits in [0, 1.34]; rounding of the
    # max normalisation and of the exponent sums moves them by a few ULPs.
    torch.testing.assert_close(result.probs, expected, rtol=1e-5, atol=1e-7)


def test_mamp_checkpoint_saved_before_the_swap_loads_strictly() -> None:
    names = recipe(0, MAMP=MAMP)
    before = MAMP().state_dict()
    swapped = names["MAMPWithSkelmask"]()  # type: ignore[operator]
    swapped.masker = names["motion_masker"]  # even as a submodule it adds no state
    swapped.hacm = recipe(1, **names)["hacm_masker"]
    swapped.load_state_dict(before, strict=True)
    assert swapped.state_dict().keys() == before.keys()


def test_mamp_recipe_with_hacm_masking_keeps_the_exact_count() -> None:
    names = recipe(1, **recipe(0, MAMP=MAMP))
    model = names["MAMPWithHACMMasking"]()  # type: ignore[operator]
    with torch.no_grad():
        _, mask, _ = model(skeletons(), mask_ratio=0.9)
    assert mask.sum(dim=1).tolist() == [90.0] * 4  # 10 of 100 kept
    assert_restored_in_place(model, mask)


def test_hacm_recipe_masks_the_18_joint_grid_with_external_roots() -> None:
    names = recipe(2)
    hacm_masking = names["hacm_masking"]
    contrast = names["contrast"]
    ntu = get_layout("nturgb+d")
    batch, width = 4, 16
    euclidean = torch.randn(batch, 24, 18, width) * 0.1
    torso = torch.randn(batch, 24, 7, width) * 0.1
    even = euclidean[:, 0::2].permute(0, 2, 1, 3)  # (B, 18, 12, D)
    even_attention = torch.softmax(even @ even.transpose(-1, -2), dim=-1)
    ball_tokens = euclidean.flatten(1, 2).tanh()
    x_masked, mask, ids_restore, branch = hacm_masking(  # type: ignore[operator]
        euclidean, torso, even_attention, ball_tokens
    )
    assert len(ntu.subset("hacm_tokens")) == 18
    assert x_masked.shape == (batch, 43, width)  # round(432 · 0.1)
    assert mask.sum(dim=1).tolist() == [389.0] * batch
    kept = (mask == 0).nonzero()[:, 1].reshape(batch, -1)
    assert torch.equal(branch, (kept // 18) % 2)  # even time patches are branch 0
    assert torch.equal(x_masked, torch.gather(ball_tokens, 1, kept[..., None].expand(-1, -1, 16)))
    filler = torch.zeros(batch, 432 - 43, width)
    restored = torch.gather(
        torch.cat([x_masked, filler], 1), 1, ids_restore[..., None].expand(-1, -1, width)
    )
    assert torch.equal(restored[mask == 0], ball_tokens[mask == 0])
    assert torch.isfinite(contrast(x_masked, branch))  # type: ignore[operator]


def test_hacm_recipe_refuses_attention_that_is_not_a_distribution_over_keys() -> None:
    names = recipe(2)
    euclidean = torch.randn(2, 24, 18, 8) * 0.1
    over_joints = torch.softmax(torch.randn(2, 18, 12, 12), dim=1)  # HA-CM's own softmax axis
    with pytest.raises(ValueError, match="distributions over the key time patches"):
        names["hacm_masking"](  # type: ignore[operator]
            euclidean, torch.zeros(2, 24, 7, 8), over_joints, euclidean.flatten(1, 2)
        )


def test_flat_token_mae_recipe() -> None:
    names = recipe(3)
    x = torch.randn(3, 30 * 25, 8)
    x_masked, mask, ids_restore = names["random_masking"](x, 0.75, (30, 25))  # type: ignore[operator]
    assert x_masked.shape == (3, 750 - num_hidden_tokens(750, 0.75), 8)
    assert mask.shape == ids_restore.shape == (3, 750)
    idx_keep, idx_mask = names["lightly_indices"](x, (30, 25))  # type: ignore[operator]
    assert idx_keep.shape == (3, 75)
    assert idx_mask.shape == (3, 675)
    assert torch.equal(
        torch.sort(torch.cat([idx_keep, idx_mask], 1), 1).values[0], torch.arange(750)
    )
    idx_keep, _ = names["motion_indices"](x, torch.randn(3, 120, 25, 3))  # type: ignore[operator]
    assert idx_keep.shape == (3, 75)


@pytest.mark.parametrize(("masker_name", "axis"), [("joint_masker", 1), ("frame_masker", 2)])
def test_skeletonmae_wu_recipe_masks_whole_joints_or_frames_in_place(
    masker_name: str, axis: int
) -> None:
    names = recipe(4)
    tokens = torch.randn(2, 10, 25, 4)
    mask_token = torch.full((4,), 9.0)
    masked, hidden = names["mask_in_place"](tokens, mask_token, names[masker_name])  # type: ignore[operator]
    hidden = hidden.squeeze(-1)
    # A hidden joint is hidden in every time patch (axis 1), a hidden frame at every joint (2).
    assert torch.equal(hidden.all(dim=axis), hidden.any(dim=axis))
    assert torch.equal(masked[hidden], mask_token.expand(int(hidden.sum()), 4))
    assert torch.equal(masked[~hidden], tokens[~hidden])


def test_cross_masker_in_a_host_adds_no_state() -> None:
    host = nn.Module()
    host.masker = recipe(2)["masker"]
    assert isinstance(host.masker, CrossMasker)
    assert host.state_dict() == {}
