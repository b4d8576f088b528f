from __future__ import annotations

import pytest
import torch

from skelmask.models import SkeletonEncoder

TINY = {"embed_dim": 16, "depth": 2, "num_heads": 2}


def make_encoder(**kwargs: object) -> SkeletonEncoder:
    options: dict[str, object] = {"num_joints": 17, "num_frames": 8, "t_patch": 4, **TINY}
    options.update(kwargs)
    return SkeletonEncoder(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("hyperbolic", [False, True])
@pytest.mark.parametrize(("joints", "channels"), [(25, 3), (17, 3), (20, 3), (18, 2)])
def test_shapes(hyperbolic: bool, joints: int, channels: int) -> None:
    encoder = make_encoder(num_joints=joints, in_channels=channels, hyperbolic=hyperbolic)
    assert encoder.grid_size == (2, joints)
    coords = torch.randn(3, 8, joints, channels)
    tokens = encoder.embed(coords)
    assert tokens.shape == (3, 2, joints, 16)
    assert encoder.encode(tokens.flatten(1, 2)).shape == (3, 2 * joints, 16)
    assert encoder.forward_features(torch.randn(3, channels, 8, joints, 2)).shape == (3, 16)


def test_hyperbolic_embedding_is_the_poincare_map_of_the_euclidean_one() -> None:
    encoder = make_encoder(hyperbolic=True)
    coords = torch.randn(2, 8, 17, 3) * 10
    euclidean = encoder.embed_euclidean(coords)
    points = encoder.embed(coords)
    assert bool((points.norm(dim=-1) < 1).all())
    torch.testing.assert_close(points, encoder.manifold(euclidean))
    assert not torch.allclose(points, euclidean)
    flat = make_encoder()
    torch.testing.assert_close(flat.embed(coords), flat.embed_euclidean(coords))


def test_embedding_adds_joint_and_time_embeddings_at_each_token() -> None:
    encoder = make_encoder()
    coords = torch.randn(2, 8, 17, 3)
    patches = coords.view(2, 2, 4, 17, 3).permute(0, 1, 3, 2, 4).reshape(2, 2, 17, 12)
    expected = encoder.patch_embed(patches) + encoder.joint_embed + encoder.time_embed
    torch.testing.assert_close(encoder.embed(coords), expected)


def test_forward_features_averages_over_persons() -> None:
    encoder = make_encoder().eval()
    x = torch.randn(3, 3, 8, 17, 2)
    both = encoder.forward_features(x)
    each = [encoder.forward_features(x[..., m : m + 1]) for m in range(2)]
    torch.testing.assert_close(both, (each[0] + each[1]) / 2)
    torch.testing.assert_close(encoder(x), both)


def test_features_depend_on_every_person_of_the_right_clip() -> None:
    encoder = make_encoder().eval()
    x = torch.randn(2, 3, 8, 17, 2)
    changed = x.clone()
    changed[1, :, :, :, 1] += 1.0
    before, after = encoder(x), encoder(changed)
    torch.testing.assert_close(before[0], after[0])
    assert not torch.allclose(before[1], after[1])


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((2, 3, 8, 17), r"\(N, C, T, V, M\)"),
        ((2, 3, 12, 17, 1), "T == num_frames = 8"),
        ((2, 3, 8, 25, 1), "V == num_joints = 17"),
        ((2, 2, 8, 17, 1), "C == in_channels = 3"),
    ],
)
def test_bad_input_shapes_are_clear_errors(shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_encoder().forward_features(torch.randn(shape))


def test_bad_coords_and_token_shapes_are_clear_errors() -> None:
    encoder = make_encoder()
    with pytest.raises(ValueError, match="V == num_joints = 17"):
        encoder.embed(torch.randn(2, 8, 18, 3))
    with pytest.raises(ValueError, match="D == embed_dim = 16"):
        encoder.encode(torch.randn(2, 5, 8))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_frames": 10}, "num_frames=10 must be a multiple of t_patch=4"),
        ({"num_joints": 0}, "num_joints must be a positive integer"),
        ({"num_heads": 3}, "embed_dim=16 must be divisible by num_heads=3"),
        ({"drop_path": -0.1}, "drop_path"),
        ({"hyperbolic": True, "clip_r": 0.0}, "clip_r"),
        ({"t_patch": 0}, "t_patch"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_encoder(**kwargs)


def test_drop_path_grows_linearly_over_depth() -> None:
    encoder = make_encoder(depth=3, drop_path=0.2)
    rates = [block.drop_path.p for block in encoder.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2])


def test_set_drop_path_grows_linearly_and_keeps_the_state_dict() -> None:
    torch.manual_seed(0)
    plain = make_encoder(depth=4)
    dropping = make_encoder(depth=4)
    dropping.set_drop_path(0.3)
    assert [block.drop_path.p for block in dropping.blocks] == pytest.approx([0, 0.1, 0.2, 0.3])
    assert [block.drop_path.p for block in plain.blocks] == [0.0] * 4
    # No new parameters or buffers: checkpoints of either load into the other, strictly.
    assert plain.state_dict().keys() == dropping.state_dict().keys()
    dropping.load_state_dict(plain.state_dict())
    plain.load_state_dict(dropping.state_dict())
    x = torch.randn(2, 3, 8, 17, 1)
    torch.testing.assert_close(dropping.eval()(x), plain.eval()(x))
    dropping.set_drop_path(0.0)
    assert [block.drop_path.p for block in dropping.blocks] == [0.0] * 4


@pytest.mark.parametrize("rate", [1.0, -0.1, float("nan")])
def test_set_drop_path_rejects_a_rate_outside_0_1(rate: float) -> None:
    encoder = make_encoder()
    with pytest.raises(ValueError, match=r"drop_path must be in \[0, 1\)"):
        encoder.set_drop_path(rate)
    assert [block.drop_path.p for block in encoder.blocks] == [0.0, 0.0]  # left unchanged


def test_layer_ids_and_no_weight_decay_cover_every_parameter() -> None:
    encoder = make_encoder(hyperbolic=True)
    names = dict(encoder.named_parameters())
    ids = {name: encoder.layer_id(name) for name in names}
    assert ids["patch_embed.weight"] == ids["joint_embed"] == ids["time_embed"] == 0
    assert ids["blocks.0.attn.qkv.weight"] == 1
    assert ids["blocks.1.mlp.fc2.bias"] == 2
    assert ids["norm.weight"] == encoder.depth + 1
    assert set(ids.values()) == set(range(encoder.depth + 2))
    assert encoder.no_weight_decay() <= set(names)
    with pytest.raises(ValueError, match="not a parameter name"):
        encoder.layer_id("head.weight")


@pytest.mark.parametrize("hyperbolic", [False, True])
def test_bf16_autocast_is_finite(hyperbolic: bool) -> None:
    encoder = make_encoder(hyperbolic=hyperbolic)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = encoder(torch.randn(2, 3, 8, 17, 1) * 100)
    assert bool(features.isfinite().all())
