from __future__ import annotations

import pytest
import torch

from skelmask.layouts import get_layout
from skelmask.models.skelemixclr import SkeleMixCLR, random_shear
from skelmask.models.stgcn import STGCN

LAYOUT = get_layout("msr-action3d")


def _model(**kwargs: object) -> SkeleMixCLR:
    encoder = STGCN(LAYOUT, channels=(8, 16), strides=(2, 2), dropout=0.0)
    options: dict[str, object] = {"feature_dim": 8, "queue_size": 32, "momentum": 0.9}
    options.update(kwargs)
    return SkeleMixCLR(encoder, LAYOUT, **options)  # type: ignore[arg-type]


def _batch(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 3, 8, 20, 2, generator=torch.Generator().manual_seed(0))


def test_every_trainable_parameter_gets_a_gradient() -> None:
    model = _model()
    output = model(_batch())
    output.loss.backward()
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert trainable, "the model has no trainable parameters"
    assert all(name.startswith(("encoder.", "head.")) for name in trainable)
    missing = [name for name, p in trainable.items() if p.grad is None]
    assert missing == []
    assert all(not p.requires_grad for p in model.key_encoder.parameters())
    assert all(not p.requires_grad for p in model.key_head.parameters())


def test_exposes_the_query_encoder_for_probing() -> None:
    encoder = STGCN(LAYOUT, channels=(8, 16), strides=(2, 2))
    model = SkeleMixCLR(encoder, LAYOUT, feature_dim=8, queue_size=32)
    assert model.encoder is encoder
    assert model.key_encoder is not encoder
    assert model.encoder.forward_features(_batch()).shape == (4, model.encoder.embed_dim)


def test_output_terms_and_total() -> None:
    model = _model(mix_weight=0.5)
    output = model(_batch(), generator=torch.Generator().manual_seed(1))
    terms = output.losses
    assert set(terms) == {"instance", "trimmed", "truncated"}
    expected = terms["instance"] + 0.5 * (terms["trimmed"] + terms["truncated"]) / 2
    assert torch.allclose(output.loss, expected)
    assert output.feature_mask.shape == (4, 2, 20)
    assert bool((output.donor != torch.arange(4)).all())


def test_training_step_updates_key_encoder_and_queue_before_keys() -> None:
    model = _model(momentum=0.5)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    query_params = [p.detach().clone() for p in model.encoder.parameters()]
    key_params = [p.detach().clone() for p in model.key_encoder.parameters()]
    queue_before = model.queue.keys.clone()
    model.train()
    model(_batch())
    for key_now, key_then, query in zip(
        model.key_encoder.parameters(), key_params, query_params, strict=True
    ):
        # lerp rounds query - key (≈ 1, so by up to 6e-8) before halving it: beyond the relative
        # rounding of the result, the two formulas differ by up to 3e-8, which matters near zero.
        assert torch.allclose(key_now, 0.5 * key_then + 0.5 * query, atol=1e-7)
    assert int(model.queue.pointer) == 4
    assert not torch.equal(model.queue.keys[:4], queue_before[:4])
    assert torch.equal(model.queue.keys[4:], queue_before[4:])
    assert torch.allclose(model.queue.keys[:4].norm(dim=1), torch.ones(4))


def test_eval_mode_changes_nothing() -> None:
    model = _model().eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        output = model(_batch())
    assert torch.isfinite(output.loss)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_generator_reproducibility() -> None:
    first, second = _model(), _model()
    second.load_state_dict(first.state_dict())
    a = first.eval()(_batch(), generator=torch.Generator().manual_seed(5))
    b = second.eval()(_batch(), generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.loss, b.loss)
    assert torch.equal(a.feature_mask, b.feature_mask)


def test_views_are_the_same_clip_without_shear() -> None:
    # With no shear and momentum 0 the key path equals the query path: q·k_i is then 1/τ.
    model = _model(shear_amplitude=0.0, momentum=0.0).eval()
    logits = []
    model.criterion.register_forward_hook(lambda module, args, out: logits.append(args))
    model(_batch())
    query, key = logits[0][0], logits[0][1]
    assert torch.allclose(torch.nn.functional.normalize(query, dim=1), key, atol=1e-5)


def test_random_shear() -> None:
    x = torch.randn(3, 4, 5, 6, 2)
    sheared = random_shear(x, 0.5, spatial_dims=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sheared[:, 3:], x[:, 3:])
    # Solve for each sample's matrix from its coordinates: unit diagonal, |off-diagonal| < 0.5.
    for n in range(3):
        source = x[n, :3].reshape(3, -1)
        target = sheared[n, :3].reshape(3, -1)
        matrix = torch.linalg.lstsq(source.T, target.T).solution.T
        assert torch.allclose(matrix.diagonal(), torch.ones(3), atol=1e-4)
        off = matrix[~torch.eye(3, dtype=torch.bool)]
        assert bool((off.abs() < 0.5 + 1e-4).all())
        assert bool((off.abs() > 1e-6).all())
    with pytest.raises(ValueError, match="amplitude"):
        random_shear(x, -0.1)
    with pytest.raises(ValueError, match="spatial_dims"):
        random_shear(x, 0.1, spatial_dims=5)


def test_errors() -> None:
    encoder = STGCN(get_layout("coco"), channels=(8,), strides=(1,))
    with pytest.raises(ValueError, match="built for 17"):
        SkeleMixCLR(encoder, LAYOUT)
    with pytest.raises(ValueError, match="momentum"):
        _model(momentum=1.5)
    with pytest.raises(ValueError, match="shear_amplitude"):
        _model(shear_amplitude=-1.0)
    with pytest.raises(ValueError, match="spatial_dims"):
        _model(spatial_dims=4)
    model = _model()
    with pytest.raises(ValueError, match="N >= 2"):
        model(torch.randn(1, 3, 8, 20, 1))
    with pytest.raises(ValueError, match="multiple of t_patch = 4"):
        model(torch.randn(2, 3, 6, 20, 1))
    with pytest.raises(ValueError, match=r"\(N, C, T, V, M\)"):
        model(torch.randn(2, 3, 8, 20))
