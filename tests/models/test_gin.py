"""GIN layer maths, the GIN encoder and SkeletonMAE-style pretraining."""

from __future__ import annotations

import pytest
import torch

from skelmask.layouts import SkeletonLayout, get_layout
from skelmask.maskers.body_part import BodyPartMasker
from skelmask.maskers.random import RandomMasker
from skelmask.models.gin import GINEncoder, GINLayer, GINSkeletonMAE
from skelmask.models.mae import MAEOutput
from skelmask.training import (
    DistributedContext,
    PretrainConfig,
    ProbeConfig,
    linear_probe,
    pretrain,
)

CHAIN = SkeletonLayout.from_parents([-1, 0, 1], name="chain-3")  # bones 0-1 and 1-2


@pytest.mark.parametrize("eps", [0.0, 0.5])
def test_gin_aggregation_on_a_three_joint_chain(eps: float) -> None:
    layer = GINLayer(2, 4, CHAIN.adjacency(), eps=eps)
    x = torch.tensor([[1.0, 2.0], [10.0, 20.0], [100.0, 200.0]])
    one = 1 + eps
    expected = torch.stack(
        [
            one * x[0] + x[1],  # joint 0: neighbour 1
            one * x[1] + x[0] + x[2],  # joint 1: neighbours 0 and 2
            one * x[2] + x[1],  # joint 2: neighbour 1
        ]
    )
    torch.testing.assert_close(layer.aggregate(x), expected)
    batched = x.expand(2, 5, 3, 2)  # (B, T, V, D): every frame is its own graph
    torch.testing.assert_close(layer(batched), layer.mlp(expected).expand(2, 5, 3, 4))


def test_learnable_eps_gets_a_gradient() -> None:
    layer = GINLayer(3, 3, CHAIN.adjacency(), train_eps=True)
    layer(torch.randn(4, 3, 3)).sum().backward()
    assert isinstance(layer.eps, torch.nn.Parameter)
    assert layer.eps.grad is not None
    assert "eps" not in dict(GINLayer(3, 3, CHAIN.adjacency()).named_parameters())


def test_gin_layer_errors() -> None:
    with pytest.raises(ValueError, match=r"square \(V, V\) matrix, got shape \(3, 2\)"):
        GINLayer(2, 2, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="out_dim must be a positive integer"):
        GINLayer(2, 0, CHAIN.adjacency())
    with pytest.raises(ValueError, match=r"V = 3 joints, got \(2, 4, 2\)"):
        GINLayer(2, 2, CHAIN.adjacency())(torch.randn(2, 4, 2))


@pytest.mark.parametrize("name", ["nturgb+d", "coco", "openpose", "msr-action3d", "nw-ucla"])
def test_encoder_features_on_every_built_in_layout(name: str) -> None:
    joints = get_layout(name).num_joints
    encoder = GINEncoder(name, in_channels=2, width=8, depth=2, temporal_segments=3)
    features = encoder.forward_features(torch.randn(4, 2, 7, joints, 1))
    assert encoder.embed_dim == 24
    assert features.shape == (4, 24)
    assert torch.isfinite(features).all()


def test_encoder_averages_persons_and_keeps_temporal_order() -> None:
    torch.manual_seed(0)
    encoder = GINEncoder("coco", width=8, depth=1, temporal_segments=2).eval()
    first, second = torch.randn(3, 3, 6, 17, 1), torch.randn(3, 3, 6, 17, 1)
    both = encoder(torch.cat([first, second], dim=4))
    torch.testing.assert_close(both, (encoder(first) + encoder(second)) / 2)
    reversed_clip = encoder(first.flip(2))
    assert not torch.allclose(reversed_clip, encoder(first))
    # Reversing time swaps the two segments' halves of the features.
    torch.testing.assert_close(reversed_clip[:, :8], encoder(first)[:, 8:])


def test_encoder_rejects_a_batch_of_the_wrong_shape() -> None:
    encoder = GINEncoder("coco", width=8, depth=1)
    with pytest.raises(
        ValueError, match=r"V == 17 joints of layout 'coco'.*got \(2, 3, 5, 25, 1\)"
    ):
        encoder(torch.randn(2, 3, 5, 25, 1))
    with pytest.raises(ValueError, match="C == in_channels = 3"):
        encoder(torch.randn(2, 2, 5, 17, 1))
    with pytest.raises(ValueError, match=r"W == width = 8, got \(2, 5, 17, 4\)"):
        encoder.encode(torch.randn(2, 5, 17, 4))


def tiny_model(**kwargs: object) -> GINSkeletonMAE:
    encoder = GINEncoder("nturgb+d", width=8, depth=2, temporal_segments=2)
    return GINSkeletonMAE(encoder, **kwargs)  # type: ignore[arg-type]


def test_forward_returns_a_scalar_loss_and_per_joint_predictions() -> None:
    model = tiny_model()
    out = model(torch.randn(2, 3, 5, 25, 2), generator=torch.Generator().manual_seed(0))
    assert isinstance(out, MAEOutput)
    assert out.loss.shape == ()
    assert torch.isfinite(out.loss)
    assert out.pred.shape == (4, 5 * 25, 3)
    assert out.mask.shape == (4, 125)
    assert isinstance(model.masker, BodyPartMasker)
    assert model.masker.draw_per == "time_patch"
    assert (out.mask.sum(dim=1) == model.masker.num_hidden((5, 25))).all()


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"decoder_depth": 3}, {"remask": True}, {"masker": RandomMasker(0.6)}],
)
def test_every_parameter_gets_a_gradient(kwargs: dict[str, object]) -> None:
    # DDP runs with find_unused_parameters=False: no parameter may be left out of the loss.
    model = tiny_model(**kwargs)
    model(torch.randn(3, 3, 6, 25, 1)).loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    assert model.mask_token.grad is not None
    assert model.mask_token.grad.abs().sum() > 0


def test_hidden_joints_inputs_never_reach_the_predictions() -> None:
    model = tiny_model().eval()
    x = torch.randn(2, 3, 4, 25, 1)
    out = model(x, generator=torch.Generator().manual_seed(1))
    hidden = out.mask.reshape(2, 4, 25)
    perturbed = x.clone()
    perturbed[:, :, :, :, 0] += 5.0 * hidden.unsqueeze(1)  # move every hidden joint
    again = model(perturbed, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again.mask, out.mask)
    torch.testing.assert_close(again.pred, out.pred)
    assert not torch.allclose(again.loss, out.loss)  # the hidden targets moved


def test_loss_depends_only_on_the_hidden_joints() -> None:
    model = tiny_model().eval()
    x = torch.randn(2, 3, 4, 25, 1)
    out = model(x, generator=torch.Generator().manual_seed(2))
    target = model.encoder.split_bodies(x)  # (B, T, V, C)
    pred = out.pred.reshape(2, 4, 25, 3)
    hidden = out.mask.reshape(2, 4, 25)
    visible = ~hidden.unsqueeze(-1)
    moved_target = target + 3.0 * torch.randn_like(target) * visible
    moved_pred = pred + 3.0 * torch.randn_like(pred) * visible
    torch.testing.assert_close(model.reconstruction_loss(pred, target, hidden), out.loss)
    torch.testing.assert_close(
        model.reconstruction_loss(moved_pred, moved_target, hidden), out.loss
    )
    one_hidden = hidden.nonzero()[0].tolist()
    changed = target.clone()
    changed[tuple(one_hidden)] = -changed[tuple(one_hidden)]
    assert not torch.allclose(model.reconstruction_loss(pred, changed, hidden), out.loss)


def test_all_zero_targets_are_not_scored() -> None:
    model = tiny_model()
    pred = torch.randn(1, 2, 25, 3)
    target = torch.randn(1, 2, 25, 3)
    target[:, 1] = 0.0  # a padded frame
    hidden = torch.ones(1, 2, 25, dtype=torch.bool)
    only_first = torch.zeros_like(hidden)
    only_first[:, 0] = True
    torch.testing.assert_close(
        model.reconstruction_loss(pred, target, hidden),
        model.criterion(pred, target, only_first),
    )


def test_pretrain_engine_runs_the_model_and_the_probe_reads_its_encoder() -> None:
    model = tiny_model()
    x = torch.randn(8, 3, 4, 25, 1)
    labels = torch.arange(8) % 2
    data = torch.utils.data.TensorDataset(x, labels)
    history = pretrain(
        model,
        data,
        PretrainConfig(epochs=1, batch_size=4, warmup_epochs=0),
        context=DistributedContext(),
    )
    assert len(history) == 1
    assert torch.isfinite(torch.tensor(history[0]["loss"]))
    result = linear_probe(
        model.encoder,
        data,
        data,
        2,
        ProbeConfig(epochs=1, batch_size=4),
        context=DistributedContext(),
    )
    assert 0.0 <= result.last_accuracy <= 1.0


def test_no_weight_decay_names_exist() -> None:
    model = tiny_model()
    names = dict(model.named_parameters())
    assert model.no_weight_decay() == {
        "mask_token",
        "decoder_joint_embed",
        "encoder.joint_embed",
    }
    assert model.no_weight_decay() <= names.keys()


def test_model_argument_errors() -> None:
    encoder = GINEncoder("coco", width=8, depth=1)
    with pytest.raises(TypeError, match="encoder must be a GINEncoder, got Linear"):
        GINSkeletonMAE(torch.nn.Linear(2, 2))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="masker must be a Masker, got Identity"):
        GINSkeletonMAE(encoder, torch.nn.Identity())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="decoder_depth must be a positive integer"):
        GINSkeletonMAE(encoder, decoder_depth=0)
    with pytest.raises(ValueError, match="beta must be a finite number >= 1"):
        GINSkeletonMAE(encoder, beta=0.5)
    with pytest.raises(ValueError, match="body_parts is empty"):
        GINSkeletonMAE(GINEncoder(CHAIN, width=4, depth=1))
