from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from skelmask import CrossContrastLoss, RandomMasker, normalize_patches
from skelmask.models import MAEOutput, Preset, SkeletonEncoder, TransformerMAE, create_mae

PRESETS: tuple[Preset, ...] = ("mae", "mamp", "hacm")
TINY: dict[str, Any] = {
    "num_frames": 8,
    "t_patch": 4,
    "embed_dim": 16,
    "depth": 2,
    "num_heads": 2,
    "decoder_dim": 8,
    "decoder_depth": 1,
}
# The HA-CM preset's untrained token embeddings are mostly longer than the hyperbolic masker's
# clip_r, so its first call warns; these tests are about shapes, gradients and losses.
pytestmark = pytest.mark.filterwarnings("ignore:HyperbolicHierarchyMasker.*clip_r:UserWarning")

# (layout, joints, channels): NTU 3D, COCO 2D + score, MSR Action3D.
LAYOUTS = [("nturgb+d", 25, 3), ("coco", 17, 3), ("msr-action3d", 20, 3)]


def tiny_mae(preset: Preset, layout: str = "coco", **kwargs: Any) -> TransformerMAE:
    torch.manual_seed(0)
    return create_mae(preset, layout=layout, **{**TINY, **kwargs})


def batch(joints: int = 17, persons: int = 2, clips: int = 3, pad: bool = True) -> torch.Tensor:
    x = torch.randn(clips, 3, 8, joints, persons)
    if pad and persons > 1:
        x[0, ..., 1] = 0.0  # a single-person clip: its second body is zero padding
    return x


@pytest.mark.parametrize(("layout", "joints", "channels"), LAYOUTS)
@pytest.mark.parametrize("preset", PRESETS)
def test_shapes_for_every_preset_and_layout(
    preset: Preset, layout: str, joints: int, channels: int
) -> None:
    mae = tiny_mae(preset, layout, in_channels=channels)
    out = mae(batch(joints))
    assert isinstance(out, MAEOutput)
    tokens = 2 * joints
    assert out.pred.shape == (6, tokens, 4 * channels)
    assert out.mask.shape == (6, tokens)
    assert out.mask.dtype == torch.bool
    assert out.loss.shape == ()
    expected_terms = {"reconstruction", "contrast"} if preset == "hacm" else {"reconstruction"}
    assert set(out.losses) == expected_terms
    torch.testing.assert_close(out.loss, sum(out.losses.values()))
    assert bool(out.loss.isfinite())
    hidden = out.mask.sum(dim=1)
    assert bool((hidden == hidden[0]).all())
    assert 0 < int(hidden[0]) < tokens


def test_presets_pick_their_masker_target_and_encoder() -> None:
    mae, mamp, hacm = (tiny_mae(preset) for preset in PRESETS)
    assert (mae.target, mamp.target, hacm.target) == ("coords", "motion", "motion")
    assert type(mae.masker).__name__ == "RandomMasker"
    assert type(mamp.masker).__name__ == "MotionAwareMasker"
    assert type(hacm.masker).__name__ == "CrossMasker"
    assert type(hacm.masker.second).__name__ == "HyperbolicHierarchyMasker"
    assert isinstance(hacm.contrast, CrossContrastLoss)
    assert mae.contrast is None
    assert mamp.contrast is None
    assert (mae.encoder.hyperbolic, mamp.encoder.hyperbolic, hacm.encoder.hyperbolic) == (
        False,
        False,
        True,
    )
    # A fixed curvature: the masker has no parameters and adds nothing to the model's state.
    assert hacm.masker.second.embedding is None
    assert not any(key.startswith("masker.") for key in hacm.state_dict())
    assert list(hacm.masker.parameters()) == []


@pytest.mark.parametrize("preset", PRESETS)
def test_every_parameter_gets_a_finite_gradient(preset: Preset) -> None:
    mae = tiny_mae(preset, "nturgb+d")
    out = mae(batch(25))
    out.loss.backward()
    trainable = [(name, p) for name, p in mae.named_parameters() if p.requires_grad]
    assert trainable
    missing = [name for name, p in trainable if p.grad is None]
    assert missing == []
    bad = [name for name, p in trainable if p.grad is None or not bool(p.grad.isfinite().all())]
    assert bad == []


def test_hacm_loss_terms_each_reach_the_encoder() -> None:
    mae = tiny_mae("hacm")
    out = mae(batch())
    out.losses["contrast"].backward()
    assert mae.encoder.patch_embed.weight.grad is not None
    assert float(mae.encoder.patch_embed.weight.grad.abs().sum()) > 0
    assert mae.decoder_pred.weight.grad is None  # the contrast reads the encoder only


@pytest.mark.parametrize("preset", PRESETS)
def test_visible_tokens_reach_the_decoder_in_their_own_slots(preset: Preset) -> None:
    mae = tiny_mae(preset)
    captured: dict[str, torch.Tensor] = {}

    def keep_latent(_m: nn.Module, _args: Any, output: torch.Tensor) -> None:
        captured["latent"] = output

    def keep_decoder_input(_m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        captured["decoder_input"] = args[0]

    mae.encoder.norm.register_forward_hook(keep_latent)
    mae.decoder_blocks[0].register_forward_pre_hook(keep_decoder_input)
    out = mae(batch())
    latent, decoder_input = captured["latent"], captured["decoder_input"]
    positions = (mae.decoder_joint_embed + mae.decoder_time_embed).flatten(1, 2)  # (1, L, D')
    embedded = mae.decoder_embed(latent)  # (B, K, D')
    for row in range(out.mask.shape[0]):
        ids_keep = (~out.mask[row]).nonzero().squeeze(1)  # ascending, as MaskResult.ids_keep
        torch.testing.assert_close(
            decoder_input[row, ids_keep], embedded[row] + positions[0, ids_keep]
        )
        ids_hidden = out.mask[row].nonzero().squeeze(1)
        torch.testing.assert_close(
            decoder_input[row, ids_hidden], mae.mask_token[0] + positions[0, ids_hidden]
        )


@pytest.mark.parametrize("preset", PRESETS)
def test_loss_ignores_the_predictions_of_visible_tokens(preset: Preset) -> None:
    mae = tiny_mae(preset)
    x = batch()
    reference = mae(x, generator=torch.Generator().manual_seed(3))
    mask = reference.mask

    def corrupt_visible(_m: nn.Module, _args: Any, output: torch.Tensor) -> torch.Tensor:
        return torch.where(mask.unsqueeze(-1), output, output + 1e3)

    mae.decoder_pred.register_forward_hook(corrupt_visible)
    corrupted = mae(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(corrupted.mask, mask)
    torch.testing.assert_close(
        corrupted.losses["reconstruction"], reference.losses["reconstruction"]
    )


def test_reconstruction_is_against_the_normalised_hidden_motion() -> None:
    mae = tiny_mae("mamp")
    x = batch(persons=1)
    out = mae(x)
    coords = x.permute(0, 4, 2, 3, 1).flatten(0, 1)  # (B, T, V, C)
    motion = torch.cat([coords[:, 1:] - coords[:, :-1], torch.zeros_like(coords[:, :1])], dim=1)
    target = motion.view(3, 2, 4, 17, 3).permute(0, 1, 3, 2, 4).reshape(3, 34, 12)
    error = (out.pred - normalize_patches(target)).square().mean(dim=-1)
    torch.testing.assert_close(out.losses["reconstruction"], error[out.mask].mean())


def test_coordinate_target_of_the_mae_preset() -> None:
    mae = tiny_mae("mae")
    x = batch(persons=1)
    out = mae(x)
    coords = x.permute(0, 4, 2, 3, 1).flatten(0, 1)
    target = coords.reshape(3, 2, 4, 17, 3).permute(0, 1, 3, 2, 4).reshape(3, 34, 12)
    error = (out.pred - normalize_patches(target)).square().mean(dim=-1)
    torch.testing.assert_close(out.losses["reconstruction"], error[out.mask].mean())


@pytest.mark.parametrize("preset", PRESETS)
def test_acceleration_target_is_the_second_difference(preset: Preset) -> None:
    mae = tiny_mae(preset, target="acceleration")
    assert mae.target == "acceleration"
    assert type(mae.masker) is type(tiny_mae(preset).masker)  # only the target is swapped
    x = batch(persons=1)
    out = mae(x)
    coords = x.permute(0, 4, 2, 3, 1).flatten(0, 1)  # (B, T, V, C)
    second = coords[:, 2:] - 2 * coords[:, 1:-1] + coords[:, :-2]
    acceleration = torch.cat([second, torch.zeros_like(coords[:, :2])], dim=1)
    target = acceleration.view(3, 2, 4, 17, 3).permute(0, 1, 3, 2, 4).reshape(3, 34, 12)
    error = (out.pred - normalize_patches(target)).square().mean(dim=-1)
    torch.testing.assert_close(out.losses["reconstruction"], error[out.mask].mean())


def test_target_eps_is_the_normalisation_floor() -> None:
    mae = tiny_mae("mamp", target_eps=1e-2)
    assert mae.reconstruction.eps == 1e-2
    x = 0.01 * batch(persons=1)  # motion variance ~2e-4 per patch: well below the floor
    out = mae(x)
    coords = x.permute(0, 4, 2, 3, 1).flatten(0, 1)
    motion = torch.cat([coords[:, 1:] - coords[:, :-1], torch.zeros_like(coords[:, :1])], dim=1)
    target = motion.view(3, 2, 4, 17, 3).permute(0, 1, 3, 2, 4).reshape(3, 34, 12)
    floored = normalize_patches(target, eps=1e-2)
    assert floored.std(dim=-1).max() < 0.5  # shrunk toward zero, not scaled to unit variance
    error = (out.pred - floored).square().mean(dim=-1)
    torch.testing.assert_close(out.losses["reconstruction"], error[out.mask].mean())


def test_target_override_and_unknown_target() -> None:
    assert tiny_mae("mae", target="motion").target == "motion"
    assert tiny_mae("mamp", target="coords").target == "coords"
    with pytest.raises(ValueError, match="target must be one of"):
        tiny_mae("mamp", target="speed")


def test_contrast_leaves_out_padded_bodies() -> None:
    mae = tiny_mae("hacm")
    seen: dict[str, Any] = {}

    def keep_kwargs(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        seen["branch"] = args[1]
        seen["valid"] = kwargs["valid"]

    assert mae.contrast is not None
    mae.contrast.register_forward_pre_hook(keep_kwargs, with_kwargs=True)
    out = mae(batch())
    assert seen["valid"].tolist() == [True, False, True, True, True, True]
    assert set(seen["branch"].unique().tolist()) == {0, 1}
    assert bool(out.losses["contrast"].isfinite())


@pytest.mark.parametrize("preset", PRESETS)
def test_seeded_generator_gives_the_same_loss_twice(preset: Preset) -> None:
    mae = tiny_mae(preset)
    x = batch()
    first = mae(x, generator=torch.Generator().manual_seed(7))
    second = mae(x, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first.mask, second.mask)
    assert torch.equal(first.loss, second.loss)
    other = mae(x, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(first.mask, other.mask)


@pytest.mark.parametrize("preset", PRESETS)
def test_bf16_autocast_is_finite(preset: Preset) -> None:
    mae = tiny_mae(preset)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = mae(batch() * 50)
    assert out.loss.dtype == torch.float32
    assert bool(out.loss.isfinite())
    out.loss.backward()
    grads = [p.grad for p in mae.parameters() if p.requires_grad]
    assert all(g is not None and bool(g.isfinite().all()) for g in grads)


@pytest.mark.parametrize("preset", ["mamp", "hacm"])
def test_compiles_with_the_eager_backend(preset: Preset) -> None:
    mae = tiny_mae(preset)
    compiled = torch.compile(mae, backend="eager")
    out = compiled(batch())
    assert out.pred.shape == (6, 34, 12)
    assert bool(out.loss.isfinite())
    out.loss.backward()


@pytest.mark.parametrize("preset", PRESETS)
def test_runs_on_device(preset: Preset, device: torch.device) -> None:
    mae = tiny_mae(preset).to(device)
    x = batch().to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    out = mae(x, generator=generator)
    assert out.pred.device.type == device.type
    out.loss.backward()
    assert all(p.grad is not None for p in mae.parameters() if p.requires_grad)


def test_no_weight_decay_names_are_parameters() -> None:
    mae = tiny_mae("hacm")
    names = set(dict(mae.named_parameters()))
    assert mae.no_weight_decay() <= names
    assert {"mask_token", "encoder.joint_embed", "decoder_time_embed"} <= mae.no_weight_decay()


def test_bad_input_is_a_clear_error() -> None:
    mae = tiny_mae("mamp")
    with pytest.raises(ValueError, match="V == num_joints = 17"):
        mae(torch.randn(2, 3, 8, 25, 1))
    with pytest.raises(ValueError, match="T == num_frames = 8"):
        mae(torch.randn(2, 3, 16, 17, 1))


def test_contrast_needs_a_masker_with_branches() -> None:
    encoder = SkeletonEncoder(num_joints=17, num_frames=8, embed_dim=16, depth=1, num_heads=2)
    # Checked when the model is built, not at its first step.
    with pytest.raises(ValueError, match="only a CrossMasker tells; got masker RandomMasker"):
        TransformerMAE(
            encoder,
            RandomMasker(0.5),
            decoder_dim=8,
            decoder_depth=1,
            decoder_heads=2,
            contrast=CrossContrastLoss(),
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"decoder_heads": 3}, "decoder_dim=8 must be divisible by decoder_heads=3"),
        ({"decoder_depth": 0}, "decoder_depth must be a positive integer"),
        ({"target": "velocity"}, "target must be one of"),
    ],
)
def test_bad_decoder_arguments(kwargs: dict[str, Any], match: str) -> None:
    encoder = SkeletonEncoder(num_joints=17, num_frames=8, embed_dim=16, depth=1, num_heads=2)
    options: dict[str, Any] = {"decoder_dim": 8, "decoder_depth": 1, "decoder_heads": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        TransformerMAE(encoder, RandomMasker(0.5), **options)


def test_wrong_component_types() -> None:
    encoder = SkeletonEncoder(num_joints=17, num_frames=8, embed_dim=16, depth=1, num_heads=2)
    with pytest.raises(TypeError, match="masker must be"):
        TransformerMAE(encoder, nn.Identity())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="encoder must be"):
        TransformerMAE(nn.Identity(), RandomMasker(0.5))  # type: ignore[arg-type]


def test_create_mae_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="preset must be one of"):
        create_mae("bert", **TINY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_frames=10 must be a multiple of t_patch=4"):
        create_mae("mae", **{**TINY, "num_frames": 10})
    with pytest.raises(ValueError, match="mask_ratio"):
        create_mae("hacm", mask_ratio=1.0, **TINY)
    with pytest.raises(KeyError):
        create_mae("mae", layout="no-such-layout", **TINY)


@pytest.mark.parametrize("preset", PRESETS)
def test_training_pass_reads_nothing_back_off_the_cpu(
    preset: Preset, meta_device: torch.device
) -> None:
    # Off the CPU the input checks are queued on the device: a forward and backward pass never
    # waits for it. The first call's one-time checks (the hyperbolic masker's clip warning) run
    # on the CPU.
    model = tiny_mae(preset, layout="nturgb+d")
    x = (torch.randn(2, 3, 8, 25, 2) * 0.02).cumsum(dim=2)
    model(x)
    model.to(meta_device)
    out = model(x.to(meta_device))
    out.loss.backward()
    assert out.loss.device == meta_device
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None and p.grad.device == meta_device for p in trainable)
