"""The speed baseline: the ``"mae"`` preset's model written the straightforward way.

Same maths as ``skelmask.models.create_mae("mae", ...)`` (per-joint temporal patches, joint and
time embeddings, pre-norm ViT encoder on the visible tokens, a decoder over every slot with a
mask token, per-patch-normalised coordinate target, MSE over the hidden tokens), with the
implementation choices of typical research code instead of the library's:

* attention materialises ``softmax(q @ kᵀ / sqrt(d)) @ v`` (no fused kernel);
* masking draws one ``torch.randperm`` per sample in a Python loop;
* the visible-token bookkeeping loops over samples as well;
* float32 only (no autocast) and no ``torch.compile``.

Parameter names and shapes match ``skelmask.models.TransformerMAE`` with a Euclidean encoder,
so ``naive.load_state_dict(library_model.state_dict())`` copies the weights; the tests use
that to check that both compute the same loss for the same mask.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class NaiveAttention(nn.Module):
    """Multi-head self-attention with the attention matrix materialised."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, D)`` → ``(B, L, D)``."""
        batch, length, dim = x.shape
        head_dim = dim // self.num_heads
        qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, L, head_dim)
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(head_dim), dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(batch, length, dim)
        projected: torch.Tensor = self.proj(out)
        return projected


class NaiveMLP(nn.Module):
    """``fc2(gelu(fc1(x)))`` with hidden width ``4·D``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., D)`` → ``(..., D)``."""
        out: torch.Tensor = self.fc2(self.act(self.fc1(x)))
        return out


class NaiveBlock(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = NaiveAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = NaiveMLP(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, D)`` → ``(B, L, D)``."""
        x = x + self.attn(self.norm1(x))
        out: torch.Tensor = x + self.mlp(self.norm2(x))
        return out


class NaiveEncoder(nn.Module):
    """Patch, joint and time embeddings and the encoder blocks (parameter names as the library's)."""

    def __init__(
        self,
        *,
        num_joints: int,
        num_frames: int,
        t_patch: int,
        in_channels: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
    ) -> None:
        super().__init__()
        self.t_patch = t_patch
        self.patch_embed = nn.Linear(t_patch * in_channels, embed_dim)
        self.joint_embed = nn.Parameter(torch.randn(1, 1, num_joints, embed_dim) * 0.02)
        self.time_embed = nn.Parameter(torch.randn(1, num_frames // t_patch, 1, embed_dim) * 0.02)
        self.blocks = nn.ModuleList(NaiveBlock(embed_dim, num_heads) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)


class NaiveMAE(nn.Module):
    """A masked autoencoder of ``(N, C, T, V, M)`` clips; ``forward`` returns the scalar loss.

    Args:
        num_joints: Joints per frame ``V``.
        num_frames: Frames per clip ``T``, a multiple of ``t_patch``.
        t_patch: Frames per token.
        in_channels: Coordinates per joint ``C``.
        embed_dim: Encoder width.
        depth: Encoder blocks.
        num_heads: Attention heads of encoder and decoder.
        decoder_dim: Decoder width.
        decoder_depth: Decoder blocks.
        mask_ratio: Fraction of the ``L = (T / t_patch)·V`` tokens hidden.
    """

    def __init__(
        self,
        *,
        num_joints: int,
        num_frames: int,
        t_patch: int = 4,
        in_channels: int = 3,
        embed_dim: int = 256,
        depth: int = 8,
        num_heads: int = 8,
        decoder_dim: int = 256,
        decoder_depth: int = 3,
        mask_ratio: float = 0.9,
    ) -> None:
        super().__init__()
        self.encoder = NaiveEncoder(
            num_joints=num_joints,
            num_frames=num_frames,
            t_patch=t_patch,
            in_channels=in_channels,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
        )
        self.num_tokens = (num_frames // t_patch) * num_joints
        hidden = min(max(math.floor(mask_ratio * self.num_tokens + 0.5), 1), self.num_tokens - 1)
        self.num_keep = self.num_tokens - hidden
        self.decoder_embed = nn.Linear(embed_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.randn(1, 1, decoder_dim) * 0.02)
        self.decoder_joint_embed = nn.Parameter(torch.randn(1, 1, num_joints, decoder_dim) * 0.02)
        self.decoder_time_embed = nn.Parameter(
            torch.randn(1, num_frames // t_patch, 1, decoder_dim) * 0.02
        )
        self.decoder_blocks = nn.ModuleList(
            NaiveBlock(decoder_dim, num_heads) for _ in range(decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, t_patch * in_channels)

    def random_mask(self, batch: int, device: torch.device) -> torch.Tensor:
        """Bool ``(B, L)``, True = hidden: one ``torch.randperm`` per sample."""
        mask = torch.ones(batch, self.num_tokens, dtype=torch.bool, device=device)
        for sample in range(batch):
            keep = torch.randperm(self.num_tokens, device=device)[: self.num_keep]
            mask[sample, keep] = False
        return mask

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The masked reconstruction loss of a batch.

        Args:
            x: ``(N, C, T, V, M)`` float32 clips.
            mask: Optional bool ``(N·M, L)`` mask (True = hidden) with ``num_keep`` visible
                tokens per row; drawn at random when None.

        Returns:
            Scalar float32 loss.
        """
        clips, channels, frames, joints, persons = x.shape
        batch = clips * persons
        t_patch = self.encoder.t_patch
        coords = x.permute(0, 4, 2, 3, 1).reshape(batch, frames, joints, channels)
        patches = (
            coords.reshape(batch, frames // t_patch, t_patch, joints, channels)
            .permute(0, 1, 3, 2, 4)
            .reshape(batch, frames // t_patch, joints, t_patch * channels)
        )
        tokens = self.encoder.patch_embed(patches) + self.encoder.joint_embed
        tokens = (tokens + self.encoder.time_embed).reshape(batch, self.num_tokens, -1)
        if mask is None:
            mask = self.random_mask(batch, x.device)
        ids_keep = torch.stack([torch.nonzero(~mask[sample])[:, 0] for sample in range(batch)])
        rows = torch.arange(batch, device=x.device)[:, None]
        latent = tokens[rows, ids_keep]
        for block in self.encoder.blocks:
            latent = block(latent)
        latent = self.encoder.norm(latent)
        visible = self.decoder_embed(latent)
        full = self.mask_token.expand(batch, self.num_tokens, -1).clone()
        full[rows, ids_keep] = visible
        decoder_position = self.decoder_joint_embed + self.decoder_time_embed
        full = full + decoder_position.reshape(1, self.num_tokens, -1)
        for block in self.decoder_blocks:
            full = block(full)
        pred = self.decoder_pred(self.decoder_norm(full))
        target = patches.reshape(batch, self.num_tokens, -1)
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / torch.sqrt(var + 1e-6)
        per_token = ((pred - target) ** 2).mean(dim=-1)
        hidden = mask.float()
        loss: torch.Tensor = (per_token * hidden).sum() / hidden.sum()
        return loss
