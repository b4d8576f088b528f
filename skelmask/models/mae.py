"""A skeleton masked autoencoder that takes any skelmask masker: MAE, MAMP and HA-CM in one model.

References:
    - MAE: He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022.
    - MAMP: Mao et al., "Masked Motion Predictors are Strong 3D Action Representation
      Learners", ICCV 2023.
    - HA-CM: Yin & Cao, "Spatial Hierarchy and Temporal Attention Guided Cross Masking for
      Self-supervised Skeleton-based Action Recognition", arXiv:2409.17951, 2024.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from skelmask._checks import check_flags, check_positive_int
from skelmask.losses import (
    CrossContrastLoss,
    MaskedReconstructionLoss,
    coordinate_target,
    motion_target,
)
from skelmask.maskers.base import Masker
from skelmask.maskers.cross import CrossMasker
from skelmask.models.blocks import Block, check_heads, init_weights
from skelmask.models.encoder import SkeletonEncoder
from skelmask.tokens import MaskResult, flatten_grid, gather_tokens, restore_tokens

__all__ = ["MAEOutput", "Target", "TransformerMAE"]

Target = Literal["motion", "coords", "acceleration"]
"""Reconstruction target: frame-difference motion (MAMP, HA-CM), raw coordinates (MAE) or the
second-order difference of the coordinates (acceleration)."""

_TARGETS: tuple[Target, ...] = ("motion", "coords", "acceleration")


@dataclass(frozen=True)
class MAEOutput:
    """What ``TransformerMAE`` returns.

    Attributes:
        loss: Scalar float32 total loss, the sum of ``losses``.
        losses: Each term by name: ``"reconstruction"``, and ``"contrast"`` when the model has a
            contrast loss.
        pred: ``(B, L, P)`` decoder predictions of every token, time-major, with ``B = N·M``,
            ``L = Tp·V`` and ``P = t_patch·C``.
        mask: Bool ``(B, L)``; True where the token was hidden from the encoder.
    """

    loss: torch.Tensor
    losses: dict[str, torch.Tensor]
    pred: torch.Tensor
    mask: torch.Tensor


class TransformerMAE(nn.Module):
    """Masked autoencoder of skeleton sequences with a pluggable masker.

    ``forward`` turns a batch ``(N, C, T, V, M)`` into ``B = N·M`` single-person clips
    ``(B, T, V, C)`` and

    1. embeds them as a token grid ``(B, Tp, V, D)`` (``SkeletonEncoder.embed``);
    2. asks the masker which tokens to hide, passing it the Euclidean token grid (before the
       Poincaré map of a hyperbolic encoder) and the coordinates;
    3. encodes the ``K`` visible tokens (``SkeletonEncoder.encode``);
    4. decodes: ``decoder_embed`` to width ``D'``, every visible token back in its own slot and a
       learnable mask token in every hidden slot (``restore_tokens``), decoder
       joint and time embeddings added at each token's true ``(t, v)``, ``decoder_depth``
       blocks, LayerNorm and a linear layer to ``P = t_patch·C`` values per token;
    5. scores the hidden tokens only (``MaskedReconstructionLoss``) against the
       target, frame-difference motion (MAMP, HA-CM), coordinates (MAE) or acceleration (the
       second-order difference, ``motion_target(order=2)``), normalised per patch;
    6. with ``contrast``, adds HA-CM's ``CrossContrastLoss`` on the encoder
       outputs of the visible tokens, grouped by ``CrossMasker.visible_branch``; persons whose input is
       all zeros (padded second bodies) are left out of it.

    Unlike HA-CM's official code the visible tokens of both cross-masking branches reach the
    decoder in their own slots, and the mask, the target and the decoder embeddings share one
    time-major order (``docs/hacm.md``, rows H1-H3).

    Args:
        encoder: The encoder; its geometry fixes ``T``, ``V``, ``C`` and ``t_patch``.
        masker: Any skelmask masker for the ``(Tp, V)`` grid. A masker reading coordinates must
            use the encoder's ``t_patch``.
        decoder_dim: Decoder width ``D'``.
        decoder_depth: Decoder blocks.
        decoder_heads: Decoder attention heads; must divide ``decoder_dim``.
        target: ``"motion"``, ``"coords"`` or ``"acceleration"``.
        normalize_target: Normalise every target patch to zero mean and unit variance.
        target_eps: Added to each patch's variance before normalising (MAMP, HA-CM: 1e-6). It
            sets the noise floor in squared coordinate units: patches whose variance is well
            below it are shrunk toward zero instead of being scaled up to unit variance. For
            motion in metres, 1e-6 is a 1 mm floor. A larger floor treats more slow motion as
            still; on MSR Action3D, 1e-4 did not help (``docs/results-msr-targets.md``).
        contrast: Optional cross-contrast loss; then the masker must be a ``CrossMasker``,
            which tells the branch of every visible token.

    Raises:
        TypeError: If ``normalize_target`` is not a bool.
        ValueError: On a non-positive decoder size, heads that do not divide the width, an
            unknown target, or a contrast loss without a ``CrossMasker``.
        TypeError: If ``encoder`` or ``masker`` has the wrong type.

    Examples:
        >>> from skelmask.models import SkeletonEncoder, TransformerMAE
        >>> encoder = SkeletonEncoder(
        ...     num_joints=20, num_frames=8, embed_dim=16, depth=1, num_heads=2
        ... )
        >>> mae = TransformerMAE(
        ...     encoder, RandomMasker(0.75), decoder_dim=8, decoder_depth=1, decoder_heads=2
        ... )
        >>> out = mae(torch.randn(3, 3, 8, 20, 1))  # (N, C, T, V, M)
        >>> out.pred.shape, out.mask.shape, int(out.mask.sum(dim=1)[0])  # (B, L, P), (B, L)
        (torch.Size([3, 40, 12]), torch.Size([3, 40]), 30)
    """

    def __init__(
        self,
        encoder: SkeletonEncoder,
        masker: Masker,
        *,
        decoder_dim: int = 256,
        decoder_depth: int = 3,
        decoder_heads: int = 8,
        target: Target = "motion",
        normalize_target: bool = True,
        target_eps: float = 1e-6,
        contrast: CrossContrastLoss | None = None,
    ) -> None:
        super().__init__()
        check_flags(normalize_target=normalize_target)
        if not isinstance(encoder, SkeletonEncoder):
            raise TypeError(f"encoder must be a SkeletonEncoder, got {type(encoder).__name__}")
        if not isinstance(masker, Masker):
            raise TypeError(f"masker must be a skelmask Masker, got {type(masker).__name__}")
        if target not in _TARGETS:
            raise ValueError(f"target must be one of {list(_TARGETS)}, got {target!r}")
        if contrast is not None and not isinstance(masker, CrossMasker):
            raise ValueError(
                "the contrast loss needs the branch of every visible token, which only a "
                f"CrossMasker tells; got masker {type(masker).__name__}"
            )
        check_positive_int(decoder_depth, "decoder_depth")
        check_heads(decoder_dim, decoder_heads, "decoder_dim", "decoder_heads")
        self.encoder = encoder
        self.masker = masker
        self.target: Target = target
        self.contrast = contrast
        self.reconstruction = MaskedReconstructionLoss(
            normalize_target=normalize_target, eps=target_eps
        )
        time_patches, joints = encoder.grid_size
        self.decoder_embed = nn.Linear(encoder.embed_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_joint_embed = nn.Parameter(torch.zeros(1, 1, joints, decoder_dim))
        self.decoder_time_embed = nn.Parameter(torch.zeros(1, time_patches, 1, decoder_dim))
        self.decoder_blocks = nn.ModuleList(
            Block(decoder_dim, decoder_heads, mlp_ratio=4.0) for _ in range(decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, encoder.t_patch * encoder.in_channels)
        for module in (
            self.decoder_embed,
            self.decoder_blocks,
            self.decoder_norm,
            self.decoder_pred,
        ):
            module.apply(init_weights)
        for parameter in (self.mask_token, self.decoder_joint_embed, self.decoder_time_embed):
            nn.init.trunc_normal_(parameter, std=0.02)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> MAEOutput:
        """Masks, encodes, decodes and scores a batch.

        Args:
            x: ``(N, C, T, V, M)`` batch with the encoder's ``C``, ``T`` and ``V``.
            generator: Optional ``torch.Generator`` on ``x``'s device for a reproducible mask
                (eager mode only; leave None under ``torch.compile``).

        Returns:
            The losses, the predictions ``(B, L, P)`` and the mask ``(B, L)``, ``B = N·M``.

        Raises:
            ValueError: If ``x`` has the wrong shape.
        """
        coords = self.encoder.split_bodies(x)
        euclidean = self.encoder.embed_euclidean(coords)
        tokens = flatten_grid(self.encoder.manifold(euclidean))
        result: MaskResult = self.masker(euclidean, coords=coords, generator=generator)
        latent = self.encoder.encode(gather_tokens(tokens, result.ids_keep))
        pred = self.decode(latent, result.ids_restore)
        if self.target == "coords":
            target = coordinate_target(coords, self.encoder.t_patch)
        else:
            order = 2 if self.target == "acceleration" else 1
            target = motion_target(coords, self.encoder.t_patch, order=order)
        losses = {"reconstruction": self.reconstruction(pred, target, result.mask)}
        if self.contrast is not None:
            assert isinstance(self.masker, CrossMasker)  # checked by the constructor
            valid = coords.flatten(1).ne(0).any(dim=1)
            branch = self.masker.visible_branch(result)
            losses["contrast"] = self.contrast(latent, branch, valid=valid)
        loss = torch.stack(list(losses.values())).sum()
        return MAEOutput(loss=loss, losses=losses, pred=pred, mask=result.mask)

    def decode(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Predicts every token of the grid from the encoded visible tokens.

        Args:
            latent: ``(B, K, D)`` encoder outputs in ``ids_keep`` order.
            ids_restore: Int64 ``(B, L)`` from the mask result.

        Returns:
            ``(B, L, P)`` predictions, time-major.
        """
        tokens = restore_tokens(self.decoder_embed(latent), ids_restore, self.mask_token)
        tokens = tokens + flatten_grid(self.decoder_joint_embed + self.decoder_time_embed)
        for block in self.decoder_blocks:
            tokens = block(tokens)
        pred: torch.Tensor = self.decoder_pred(self.decoder_norm(tokens))
        return pred

    def no_weight_decay(self) -> set[str]:
        """Names of the parameters exempt from weight decay: embeddings and the mask token."""
        decoder = {"mask_token", "decoder_joint_embed", "decoder_time_embed"}
        return decoder | {f"encoder.{name}" for name in self.encoder.no_weight_decay()}

    def extra_repr(self) -> str:
        """The target, shown by ``repr``."""
        return f"target={self.target!r}"
