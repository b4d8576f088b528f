"""The skeleton transformer encoder of MAMP and HA-CM: per-joint temporal patches, pre-norm ViT.

Every joint's trajectory is cut into ``t_patch``-frame segments; each segment ``(t_patch, C)``
becomes one token through a shared linear patch embedding (MAMP's ``Conv2d`` with kernel
``(t_patch, 1)``, written as a linear layer on ``patchify``'s patches), and
a learnable joint embedding ``(V, D)`` and time embedding ``(Tp, D)`` are added. HA-CM then maps
every token into the Poincaré ball (``hyperbolic=True``). The tokens run through ``depth``
pre-norm blocks and a final LayerNorm.

References:
    - MAE: He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022.
    - MAMP: Mao et al., "Masked Motion Predictors are Strong 3D Action Representation
      Learners", ICCV 2023.
    - HA-CM: Yin & Cao, "Spatial Hierarchy and Temporal Attention Guided Cross Masking for
      Self-supervised Skeleton-based Action Recognition", arXiv:2409.17951, 2024.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from skelmask._checks import check_flags, check_positive_int
from skelmask.models.blocks import Block, DropPath, check_floating, check_heads, init_weights
from skelmask.poincare import DEFAULT_CLIP_R, PoincareEmbedding
from skelmask.tokens import flatten_grid, patchify

__all__ = ["SkeletonEncoder"]

# Parameter-name prefixes of the token embedding: layer 0 for layer-wise learning-rate decay.
_EMBEDDING_PREFIXES = ("patch_embed.", "joint_embed", "time_embed", "manifold.")


class SkeletonEncoder(nn.Module):
    """Transformer encoder over per-joint temporal patches (MAMP; HA-CM with ``hyperbolic``).

    A clip of ``T = num_frames`` frames and ``V = num_joints`` joints becomes a ``(Tp, V)`` grid
    of tokens, ``Tp = T // t_patch``, flattened time-major (``l = t·V + v``) for the blocks.
    Pretraining (``TransformerMAE``) calls ``embed``, masks, and
    ``encode`` the visible tokens; downstream code calls ``forward_features`` (all
    tokens, no masking) or the module itself, which is the same.

    With ``hyperbolic=True`` the tokens are mapped into the Poincaré ball of curvature ``-1``
    by a clipped exponential map (``PoincareEmbedding``, float32 inside
    autocast) before the blocks, in pretraining and downstream alike, as in HA-CM. The curvature
    is fixed (not learnable).

    Args:
        num_joints: Joints per frame ``V``.
        num_frames: Frames per clip ``T``; a multiple of ``t_patch``.
        t_patch: Frames per token.
        in_channels: Coordinates per joint ``C`` (3 for xyz, 3 for 2D + score, 2 for 2D).
        embed_dim: Token width ``D``; divisible by ``num_heads``.
        depth: Number of transformer blocks.
        num_heads: Attention heads per block.
        mlp_ratio: MLP hidden width as a multiple of ``D``.
        drop_path: Stochastic-depth probability of the last block; block ``i`` uses
            ``drop_path·i / (depth - 1)``.
        hyperbolic: Map the tokens into the Poincaré ball before the blocks (HA-CM).
        clip_r: Tangent-norm clip of the Poincaré map, or None; used only when ``hyperbolic``
            (see ``DEFAULT_CLIP_R``).

    Attributes:
        grid_size: ``(Tp, V)``, the token grid.

    Raises:
        TypeError: If ``hyperbolic`` is not a bool.
        ValueError: If a size is not a positive integer, ``num_frames`` is not a multiple of
            ``t_patch``, ``num_heads`` does not divide ``embed_dim``, or ``drop_path``,
            ``mlp_ratio`` or ``clip_r`` is out of range.

    Examples:
        >>> from skelmask.models import SkeletonEncoder
        >>> encoder = SkeletonEncoder(
        ...     num_joints=25, num_frames=8, embed_dim=16, depth=1, num_heads=2
        ... )
        >>> encoder.grid_size
        (2, 25)
        >>> encoder.forward_features(torch.randn(3, 3, 8, 25, 2)).shape  # (N, C, T, V, M) -> (N, D)
        torch.Size([3, 16])
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
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        hyperbolic: bool = False,
        clip_r: float | None = DEFAULT_CLIP_R,
    ) -> None:
        super().__init__()
        check_flags(hyperbolic=hyperbolic)
        self.num_joints = check_positive_int(num_joints, "num_joints")
        self.num_frames = check_positive_int(num_frames, "num_frames")
        self.t_patch = check_positive_int(t_patch, "t_patch")
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.depth = check_positive_int(depth, "depth")
        check_heads(embed_dim, num_heads, "embed_dim")
        if num_frames % t_patch:
            raise ValueError(
                f"num_frames={num_frames} must be a multiple of t_patch={t_patch} (each token "
                "covers t_patch frames)"
            )
        self.hyperbolic = bool(hyperbolic)
        self.grid_size = (num_frames // t_patch, num_joints)
        self.patch_embed = nn.Linear(t_patch * in_channels, embed_dim)
        self.joint_embed = nn.Parameter(torch.zeros(1, 1, num_joints, embed_dim))
        self.time_embed = nn.Parameter(torch.zeros(1, self.grid_size[0], 1, embed_dim))
        self.manifold: nn.Module = (
            PoincareEmbedding(1.0, clip_r=clip_r) if self.hyperbolic else nn.Identity()
        )
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio=mlp_ratio) for _ in range(depth)
        )
        self.set_drop_path(drop_path)
        self.norm = nn.LayerNorm(embed_dim)
        self.apply(init_weights)
        nn.init.trunc_normal_(self.joint_embed, std=0.02)
        nn.init.trunc_normal_(self.time_embed, std=0.02)

    def set_drop_path(self, drop_path: float) -> None:
        """Sets the blocks' stochastic depth: block ``i`` drops with ``drop_path·i / (depth - 1)``.

        The rate grows linearly from 0 at the first block to ``drop_path`` at the last, as in
        timm, MAE and MAMP (a single block never drops). Drop-path holds no parameters or
        buffers, so the state dict is the same at every rate: an encoder pretrained without it
        fine-tunes with it (MAMP: 0.3). It acts in training mode only.

        Args:
            drop_path: Stochastic-depth probability of the last block, in ``[0, 1)``.

        Raises:
            ValueError: If ``drop_path`` is outside ``[0, 1)``.

        Examples:
            >>> from skelmask.models import SkeletonEncoder
            >>> encoder = SkeletonEncoder(num_joints=20, num_frames=8, embed_dim=16, depth=3)
            >>> encoder.set_drop_path(0.3)
            >>> [round(block.drop_path.p, 2) for block in encoder.blocks]
            [0.0, 0.15, 0.3]
        """
        rate = float(drop_path)
        if not 0.0 <= rate < 1.0:  # also rejects NaN
            raise ValueError(f"drop_path must be in [0, 1), got {drop_path!r}")
        for i, block in enumerate(self.blocks):
            block.drop_path = DropPath(rate * i / max(self.depth - 1, 1))

    def split_bodies(self, x: torch.Tensor) -> torch.Tensor:
        """Checks a dataset batch and turns every person into its own sample.

        Args:
            x: ``(N, C, T, V, M)`` with ``C = in_channels``, ``T = num_frames`` and
                ``V = num_joints``.

        Returns:
            ``(N·M, T, V, C)``; row ``n·M + m`` is person ``m`` of clip ``n``.

        Raises:
            ValueError: If ``x`` does not have that shape.
            TypeError: If ``x`` is not a floating-point tensor or (outside autocast) not of the
                parameters' dtype.
        """
        check_floating(x, dtype=self.patch_embed.weight.dtype)
        expected = (self.in_channels, self.num_frames, self.num_joints)
        if x.dim() != 5 or tuple(x.shape[1:4]) != expected or x.shape[0] == 0 or x.shape[4] == 0:
            raise ValueError(
                f"x must have shape (N, C, T, V, M) with C == in_channels = {self.in_channels}, "
                f"T == num_frames = {self.num_frames}, V == num_joints = {self.num_joints} and "
                f"N, M ≥ 1, got {tuple(x.shape)}"
            )
        return rearrange(x, "n c t v m -> (n m) t v c")

    def embed_euclidean(self, coords: torch.Tensor) -> torch.Tensor:
        """Patch embedding plus joint and time embeddings, before any Poincaré map.

        HA-CM's maskers score these Euclidean tokens (its temporal criterion reads them as they
        are; the hyperbolic criterion applies its own exponential map).

        Args:
            coords: ``(B, T, V, C)`` with ``T = num_frames``, ``V = num_joints`` and
                ``C = in_channels``.

        Returns:
            Token grid ``(B, Tp, V, D)``.

        Raises:
            ValueError: If ``coords`` does not have that shape.
        """
        expected = (self.num_frames, self.num_joints, self.in_channels)
        if coords.dim() != 4 or tuple(coords.shape[1:]) != expected or coords.shape[0] == 0:
            raise ValueError(
                f"coords must have shape (B, T, V, C) with T == num_frames = {self.num_frames}, "
                f"V == num_joints = {self.num_joints}, C == in_channels = {self.in_channels} "
                f"and B ≥ 1, got {tuple(coords.shape)}"
            )
        tokens: torch.Tensor = self.patch_embed(patchify(coords, self.t_patch))
        return tokens + self.joint_embed + self.time_embed

    def embed(self, coords: torch.Tensor) -> torch.Tensor:
        """Embeds coordinates as encoder input tokens.

        Args:
            coords: ``(B, T, V, C)`` (see ``embed_euclidean``).

        Returns:
            Token grid ``(B, Tp, V, D)``: ``embed_euclidean``, mapped into the Poincaré
            ball (float32) when ``hyperbolic``.

        Examples:
            >>> from skelmask.models import SkeletonEncoder
            >>> encoder = SkeletonEncoder(
            ...     num_joints=17, num_frames=8, embed_dim=16, depth=1, num_heads=2, hyperbolic=True
            ... )
            >>> tokens = encoder.embed(torch.randn(2, 8, 17, 3))
            >>> tokens.shape, bool(tokens.norm(dim=-1).max() < 1)
            (torch.Size([2, 2, 17, 16]), True)
        """
        tokens: torch.Tensor = self.manifold(self.embed_euclidean(coords))
        return tokens

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Runs the blocks and the final LayerNorm.

        Args:
            tokens: ``(B, K, D)`` flat tokens, e.g. the visible ones of a masked grid.

        Returns:
            ``(B, K, D)``.

        Raises:
            ValueError: If ``tokens`` is not ``(B, K, D)`` with ``D = embed_dim``.
        """
        if tokens.dim() != 3 or tokens.shape[-1] != self.embed_dim or tokens.shape[1] == 0:
            raise ValueError(
                f"tokens must have shape (B, K, D) with K ≥ 1 and D == embed_dim = "
                f"{self.embed_dim}, got {tuple(tokens.shape)}"
            )
        for block in self.blocks:
            tokens = block(tokens)
        out: torch.Tensor = self.norm(tokens)
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clip features: every token encoded, averaged over tokens and persons.

        Args:
            x: ``(N, C, T, V, M)`` batch (see ``split_bodies``). Padded (all-zero) persons
                are averaged in like the others, as in MAMP and HA-CM.

        Returns:
            ``(N, D)``.
        """
        coords = self.split_bodies(x)
        tokens = self.encode(flatten_grid(self.embed(coords)))
        return rearrange(tokens.mean(dim=1), "(n m) d -> n m d", m=x.shape[4]).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as ``forward_features``: ``(N, C, T, V, M)`` → ``(N, D)``."""
        return self.forward_features(x)

    def no_weight_decay(self) -> set[str]:
        """Names of the parameters exempt from weight decay: the joint and time embeddings."""
        return {"joint_embed", "time_embed"}

    def layer_id(self, name: str) -> int:
        """Layer of a parameter for layer-wise learning-rate decay (BEiT numbering).

        Args:
            name: A name from ``named_parameters`` of this encoder.

        Returns:
            0 for the embeddings, ``i + 1`` for block ``i``, ``depth + 1`` for the final norm.

        Raises:
            ValueError: If ``name`` is not a parameter name of this encoder.

        Examples:
            >>> from skelmask.models import SkeletonEncoder
            >>> encoder = SkeletonEncoder(num_joints=20, num_frames=8, embed_dim=16, depth=2)
            >>> [
            ...     encoder.layer_id(n)
            ...     for n in ("time_embed", "blocks.1.attn.qkv.weight", "norm.bias")
            ... ]
            [0, 2, 3]
        """
        if name.startswith(_EMBEDDING_PREFIXES):
            return 0
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        if name.startswith("norm."):
            return self.depth + 1
        raise ValueError(f"{name!r} is not a parameter name of SkeletonEncoder")

    def extra_repr(self) -> str:
        """The geometry, shown by ``repr``."""
        return (
            f"num_frames={self.num_frames}, num_joints={self.num_joints}, "
            f"t_patch={self.t_patch}, in_channels={self.in_channels}, "
            f"hyperbolic={self.hyperbolic}"
        )
