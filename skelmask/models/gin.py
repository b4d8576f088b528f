"""A graph-isomorphism-network encoder and SkeletonMAE-style graph masked-autoencoder pretraining.

References:
    - GIN: Xu, Hu, Leskovec, Jegelka, "How Powerful are Graph Neural Networks?", ICLR 2019.
    - GraphMAE: Hou et al., "GraphMAE: Self-Supervised Masked Graph Autoencoders", KDD 2022
      (mask token, re-mask before the decoder, scaled cosine error).
    - SkeletonMAE: Yan, Liu, Wei, Li, Li, Lin, "SkeletonMAE: Graph-based Masked Autoencoder for
      Skeleton Sequence Pre-training", ICCV 2023, arXiv:2307.08476. Its code was never
      published; this follows the paper text.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from skelmask._checks import check_positive_int
from skelmask.layouts import SkeletonLayout, get_layout
from skelmask.losses.cosine import ScaledCosineError
from skelmask.maskers.base import Masker
from skelmask.maskers.body_part import BodyPartMasker
from skelmask.models.blocks import check_floating
from skelmask.models.mae import MAEOutput

__all__ = ["GINEncoder", "GINLayer", "GINSkeletonMAE"]


class GINLayer(nn.Module):
    """One GIN layer over a fixed graph: ``h_i' = MLP((1 + ε)·h_i + Σ_{j ∈ N(i)} h_j)``.

    The MLP is ``Linear → LayerNorm → PReLU (one slope) → Linear``. Every leading axis of the
    input is a separate graph (a frame of a clip), so the layer runs on all frames at once.

    Args:
        in_dim: Input width.
        out_dim: Output width.
        adjacency: ``(V, V)`` 0/1 (or weighted) adjacency without self loops, e.g.
            ``layout.adjacency()``; ``N(i)`` are the nonzero entries of row ``i``.
        hidden_dim: Width inside the MLP; defaults to ``2·out_dim``.
        eps: Initial ``ε``.
        train_eps: Learn ``ε`` (GIN-ε) instead of keeping it fixed.

    Raises:
        ValueError: If a width is not a positive integer or ``adjacency`` is not square.

    Examples:
        >>> from skelmask.layouts import get_layout
        >>> layer = GINLayer(8, 16, get_layout("coco").adjacency())
        >>> layer(torch.randn(2, 5, 17, 8)).shape  # (B, T, V, D)
        torch.Size([2, 5, 17, 16])
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        adjacency: torch.Tensor,
        *,
        hidden_dim: int | None = None,
        eps: float = 0.0,
        train_eps: bool = False,
    ) -> None:
        super().__init__()
        check_positive_int(in_dim, "in_dim")
        check_positive_int(out_dim, "out_dim")
        hidden = 2 * out_dim if hidden_dim is None else check_positive_int(hidden_dim, "hidden_dim")
        if adjacency.dim() != 2 or adjacency.shape[0] != adjacency.shape[1]:
            raise ValueError(
                f"adjacency must be a square (V, V) matrix, got shape {tuple(adjacency.shape)}"
            )
        self.adjacency: torch.Tensor
        self.register_buffer("adjacency", adjacency.detach().float().clone(), persistent=False)
        initial = torch.tensor(float(eps))
        self.eps: torch.Tensor
        if train_eps:
            self.eps = nn.Parameter(initial)
        else:
            self.register_buffer("eps", initial, persistent=False)
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.LayerNorm(hidden),
            nn.PReLU(),
            nn.Linear(hidden, out_dim),
        )

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        """``(1 + ε)·h_i + Σ_{j ∈ N(i)} h_j`` for every joint.

        Args:
            x: ``(..., V, D)`` joint features.

        Returns:
            ``(..., V, D)``, the dtype of ``x``.

        Raises:
            ValueError: If the joint axis does not have ``V`` entries.
        """
        joints = self.adjacency.shape[0]
        if x.dim() < 2 or x.shape[-2] != joints:
            raise ValueError(
                f"x must have shape (..., V, D) with V = {joints} joints, got {tuple(x.shape)}"
            )
        neighbours = torch.einsum("uv,...vd->...ud", self.adjacency.to(x.dtype), x)
        return (1 + self.eps.to(x.dtype)) * x + neighbours

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., V, in_dim)`` → ``(..., V, out_dim)``."""
        out: torch.Tensor = self.mlp(self.aggregate(x))
        return out


class GINEncoder(nn.Module):
    """Per-frame GIN encoder of skeleton sequences with a parameter-free temporal read-out.

    Every frame is a graph over the layout's bones (SkeletonMAE's spatial encoder, Sec. 3.1):
    joints are linearly embedded to width ``W``, a learned per-joint embedding is added (GIN is
    permutation-equivariant, so without it two symmetric limbs look alike), then ``depth`` GIN
    layers each followed by a PReLU, and a final LayerNorm. ``forward_features`` averages the
    joints of every frame, cuts the clip into ``temporal_segments`` equal spans with adaptive
    average pooling (a multi-scale temporal pooling without parameters, so that pretraining
    leaves none unused) and concatenates them: ``embed_dim = W · temporal_segments``. Padded
    (all-zero) frames and persons are averaged in like the others.

    Args:
        layout: Layout (or registered name); its joint count and bones define the graph.
        in_channels: Coordinates per joint ``C``.
        width: Width ``W`` of the joint features.
        depth: GIN layers (SkeletonMAE: 3).
        mlp_ratio: Width of every GIN MLP relative to ``W``.
        temporal_segments: Spans the clip is pooled into for ``forward_features``.

    Raises:
        ValueError: If a size is not a positive integer.
        KeyError: If ``layout`` is an unknown name.

    Examples:
        >>> encoder = GINEncoder("msr-action3d", width=16, depth=2, temporal_segments=2)
        >>> encoder.forward_features(torch.randn(4, 3, 10, 20, 1)).shape  # (N, C, T, V, M)
        torch.Size([4, 32])
    """

    def __init__(
        self,
        layout: str | SkeletonLayout,
        *,
        in_channels: int = 3,
        width: int = 64,
        depth: int = 3,
        mlp_ratio: int = 2,
        temporal_segments: int = 4,
    ) -> None:
        super().__init__()
        self.layout = get_layout(layout)
        self.num_joints = self.layout.num_joints
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.width = check_positive_int(width, "width")
        self.depth = check_positive_int(depth, "depth")
        self.temporal_segments = check_positive_int(temporal_segments, "temporal_segments")
        check_positive_int(mlp_ratio, "mlp_ratio")
        self.embed_dim = width * temporal_segments
        adjacency = self.layout.adjacency()
        self.input_embed = nn.Linear(in_channels, width)
        self.joint_embed = nn.Parameter(torch.zeros(self.num_joints, width))
        self.layers = nn.ModuleList(
            GINLayer(width, width, adjacency, hidden_dim=mlp_ratio * width) for _ in range(depth)
        )
        self.activations = nn.ModuleList(nn.PReLU() for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        nn.init.trunc_normal_(self.joint_embed, std=0.02)

    def split_bodies(self, x: torch.Tensor) -> torch.Tensor:
        """Checks a dataset batch and turns every person into its own sample.

        Args:
            x: ``(N, C, T, V, M)`` with ``C = in_channels`` and ``V`` the layout's joints.

        Returns:
            ``(N·M, T, V, C)``; row ``n·M + m`` is person ``m`` of clip ``n``.

        Raises:
            ValueError: If ``x`` does not have that shape.
            TypeError: If ``x`` is not a floating-point tensor or (outside autocast) not of the
                parameters' dtype.
        """
        check_floating(x, dtype=self.input_embed.weight.dtype)
        if (
            x.dim() != 5
            or x.shape[1] != self.in_channels
            or x.shape[3] != self.num_joints
            or 0 in (x.shape[0], x.shape[2], x.shape[4])
        ):
            raise ValueError(
                f"x must have shape (N, C, T, V, M) with C == in_channels = {self.in_channels}, "
                f"V == {self.num_joints} joints of layout {self.layout.name!r} and N, T, M ≥ 1, "
                f"got {tuple(x.shape)}"
            )
        return rearrange(x, "n c t v m -> (n m) t v c")

    def embed(self, coords: torch.Tensor) -> torch.Tensor:
        """Linear joint embedding: ``(B, T, V, C)`` → ``(B, T, V, W)``."""
        out: torch.Tensor = self.input_embed(coords)
        return out

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Adds the joint embedding and runs the GIN layers on every frame.

        Args:
            tokens: ``(B, T, V, W)`` embedded (possibly masked) joints.

        Returns:
            ``(B, T, V, W)``.

        Raises:
            ValueError: If ``tokens`` does not have that shape.
        """
        if tokens.dim() != 4 or tuple(tokens.shape[2:]) != (self.num_joints, self.width):
            raise ValueError(
                f"tokens must have shape (B, T, V, W) with V = {self.num_joints} and "
                f"W == width = {self.width}, got {tuple(tokens.shape)}"
            )
        hidden = tokens + self.joint_embed
        for layer, activation in zip(self.layers, self.activations, strict=True):
            hidden = activation(layer(hidden))
        out: torch.Tensor = self.norm(hidden)
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clip features for a linear probe or a classifier head.

        Args:
            x: ``(N, C, T, V, M)`` batch (see ``split_bodies``).

        Returns:
            ``(N, embed_dim)``: per segment, the mean over its frames and all joints, segments
            concatenated, then averaged over persons.
        """
        hidden = self.encode(self.embed(self.split_bodies(x)))
        per_frame = rearrange(hidden.mean(dim=2), "b t d -> b d t")
        segments = F.adaptive_avg_pool1d(per_frame, self.temporal_segments)
        features = rearrange(segments, "(n m) d s -> n m (s d)", m=x.shape[4])
        return features.mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as ``forward_features``: ``(N, C, T, V, M)`` → ``(N, embed_dim)``."""
        return self.forward_features(x)

    def no_weight_decay(self) -> set[str]:
        """Names of the parameters exempt from weight decay: the joint embedding."""
        return {"joint_embed"}

    def extra_repr(self) -> str:
        """The layout and sizes, shown by ``repr``."""
        return (
            f"layout={self.layout.name!r}, width={self.width}, depth={self.depth}, "
            f"temporal_segments={self.temporal_segments}"
        )


class GINSkeletonMAE(nn.Module):
    """SkeletonMAE-style pretraining: hide body parts, encode each frame's graph, rebuild them.

    ``forward`` on a batch ``(N, C, T, V, M)`` works on ``B = N·M`` single-person clips:

    1. embeds every joint of every frame (``GINEncoder.embed``) into a ``(B, T, V, W)``
       grid (one token per joint and frame);
    2. asks the masker which joints to hide (default:
       ``BodyPartMasker`` with two random parts per frame,
       since the GIN treats frames independently);
    3. replaces every hidden joint's embedding by one learnable mask token and encodes
       (``GINEncoder.encode``);
    4. maps the codes to the decoder (a bias-free linear layer), optionally re-masks the hidden
       joints' codes to zero (GraphMAE's ``remask=True``), adds a learned decoder joint
       embedding (so that a hidden joint with no visible neighbour still knows which joint it
       is) and decodes with ``decoder_depth`` light GIN layers, the last one producing ``C``
       coordinates per joint;
    5. scores the reconstruction of the hidden joints' **coordinates** with
       ``ScaledCosineError`` (``β = 2``). Joints whose target is
       all zero (padded frames or persons) are left out, since their direction is undefined.

    Re-masking is off by default: the paper does not say whether it re-masks, and with whole
    body parts hidden most hidden joints have no visible neighbour, so a re-masked one-layer
    decoder sees little more than the joint's identity. On the built-in synthetic data
    (``examples/train_skeletonmae.py --epochs 6``, one seed) the scaled cosine error ended at 0.33
    with re-masking and 0.27 without.

    The paper reconstructs the linearly embedded features; a learnable target invites collapse,
    so the raw coordinates are the target here. Every parameter takes part
    in the loss, so DDP runs with ``find_unused_parameters=False``.

    Args:
        encoder: The GIN encoder; what downstream evaluation uses.
        masker: Any masker of the ``(T, V)`` grid of joints (``t_patch = v_patch = 1``); None
            builds the default above from the encoder's layout.
        decoder_depth: GIN layers of the decoder (SkeletonMAE: 1).
        remask: Zero the hidden joints' codes before the decoder (GraphMAE).
        beta: Exponent of the scaled cosine error.

    Raises:
        TypeError: If ``encoder`` or ``masker`` has the wrong type.
        ValueError: If ``decoder_depth`` is not a positive integer or ``beta < 1``.

    Examples:
        >>> encoder = GINEncoder("nw-ucla", width=16, depth=2)
        >>> model = GINSkeletonMAE(encoder)
        >>> out = model(torch.randn(2, 3, 6, 20, 1))  # (N, C, T, V, M)
        >>> out.loss.shape, out.pred.shape, int(out.mask.sum(dim=1)[0])  # (B, T·V, C), (B, T·V)
        (torch.Size([]), torch.Size([2, 120, 3]), 48)
    """

    def __init__(
        self,
        encoder: GINEncoder,
        masker: Masker | None = None,
        *,
        decoder_depth: int = 1,
        remask: bool = False,
        beta: float = 2.0,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, GINEncoder):
            raise TypeError(f"encoder must be a GINEncoder, got {type(encoder).__name__}")
        if masker is None:
            masker = BodyPartMasker(num_parts=2, layout=encoder.layout, draw_per="time_patch")
        elif not isinstance(masker, Masker):
            raise TypeError(f"masker must be a Masker, got {type(masker).__name__}")
        check_positive_int(decoder_depth, "decoder_depth")
        self.encoder = encoder
        self.masker = masker
        self.remask = remask
        width = encoder.width
        adjacency = encoder.layout.adjacency()
        self.mask_token = nn.Parameter(torch.zeros(width))
        self.encoder_to_decoder = nn.Linear(width, width, bias=False)
        self.decoder_joint_embed = nn.Parameter(torch.zeros(encoder.num_joints, width))
        widths = [width] * decoder_depth + [encoder.in_channels]
        self.decoder_layers = nn.ModuleList(
            GINLayer(widths[i], widths[i + 1], adjacency) for i in range(decoder_depth)
        )
        self.decoder_activations = nn.ModuleList(nn.PReLU() for _ in range(decoder_depth - 1))
        self.criterion = ScaledCosineError(beta)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.decoder_joint_embed, std=0.02)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> MAEOutput:
        """Masks, encodes, decodes and scores a batch.

        Args:
            x: ``(N, C, T, V, M)`` batch with the encoder's ``C`` and ``V``.
            generator: Optional ``torch.Generator`` on ``x``'s device for a reproducible mask
                (eager mode only).

        Returns:
            ``loss`` (scalar float32), ``losses`` (``"reconstruction"``), ``pred``
            ``(B, T·V, C)`` (every joint's reconstruction, time-major) and ``mask`` bool
            ``(B, T·V)`` (True = hidden), ``B = N·M``.

        Raises:
            ValueError: If ``x`` has the wrong shape or the masker does not fit the grid.
        """
        coords = self.encoder.split_bodies(x)
        tokens = self.encoder.embed(coords)
        result = self.masker(tokens, coords=coords, generator=generator)
        hidden = result.grid_mask.unsqueeze(-1)
        masked = torch.where(hidden, self.mask_token.to(tokens.dtype), tokens)
        codes = self.encoder_to_decoder(self.encoder.encode(masked))
        if self.remask:
            codes = codes.masked_fill(hidden, 0.0)
        pred = self.decode(codes + self.decoder_joint_embed)
        loss = self.reconstruction_loss(pred, coords, result.grid_mask)
        return MAEOutput(
            loss=loss,
            losses={"reconstruction": loss},
            pred=pred.flatten(1, 2),
            mask=result.mask,
        )

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``(B, T, V, W)`` decoder inputs → ``(B, T, V, C)`` coordinates."""
        for index, layer in enumerate(self.decoder_layers):
            codes = layer(codes)
            if index < len(self.decoder_activations):
                codes = self.decoder_activations[index](codes)
        return codes

    def reconstruction_loss(
        self, pred: torch.Tensor, target: torch.Tensor, hidden: torch.Tensor
    ) -> torch.Tensor:
        """Scaled cosine error over the hidden joints whose target is not all zero.

        Args:
            pred: ``(B, T, V, C)`` reconstructed coordinates.
            target: ``(B, T, V, C)`` true coordinates.
            hidden: Bool ``(B, T, V)``; True where the joint was hidden.

        Returns:
            Float32 scalar.
        """
        scored = hidden & target.ne(0).any(dim=-1)
        loss: torch.Tensor = self.criterion(pred, target, scored)
        return loss

    def no_weight_decay(self) -> set[str]:
        """Names of the parameters exempt from weight decay: the mask token, joint embeddings."""
        own = {"mask_token", "decoder_joint_embed"}
        return own | {f"encoder.{name}" for name in self.encoder.no_weight_decay()}

    def extra_repr(self) -> str:
        """The re-mask setting, shown by ``repr``."""
        return f"remask={self.remask}"
