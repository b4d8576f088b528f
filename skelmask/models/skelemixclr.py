"""SkeleMixCLR: MoCo contrastive pretraining with spatio-temporally mixed skeleton sequences.

References:
    - SkeleMixCLR: Chen et al., "Contrastive Learning from Spatio-Temporal Mixed Skeleton
      Sequences for Self-Supervised Skeleton-Based Action Recognition", arXiv:2207.03065, 2022.
    - SkeletonCLR / CrosSCLR: Li et al., "3D Human Action Representation Learning via
      Cross-View Consistency Pursuit", CVPR 2021 (the MoCo baseline SkeleMixCLR extends).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import einsum
from torch import nn

from skelmask._checks import check_positive_int
from skelmask.layouts import SkeletonLayout
from skelmask.losses.skelemix import MoCoQueue, SkeleMixContrastLoss
from skelmask.maskers.skelemix import SkeleMix, mask_pool
from skelmask.models.stgcn import STGCN

__all__ = ["SkeleMixCLR", "SkeleMixCLROutput", "random_shear"]


@dataclass(frozen=True)
class SkeleMixCLROutput:
    """What ``SkeleMixCLR`` returns.

    Attributes:
        loss: Scalar float32 total loss.
        losses: Each term by name: ``"instance"``, ``"trimmed"`` and ``"truncated"`` (see
            ``SkeleMixContrastLoss``).
        donor: Int64 ``(N,)``; the donor of every sample in the mixed view.
        feature_mask: Bool ``(N, T', V)``; the donor's region on the encoder's output frames.
    """

    loss: torch.Tensor
    losses: dict[str, torch.Tensor]
    donor: torch.Tensor
    feature_mask: torch.Tensor


def random_shear(
    x: torch.Tensor,
    amplitude: float,
    *,
    spatial_dims: int = 3,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Multiplies each sample's coordinates by its own random shear (SkeletonCLR's augmentation).

    The matrix has a unit diagonal and off-diagonal entries drawn uniformly from
    ``(−amplitude, amplitude)``, independently per sample; the first ``spatial_dims`` channels
    are transformed and any further channels (e.g. a confidence score) are left as they are.

    Args:
        x: ``(N, C, T, V, M)`` with ``C ≥ spatial_dims``.
        amplitude: Largest absolute off-diagonal entry, ≥ 0; 0 returns ``x`` unchanged.
        spatial_dims: Leading coordinate channels to shear, in ``[1, C]``.
        generator: Optional RNG on ``x``'s device, for reproducible draws.

    Returns:
        ``(N, C, T, V, M)``, same dtype as ``x``.

    Raises:
        ValueError: If ``amplitude`` is negative or ``spatial_dims`` is out of range.

    Examples:
        >>> x = torch.randn(2, 3, 4, 5, 1)
        >>> torch.equal(random_shear(x, 0.0), x)
        True
        >>> random_shear(x, 0.5).shape
        torch.Size([2, 3, 4, 5, 1])
    """
    if not amplitude >= 0.0:
        raise ValueError(f"amplitude must be >= 0, got {amplitude!r}")
    if not 1 <= spatial_dims <= x.shape[1]:
        raise ValueError(f"spatial_dims must be in [1, C] = [1, {x.shape[1]}], got {spatial_dims}")
    if amplitude == 0.0:
        return x
    batch = x.shape[0]
    shape = (batch, spatial_dims, spatial_dims)
    # Passing generator=None explicitly breaks torch.compile with dynamic shapes.
    if generator is None:
        noise = torch.rand(shape, device=x.device)
    else:
        noise = torch.rand(shape, device=x.device, generator=generator)
    eye = torch.eye(spatial_dims, device=x.device)
    shear = eye + (1.0 - eye) * (2.0 * noise - 1.0) * amplitude
    coords = einsum(shear.to(x.dtype), x[:, :spatial_dims], "n i j, n j t v m -> n i t v m")
    return torch.cat([coords, x[:, spatial_dims:]], dim=1)


class SkeleMixCLR(nn.Module):
    """SkeleMixCLR: a MoCo v2 skeleton encoder trained with SkeleMix's trimmed/truncated views.

    One training step on a batch ``x`` of already augmented clips (``(N, C, T, V, M)``):

    1. **Two views.** skelmask's training engine hands the model one augmented clip per sample,
       whereas SkeleMixCLR augments each sample twice. The model therefore draws two
       independent random shears (``random_shear``, amplitude ``shear_amplitude``, the
       shear of SkeleMixCLR's augmentation) of the same clip: the query view and the key view.
       The views share the dataset's crop and rotation and differ only by their shears;
       ``shear_amplitude=0`` uses the same clip for both.
    2. **Query** ``q``: the query encoder's pooled features through the projection MLP
       (Linear, BN, ReLU, Linear), L2-normalised.
    3. **Mix**: ``SkeleMix`` mixes the query view; the query
       encoder's feature map of the mixed batch is mask-pooled
       (``mask_pool``) into the trimmed view ``p`` (donor
       fragment) and the truncated view ``c`` (rest of the sample), each passed through the same
       projection MLP in its own call.
    4. **Key** ``k``: in training mode the key encoder and head first move towards the query
       ones by ``θ_k ← m·θ_k + (1 − m)·θ_q``; then the key view is encoded without gradient.
    5. **Loss**: ``SkeleMixContrastLoss`` with the queue as
       negatives; then, in training mode, the keys are enqueued.

    This is SkeleMixCLR with one mixed view per step; SkeleMixCLR+'s several independently
    mixed copies per step are not implemented.

    In eval mode the momentum update and the enqueue are skipped, so evaluating the loss leaves
    the model unchanged. The key encoder, key head and queue have no trainable parameters; every
    parameter of ``encoder`` and the projection head receives a gradient. BN statistics are per
    process (no MoCo shuffle-BN).

    Args:
        encoder: The query encoder (its copy becomes the key encoder); ``.encoder`` after
            pretraining is what linear probes use.
        layout: The skeleton layout of the data (its body parts drive SkeleMix).
        feature_dim: Width of the projected, normalised embeddings (128 in the reference).
        queue_size: Number of queued negative keys ``K`` (32768 in the reference).
        momentum: Key-encoder momentum ``m`` in ``[0, 1]`` (0.999 in the reference).
        temperature: InfoNCE temperature (0.2 in the released config).
        mix_weight: Weight of the mixed-view terms (1 in the reference).
        num_parts: Body parts per mixed region (see ``SkeleMix``).
        segment_ratio: Segment length bounds as fractions of ``T'``. The defaults of both are
            the ranges of the only released config (SkeleMixCLR+'s; SkeleMixCLR's own is not
            public).
        per_sample_regions: One region per sample instead of one per batch.
        shear_amplitude: Largest off-diagonal shear entry of the two views, ≥ 0 (0.5 in the
            reference).
        spatial_dims: Coordinate channels to shear; default ``min(C, 3)``.
        gather_distributed: Gather keys across ranks before enqueueing them (use under DDP).

    Raises:
        ValueError: If an argument is out of range or ``layout`` does not match ``encoder``.

    Examples:
        >>> from skelmask.layouts import get_layout
        >>> from skelmask.models.stgcn import STGCN
        >>> layout = get_layout("msr-action3d")
        >>> encoder = STGCN(layout, channels=(8, 16), strides=(2, 2))
        >>> model = SkeleMixCLR(encoder, layout, feature_dim=8, queue_size=32)
        >>> output = model(torch.randn(4, 3, 8, 20, 1))
        >>> output.loss.shape, output.feature_mask.shape
        (torch.Size([]), torch.Size([4, 2, 20]))
    """

    def __init__(
        self,
        encoder: STGCN,
        layout: SkeletonLayout,
        *,
        feature_dim: int = 128,
        queue_size: int = 32768,
        momentum: float = 0.999,
        temperature: float = 0.2,
        mix_weight: float = 1.0,
        num_parts: tuple[int, int] = (2, 3),
        segment_ratio: tuple[float, float] = (7 / 16, 11 / 16),
        per_sample_regions: bool = False,
        shear_amplitude: float = 0.5,
        spatial_dims: int | None = None,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        if layout.num_joints != encoder.num_joints:
            raise ValueError(
                f"layout {layout.name!r} has {layout.num_joints} joints but the encoder was "
                f"built for {encoder.num_joints}"
            )
        check_positive_int(feature_dim, "feature_dim")
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        if not float(shear_amplitude) >= 0.0:
            raise ValueError(f"shear_amplitude must be >= 0, got {shear_amplitude!r}")
        if spatial_dims is None:
            spatial_dims = min(encoder.in_channels, 3)
        if not 1 <= spatial_dims <= encoder.in_channels:
            raise ValueError(
                f"spatial_dims must be in [1, in_channels] = [1, {encoder.in_channels}], got "
                f"{spatial_dims!r}"
            )
        self.momentum = float(momentum)
        self.shear_amplitude = float(shear_amplitude)
        self.spatial_dims = spatial_dims
        self.encoder = encoder
        self.head = _projection_head(encoder.embed_dim, feature_dim)
        self.key_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.key_head = copy.deepcopy(self.head).requires_grad_(False)
        self.queue = MoCoQueue(queue_size, feature_dim, gather_distributed=gather_distributed)
        self.skelemix = SkeleMix(
            layout,
            num_parts=num_parts,
            segment_ratio=segment_ratio,
            t_patch=encoder.temporal_stride,
            per_sample=per_sample_regions,
        )
        self.criterion = SkeleMixContrastLoss(temperature, mix_weight=mix_weight)

    def forward(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> SkeleMixCLROutput:
        """Computes the pretraining loss of a batch (see the class docstring for the steps).

        Args:
            x: ``(N, C, T, V, M)`` with ``N ≥ 2`` and ``T`` a multiple of the encoder's
                ``temporal_stride``.
            generator: Optional RNG on ``x``'s device for the shears and the mixing.

        Returns:
            The loss, its terms, the donors and the feature-level region mask.

        Raises:
            ValueError: If ``x`` does not have that shape.
        """
        if x.dim() != 5:
            raise ValueError(
                f"x must have shape (N, C, T, V, M), got {x.dim()} dimensions with shape "
                f"{tuple(x.shape)}"
            )
        query_view = random_shear(
            x, self.shear_amplitude, spatial_dims=self.spatial_dims, generator=generator
        )
        key_view = random_shear(
            x, self.shear_amplitude, spatial_dims=self.spatial_dims, generator=generator
        )
        mix = self.skelemix(query_view, generator=generator)
        query = self.head(self.encoder.forward_features(query_view))
        trimmed, truncated = mask_pool(self.encoder.forward_map(mix.mixed), mix.feature_mask)
        trimmed = self.head(trimmed)
        truncated = self.head(truncated)
        with torch.no_grad():
            if self.training:
                self._momentum_update()
            key = F.normalize(self.key_head(self.key_encoder.forward_features(key_view)), dim=1)
        losses = self.criterion(query, key, trimmed, truncated, mix.donor, self.queue.keys.clone())
        if self.training:
            self.queue.enqueue(key)
        return SkeleMixCLROutput(
            loss=losses.loss,
            losses={
                "instance": losses.instance,
                "trimmed": losses.trimmed,
                "truncated": losses.truncated,
            },
            donor=mix.donor,
            feature_mask=mix.feature_mask,
        )

    @torch.no_grad()
    def _momentum_update(self) -> None:
        """Moves the key encoder and head towards the query ones (exponential moving average)."""
        pairs = [(self.key_encoder, self.encoder), (self.key_head, self.head)]
        for key_module, query_module in pairs:
            for key_param, query_param in zip(
                key_module.parameters(), query_module.parameters(), strict=True
            ):
                key_param.lerp_(query_param.detach(), 1.0 - self.momentum)

    def extra_repr(self) -> str:
        """Constructor options not shown by the submodules."""
        return f"momentum={self.momentum}, shear_amplitude={self.shear_amplitude}"


def _projection_head(width: int, feature_dim: int) -> nn.Sequential:
    """MoCo v2's projection MLP: Linear, BN, ReLU, Linear."""
    return nn.Sequential(
        nn.Linear(width, width),
        nn.BatchNorm1d(width),
        nn.ReLU(inplace=True),
        nn.Linear(width, feature_dim),
    )
