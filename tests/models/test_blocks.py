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
