"""Transformer building blocks of the reference models: attention, MLP, drop-path, pre-norm block.

The blocks follow the ViT encoder of MAE (He et al., "Masked Autoencoders Are Scalable Vision
Learners", CVPR 2022), which MAMP (Mao et al., ICCV 2023) and HA-CM (Yin & Cao,
arXiv:2409.17951) use unchanged: pre-norm, multi-head self-attention with a biased ``qkv``
projection and scale ``head_dim⁻⁰·⁵``, a GELU MLP and stochastic depth.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from skelmask._checks import check_positive_int, check_tensor

__all__ = ["MLP", "Attention", "Block", "DropPath"]


def check_floating(x: torch.Tensor, name: str = "x", *, dtype: torch.dtype | None = None) -> None:
    """Raises unless ``x`` holds floating-point values of the model's ``dtype``.

    Without it an integer batch, or a float64 one read from NumPy, fails deep inside the first
    linear layer with a dtype error that names neither the input nor the fix. Under
    ``torch.autocast`` on ``x``'s device another floating dtype than float64 passes: autocast
    casts it.

    Args:
        x: The batch.
        name: Its argument name, for the message.
        dtype: The dtype of the model's parameters, or None to accept any floating dtype.
    """
    check_tensor(x, name)
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor of coordinates, got dtype {x.dtype}; "
            f"convert it with {name}.float()"
        )
    if dtype is None or x.dtype == dtype:
        return
    # Autocast casts the inputs of its layers, but it leaves float64 to normalisation layers,
    # which then fail on the mix.
    if not torch.is_autocast_enabled(x.device.type) or x.dtype == torch.float64:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the model's parameters are {dtype}; convert it "
            f"with {name}.to({dtype}) (float64 NumPy arrays are the usual cause)"
        )


def check_heads(
    dim: int, num_heads: int, dim_name: str = "dim", heads_name: str = "num_heads"
) -> None:
    """Raises unless ``dim`` and ``num_heads`` are positive and ``num_heads`` divides ``dim``.

    Args:
        dim: Token width.
        num_heads: Attention heads.
        dim_name: Name of the width argument, for the error message.
        heads_name: Name of the heads argument, for the error message.

    Raises:
        ValueError: Naming the offending argument and its value.
    """
    check_positive_int(dim, dim_name)
    check_positive_int(num_heads, heads_name)
    if dim % num_heads:
        raise ValueError(f"{dim_name}={dim} must be divisible by {heads_name}={num_heads}")


class DropPath(nn.Module):
    """Stochastic depth: drops a whole residual branch per sample during training.

    Each sample's branch output is zeroed with probability ``p`` and the survivors are scaled by
    ``1 / (1 - p)``, so the expectation is unchanged. Identity in eval mode or with ``p = 0``.

    Reference: Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016.

    Args:
        p: Drop probability in ``[0, 1)``.

    Raises:
        ValueError: If ``p`` is outside ``[0, 1)``.

    Examples:
        >>> from skelmask.models import DropPath
        >>> DropPath(0.5).eval()(torch.ones(2, 3)).tolist()
        [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        p = float(p)
        if not 0.0 <= p < 1.0:  # also rejects NaN
            raise ValueError(f"drop-path probability p must be in [0, 1), got {p!r}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Drops samples of ``x``.

        Args:
            x: ``(B, ...)``, one residual-branch output per sample.

        Returns:
            Same shape and dtype as ``x``.
        """
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        survivors = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * survivors / keep

    def extra_repr(self) -> str:
        """The drop probability, shown by ``repr``."""
        return f"p={self.p}"


class Attention(nn.Module):
    """Multi-head self-attention through ``F.scaled_dot_product_attention``.

    Args:
        dim: Token width ``D``; divisible by ``num_heads``.
        num_heads: Number of heads.
        qkv_bias: Whether the ``qkv`` projection has a bias (MAE, MAMP, HA-CM: True).

    Raises:
        ValueError: If ``dim`` or ``num_heads`` is not a positive integer or does not divide.

    Examples:
        >>> from skelmask.models import Attention
        >>> Attention(16, num_heads=4)(torch.randn(2, 5, 16)).shape
        torch.Size([2, 5, 16])
    """

    def __init__(self, dim: int, num_heads: int = 8, *, qkv_bias: bool = True) -> None:
        super().__init__()
        check_heads(dim, num_heads)
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attends every token to every token.

        Args:
            x: ``(B, L, D)`` tokens.

        Returns:
            ``(B, L, D)``.
        """
        qkv = rearrange(self.qkv(x), "b l (three h e) -> three b h l e", three=3, h=self.num_heads)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        projected: torch.Tensor = self.proj(rearrange(out, "b h l e -> b l (h e)"))
        return projected


class MLP(nn.Module):
    """Two linear layers with a GELU between them: ``D → hidden → D``.

    Args:
        dim: Input and output width ``D``.
        hidden_dim: Hidden width.

    Examples:
        >>> from skelmask.models import MLP
        >>> MLP(16, 64)(torch.randn(2, 5, 16)).shape
        torch.Size([2, 5, 16])
    """

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Applies the MLP to every token.

        Args:
            x: ``(..., D)``.

        Returns:
            ``(..., D)``.
        """
        out: torch.Tensor = self.fc2(self.act(self.fc1(x)))
        return out


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``.

    Args:
        dim: Token width ``D``.
        num_heads: Attention heads; must divide ``dim``.
        mlp_ratio: MLP hidden width as a multiple of ``dim`` (> 0).
        drop_path: Stochastic-depth probability of both residual branches.

    Raises:
        ValueError: On a non-positive width, head count or MLP ratio, or a drop-path
            probability outside ``[0, 1)``.

    Examples:
        >>> from skelmask.models import Block
        >>> Block(16, num_heads=2)(torch.randn(2, 5, 16)).shape
        torch.Size([2, 5, 16])
    """

    def __init__(
        self, dim: int, num_heads: int, *, mlp_ratio: float = 4.0, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        check_heads(dim, num_heads)
        if not (math.isfinite(mlp_ratio) and mlp_ratio > 0):
            raise ValueError(f"mlp_ratio must be a finite number > 0, got {mlp_ratio!r}")
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, max(1, round(dim * mlp_ratio)))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Applies the block.

        Args:
            x: ``(B, L, D)`` tokens.

        Returns:
            ``(B, L, D)``.
        """
        attended: torch.Tensor = self.drop_path(self.attn(self.norm1(x)))
        x = x + attended
        transformed: torch.Tensor = self.drop_path(self.mlp(self.norm2(x)))
        return x + transformed


def init_weights(module: nn.Module) -> None:
    """MAE's initialisation, for ``module.apply``: Xavier-uniform linears, unit LayerNorms.

    Args:
        module: Any module; linear and LayerNorm layers are re-initialised, others left alone.
    """
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
