from __future__ import annotations

import pytest
import torch

from skelmask.models import MLP, Attention, Block, DropPath


def test_attention_matches_the_explicit_softmax_formula() -> None:
    torch.manual_seed(0)
    attention = Attention(8, num_heads=2)
    x = torch.randn(3, 5, 8)
    q, k, v = attention.qkv(x).view(3, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    weights = torch.softmax(q @ k.transpose(-1, -2) / 4**0.5, dim=-1)
    expected = attention.proj((weights @ v).transpose(1, 2).reshape(3, 5, 8))
    torch.testing.assert_close(attention(x), expected)


def test_block_is_pre_norm_residual() -> None:
    block = Block(8, num_heads=2)
    x = torch.randn(2, 4, 8)
    middle = x + block.attn(block.norm1(x))
    torch.testing.assert_close(block(x), middle + block.mlp(block.norm2(middle)))


def test_mlp_hidden_width() -> None:
    mlp = MLP(8, 32)
    assert mlp.fc1.out_features == 32
    assert mlp(torch.randn(2, 3, 8)).shape == (2, 3, 8)


def test_drop_path_drops_whole_samples_and_rescales() -> None:
    drop = DropPath(0.5)
    x = torch.ones(64, 3, 4)
    torch.manual_seed(0)
    out = drop(x)
    per_sample = out.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert bool((per_sample == per_sample[:, :1]).all())  # a sample is kept or dropped whole
    assert 0 < int((per_sample[:, 0] == 0).sum()) < 64
    assert torch.equal(drop.eval()(x), x)
    assert torch.equal(DropPath(0.0)(x), x)


def test_drop_path_keeps_or_drops_each_samples_branch_whole() -> None:
    p = 0.3
    torch.manual_seed(0)
    x = torch.randn(256, 5, 8)
    out = DropPath(p)(x)
    kept = out.flatten(1).ne(0).any(dim=1)
    # Survivors are the input scaled by 1 / (1 - p), every element; the others are all zero.
    torch.testing.assert_close(out[kept], x[kept] / (1 - p))
    assert bool((out[~kept] == 0).all())
    assert 0 < int(kept.sum()) < 256


def test_drop_path_keeps_the_expectation() -> None:
    # Each sample's output is x·b/(1 - p) with b ~ Bernoulli(1 - p): its mean is x and its
    # variance x²·p/(1 - p). Every element of a sample shares b, so the mean over n samples is
    # x times one ratio whose standard error is sqrt(p / ((1 - p)·n)) = 0.0021 for p = 0.3 and
    # n = 10⁵; five standard errors allow 1e-2 relative (no rescaling would be off by 0.3).
    p, n = 0.3, 100_000
    torch.manual_seed(0)
    x = torch.randn(1, 4, 6, dtype=torch.float64)
    mean = DropPath(p)(x.expand(n, -1, -1)).mean(dim=0)
    standard_error = (p / ((1 - p) * n)) ** 0.5
    torch.testing.assert_close(mean, x[0], rtol=5 * standard_error, atol=0.0)


def test_block_with_drop_path_is_the_plain_block_in_eval_mode() -> None:
    torch.manual_seed(0)
    plain = Block(8, num_heads=2)
    dropping = Block(8, num_heads=2, drop_path=0.5)
    dropping.load_state_dict(plain.state_dict())  # drop-path adds no parameters or buffers
    x = torch.randn(16, 4, 8)
    torch.testing.assert_close(dropping.eval()(x), plain.eval()(x))
    # In training mode whole samples lose a residual branch, so some rows differ.
    differs = (dropping.train()(x) - plain(x)).abs().flatten(1).amax(dim=1) > 1e-6
    assert bool(differs.any())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dim": 10, "num_heads": 3}, "dim=10 must be divisible by num_heads=3"),
        ({"dim": 0, "num_heads": 1}, "dim must be a positive integer"),
        ({"dim": 8, "num_heads": 2, "mlp_ratio": 0.0}, "mlp_ratio"),
        ({"dim": 8, "num_heads": 2, "drop_path": 1.0}, r"\[0, 1\)"),
    ],
)
def test_block_rejects_bad_arguments(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Block(**kwargs)  # type: ignore[arg-type]
