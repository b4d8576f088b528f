"""A compact spatial-temporal graph convolution network (ST-GCN) built from a skeleton layout.

The default configuration is the quarter-width ST-GCN that SkeleMixCLR takes over from
SkeletonCLR/CrosSCLR: ten blocks of widths 16–16–16–16–32–32–32–64–64–256 with temporal stride 2
at blocks 5 and 8 (total stride 4), a 9-frame temporal kernel and dropout 0.5. Widths, strides,
kernel and dropout are arguments, and the graph comes from any
``SkeletonLayout``. The graph's centripetal and centrifugal subsets are
the "inward" and "outward" adjacencies of the 2s-AGCN-style graph those methods use, for the
layout's ``center``.

References:
    - ST-GCN: Yan, Xiong & Lin, "Spatial Temporal Graph Convolutional Networks for
      Skeleton-Based Action Recognition", AAAI 2018.
    - SkeleMixCLR: Chen et al., arXiv:2207.03065, 2022 (the 1/4-width configuration).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from einops import einsum, rearrange
from torch import nn

from skelmask._checks import check_flags, check_positive_int
from skelmask.layouts import SkeletonLayout
from skelmask.models.blocks import check_floating

__all__ = ["STGCN", "STGCNBlock", "spatial_partition"]

_DEFAULT_CHANNELS = (16, 16, 16, 16, 32, 32, 32, 64, 64, 256)
_DEFAULT_STRIDES = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)


def spatial_partition(layout: SkeletonLayout) -> torch.Tensor:
    """ST-GCN's "spatial" partition of every joint's neighbourhood into three subsets.

    Joints are ranked by their hop distance from ``layout.center``. For a receiving joint ``w``
    the three subsets are: itself; its neighbours **closer** to the centre (centripetal); its
    neighbours **farther** from it (centrifugal). On a tree no neighbour is at the same distance,
    so the first subset is exactly the identity. Each matrix is column-normalised (``A·D⁻¹``,
    ``D`` the column sums), so that ``w`` averages over the joints of each subset; columns with
    no neighbour in a subset stay zero.

    Args:
        layout: The skeleton.

    Returns:
        Float32 ``(3, V, V)``; ``A[k, v, w]`` is the weight with which joint ``v`` sends to
        joint ``w`` in subset ``k`` (identity, centripetal, centrifugal).

    Examples:
        >>> from skelmask.layouts import SkeletonLayout
        >>> chain = SkeletonLayout.from_parents([-1, 0, 1], center=1)  # 0 - 1 - 2
        >>> spatial_partition(chain)[2]  # joint 1 averages its two farther neighbours
        tensor([[0.0000, 0.5000, 0.0000],
                [0.0000, 0.0000, 0.0000],
                [0.0000, 0.5000, 0.0000]])
    """
    num_joints = layout.num_joints
    neighbours: list[list[int]] = [[] for _ in range(num_joints)]
    for child, parent in layout.edges:
        neighbours[child].append(parent)
        neighbours[parent].append(child)
    hops = [-1] * num_joints
    hops[layout.center] = 0
    frontier = [layout.center]
    for joint in frontier:
        for other in neighbours[joint]:
            if hops[other] < 0:
                hops[other] = hops[joint] + 1
                frontier.append(other)
    partition = torch.zeros(3, num_joints, num_joints)
    partition[0] = torch.eye(num_joints)
    for receiver in range(num_joints):
        for sender in neighbours[receiver]:
            subset = 1 if hops[sender] < hops[receiver] else 2
            partition[subset, sender, receiver] = 1.0
    column_sums = partition.sum(dim=1, keepdim=True)
    return partition / column_sums.clamp_min(1.0)


class STGCNBlock(nn.Module):
    """One ST-GCN block: spatial graph convolution, temporal convolution, residual, ReLU.

    The spatial convolution is a 1×1 convolution to ``K·C_out`` channels followed by
    ``Σ_k X_k (A_k ⊙ E_k)``, with ``E`` a learnable edge-importance mask initialised to ones.
    The temporal convolution is BN, ReLU, a ``(temporal_kernel × 1)`` convolution of stride
    ``stride``, BN and dropout. The residual is absent, the identity (same width, stride 1) or
    a strided 1×1 convolution with BN.

    Args:
        in_channels: Input width ``C_in``.
        out_channels: Output width ``C_out``.
        num_subsets: Number ``K`` of adjacency matrices.
        num_joints: Joints ``V``.
        stride: Temporal stride.
        temporal_kernel: Odd temporal kernel size.
        dropout: Dropout probability after the temporal convolution.
        residual: Whether the block has a residual connection.

    Raises:
        TypeError: If ``residual`` is not a bool.

    Examples:
        >>> block = STGCNBlock(3, 8, num_subsets=3, num_joints=5, stride=2)
        >>> block(torch.randn(2, 3, 8, 5), torch.rand(3, 5, 5)).shape
        torch.Size([2, 8, 4, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        num_subsets: int,
        num_joints: int,
        stride: int = 1,
        temporal_kernel: int = 9,
        dropout: float = 0.0,
        residual: bool = True,
    ) -> None:
        super().__init__()
        check_flags(residual=residual)
        self.num_subsets = num_subsets
        self.graph_conv = nn.Conv2d(in_channels, num_subsets * out_channels, kernel_size=1)
        self.edge_importance = nn.Parameter(torch.ones(num_subsets, num_joints, num_joints))
        padding = (temporal_kernel - 1) // 2
        self.temporal = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(
                out_channels,
                out_channels,
                kernel_size=(temporal_kernel, 1),
                stride=(stride, 1),
                padding=(padding, 0),
            ),
            nn.BatchNorm2d(out_channels),
            # Identity rather than Dropout(0): the latter still draws a mask on CPU.
            nn.Dropout(dropout, inplace=True) if dropout > 0 else nn.Identity(),
        )
        self.residual: nn.Module | None
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=(stride, 1)),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """Runs the block.

        Args:
            x: ``(B, C_in, T, V)``.
            adjacency: ``(K, V, V)`` partition (see ``spatial_partition``).

        Returns:
            ``(B, C_out, ⌈T / stride⌉, V)``.
        """
        mixed = rearrange(self.graph_conv(x), "b (k c) t v -> b k c t v", k=self.num_subsets)
        spatial = einsum(mixed, adjacency * self.edge_importance, "b k c t v, k v w -> b c t w")
        out: torch.Tensor = self.temporal(spatial)
        if self.residual is not None:
            out = out + self.residual(x)
        result: torch.Tensor = self.relu(out)
        return result


class STGCN(nn.Module):
    """Spatial-temporal graph convolution network over ``(N, C, T, V, M)`` skeleton batches.

    The input runs through a BatchNorm over the ``V·C`` coordinates of each person (persons
    folded into the batch), then one ``STGCNBlock`` per entry of ``channels``. The first
    block has no residual connection and no dropout, as in ST-GCN. The graph is
    ``spatial_partition`` of the layout.

    Args:
        layout: Skeleton layout; gives ``V`` and the graph.
        in_channels: Coordinates per joint ``C``.
        channels: Output width of every block; the last one is the feature width ``D``.
            Default: the 1/4-width ST-GCN ``(16, 16, 16, 16, 32, 32, 32, 64, 64, 256)``.
        strides: Temporal stride of every block; same length as ``channels``. Default: 2 at
            blocks 5 and 8 when there are ten blocks, 1 everywhere otherwise.
        temporal_kernel: Odd temporal kernel size.
        dropout: Dropout probability in every block but the first, in ``[0, 1)``.

    Attributes:
        embed_dim: Feature width ``D = channels[-1]``.
        temporal_stride: Product of the strides; ``T' = T / temporal_stride`` when ``T`` is a
            multiple of it (``output_frames`` in general).

    Raises:
        ValueError: If an argument is out of range or ``channels`` and ``strides`` differ in
            length.

    Examples:
        >>> from skelmask.layouts import get_layout
        >>> model = STGCN(get_layout("nturgb+d"))
        >>> x = torch.randn(2, 3, 16, 25, 2)  # (N, C, T, V, M)
        >>> model.forward_map(x).shape  # (N, M, D, T', V)
        torch.Size([2, 2, 256, 4, 25])
        >>> model.forward_features(x).shape
        torch.Size([2, 256])
    """

    adjacency: torch.Tensor

    def __init__(
        self,
        layout: SkeletonLayout,
        *,
        in_channels: int = 3,
        channels: Sequence[int] = _DEFAULT_CHANNELS,
        strides: Sequence[int] | None = None,
        temporal_kernel: int = 9,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        widths = [check_positive_int(c, "channels") for c in channels]
        if not widths:
            raise ValueError("channels must name at least one block width, got an empty sequence")
        if strides is None:
            strides = (
                _DEFAULT_STRIDES if len(widths) == len(_DEFAULT_STRIDES) else [1] * len(widths)
            )
        steps = [check_positive_int(s, "strides") for s in strides]
        if len(steps) != len(widths):
            raise ValueError(
                f"strides must have one entry per block ({len(widths)}), got {len(steps)}"
            )
        check_positive_int(temporal_kernel, "temporal_kernel")
        if temporal_kernel % 2 == 0:
            raise ValueError(f"temporal_kernel must be odd, got {temporal_kernel}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.num_joints = layout.num_joints
        self.channels = tuple(widths)
        self.strides = tuple(steps)
        self.temporal_kernel = temporal_kernel
        self.dropout = float(dropout)
        self.embed_dim = widths[-1]
        self.temporal_stride = math.prod(steps)
        partition = spatial_partition(layout)
        self.register_buffer("adjacency", partition)
        self.data_bn = nn.BatchNorm1d(self.num_joints * self.in_channels)
        inputs = [self.in_channels, *widths[:-1]]
        self.blocks = nn.ModuleList(
            STGCNBlock(
                c_in,
                c_out,
                num_subsets=len(partition),
                num_joints=self.num_joints,
                stride=stride,
                temporal_kernel=temporal_kernel,
                dropout=0.0 if index == 0 else self.dropout,
                residual=index > 0,
            )
            for index, (c_in, c_out, stride) in enumerate(zip(inputs, widths, steps, strict=True))
        )

    def output_frames(self, frames: int) -> int:
        """Number of output frames ``T'`` for ``T = frames`` input frames."""
        for stride in self.strides:
            frames = -(-frames // stride)
        return frames

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's feature map, one per person.

        Args:
            x: ``(N, C, T, V, M)`` with ``C = in_channels`` and ``V`` the layout's joints.

        Returns:
            ``(N, M, D, T', V)`` with ``T' =`` ``output_frames`` ``(T)``.

        Raises:
            ValueError: If ``x`` does not have that shape.
            TypeError: If ``x`` is not a floating-point tensor or (outside autocast) not of the
                parameters' dtype.
        """
        check_floating(x, dtype=self.data_bn.weight.dtype)
        if x.dim() != 5 or x.shape[1] != self.in_channels or x.shape[3] != self.num_joints:
            raise ValueError(
                f"x must have shape (N, C, T, V, M) with C == in_channels = {self.in_channels} "
                f"and V == {self.num_joints}, got {tuple(x.shape)}"
            )
        if 0 in x.shape:
            raise ValueError(f"x must not be empty, got shape {tuple(x.shape)}")
        persons = x.shape[4]
        flat = self.data_bn(rearrange(x, "n c t v m -> (n m) (v c) t"))
        features: torch.Tensor = rearrange(flat, "b (v c) t -> b c t v", c=self.in_channels)
        for block in self.blocks:
            features = block(features, self.adjacency)
        return rearrange(features, "(n m) d t v -> n m d t v", m=persons)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clip features: the feature map averaged over frames, joints and persons.

        Args:
            x: ``(N, C, T, V, M)`` (see ``forward_map``). Padded all-zero persons are
                averaged in like the others.

        Returns:
            ``(N, D)``.
        """
        return self.forward_map(x).mean(dim=(1, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as ``forward_features``: ``(N, C, T, V, M)`` → ``(N, D)``."""
        return self.forward_features(x)

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        return (
            f"in_channels={self.in_channels}, num_joints={self.num_joints}, "
            f"channels={self.channels}, strides={self.strides}, "
            f"temporal_kernel={self.temporal_kernel}, dropout={self.dropout}"
        )
