"""SkeleMix: SkeleMixCLR's body-part and time-segment mixing of two skeleton sequences.

SkeleMix pastes a spatio-temporal region (a few body parts over a segment of frames) of another
sample of the batch, the *donor*, into every sample. The pasted fragment is the **trimmed view**
and what is left of the sample the **truncated view**; ``mask_pool`` pools an encoder's
feature map over each of them. The region is drawn on the encoder's output frame grid, so that
the input region and the feature-level mask line up exactly.

SkeleMix is an input-mixing augmentation, not a token masker: it changes coordinates, hides no
tokens and returns no ``ids_keep``, so it does not subclass ``Masker``.

References:
    - SkeleMixCLR: Chen et al., "Contrastive Learning from Spatio-Temporal Mixed Skeleton
      Sequences for Self-Supervised Skeleton-Based Action Recognition", arXiv:2207.03065, 2022.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from einops import einsum, rearrange
from torch import nn

from skelmask._checks import as_integers, check_flags, check_positive_int, check_tensor
from skelmask.layouts import SkeletonLayout, get_layout

__all__ = ["SkeleMix", "SkeleMixResult", "mask_pool"]


class SkeleMixResult(NamedTuple):
    """What ``SkeleMix`` returns.

    Attributes:
        mixed: ``(N, C, T, V, M)``, same dtype as the input; sample ``i`` with the donor's
            values inside its region.
        donor: Int64 ``(N,)``; ``donor[i]`` is the sample whose values were pasted into sample
            ``i``. Never ``i`` itself.
        input_mask: Bool ``(N, T, V)``; True where the donor's values were pasted (all channels
            and all persons of those frames and joints).
        feature_mask: Bool ``(N, T // t_patch, V)``; the same region on the encoder's
            output frames. ``input_mask`` is ``feature_mask`` with every frame repeated
            ``t_patch`` times.
    """

    mixed: torch.Tensor
    donor: torch.Tensor
    input_mask: torch.Tensor
    feature_mask: torch.Tensor


class SkeleMix(nn.Module):
    """Mixes every sample with a donor from the batch over random body parts and frames.

    One draw, as in SkeleMixCLR's released code:

    1. **Donor**: a cyclic shift ``donor[i] = (i + s) mod N`` with ``s`` uniform in
       ``{1, …, N−1}``, so no sample is its own donor. (The reference code draws
       ``s ∈ {1, …, N−2}``, which leaves out one valid shift for no stated reason and is empty
       for ``N = 2``.)
    2. **Joints**: ``c`` uniform in ``num_parts = (low, high)``, then ``c`` of the layout's body
       parts uniformly without replacement; the region's joints are their union.
    3. **Frames**: on the encoder's output grid of ``T' = T // t_patch`` frames, a length
       ``ℓ`` uniform in ``{ℓ_min, …, ℓ_max}`` with ``ℓ_min = max(1, round(low·T'))`` and
       ``ℓ_max = min(T', max(ℓ_min, round(high·T')))`` for ``segment_ratio = (low, high)``, and
       a start ``t₀`` uniform in ``{0, …, T' − ℓ}``; input frames
       ``[stride·t₀, stride·(t₀ + ℓ))`` are mixed. The default ``(7/16, 11/16)`` gives the
       released config's 7–11 of 16 steps at ``T = 64``.
    4. **Paste** the donor's values (every channel and person) inside the region.

    With ``per_sample=False`` (the reference) the whole batch shares one region; with
    ``per_sample=True`` every sample draws its own joints and frames (the donor shift is still
    one per batch). Randomness comes from ``generator`` or the global RNG.

    Args:
        layout: Skeleton layout or a registered layout's name; its ``body_parts`` are the units
            of the spatial draw.
        num_parts: ``(low, high)`` body parts per region, ``1 ≤ low ≤ high ≤`` number of parts.
            Default ``(2, 3)`` as in the released config.
        segment_ratio: ``(low, high)`` bounds of the segment length as fractions of ``T'``,
            ``0 < low ≤ high ≤ 1``.
        t_patch: Input frames per output frame of the encoder, i.e. its total temporal stride
            (4 for ST-GCN), as a token's frames elsewhere in skelmask; ``T`` must be a
            multiple of it.
        per_sample: Draw one region per sample instead of one per batch.

    Raises:
        TypeError: If ``per_sample`` is not a bool.
        ValueError: If the layout has no body parts or an argument is out of range.
        KeyError: If ``layout`` is a name that is not registered.

    Examples:
        >>> from skelmask.layouts import get_layout
        >>> mix = SkeleMix(get_layout("nturgb+d"), t_patch=4)
        >>> result = mix(torch.randn(3, 3, 64, 25, 2), generator=torch.Generator().manual_seed(0))
        >>> result.mixed.shape, result.feature_mask.shape
        (torch.Size([3, 3, 64, 25, 2]), torch.Size([3, 16, 25]))
        >>> bool((result.donor != torch.arange(3)).all())
        True
    """

    part_joints: torch.Tensor

    def __init__(
        self,
        layout: str | SkeletonLayout,
        *,
        num_parts: tuple[int, int] = (2, 3),
        segment_ratio: tuple[float, float] = (7 / 16, 11 / 16),
        t_patch: int = 4,
        per_sample: bool = False,
    ) -> None:
        super().__init__()
        check_flags(per_sample=per_sample)
        layout = get_layout(layout)
        parts = list(layout.body_parts.values())
        if not parts:
            raise ValueError(
                f"layout {layout.name!r} has no body_parts; SkeleMix draws whole body parts"
            )
        counts = as_integers(num_parts, "num_parts")
        if len(counts) != 2:
            raise ValueError(f"num_parts must be (low, high), got {num_parts!r}")
        low_parts, high_parts = counts
        if not 1 <= low_parts <= high_parts <= len(parts):
            raise ValueError(
                f"num_parts must be (low, high) with 1 <= low <= high <= {len(parts)} (the "
                f"layout's body parts), got {num_parts!r}"
            )
        low_ratio, high_ratio = (float(r) for r in segment_ratio)
        if not 0.0 < low_ratio <= high_ratio <= 1.0:
            raise ValueError(
                f"segment_ratio must be (low, high) with 0 < low <= high <= 1, got "
                f"{segment_ratio!r}"
            )
        self.num_joints = layout.num_joints
        self.num_parts = (low_parts, high_parts)
        self.segment_ratio = (low_ratio, high_ratio)
        self.t_patch = check_positive_int(t_patch, "t_patch")
        self.per_sample = bool(per_sample)
        membership = torch.zeros(len(parts), layout.num_joints, dtype=torch.bool)
        for index, joints in enumerate(parts):
            membership[index, list(joints)] = True
        self.register_buffer("part_joints", membership, persistent=False)

    def segment_lengths(self, feature_frames: int) -> tuple[int, int]:
        """Smallest and largest segment length, in output frames, for ``T'`` output frames.

        Examples:
            >>> from skelmask.layouts import get_layout
            >>> SkeleMix(get_layout("coco")).segment_lengths(16)
            (7, 11)
        """
        shortest = max(1, round(self.segment_ratio[0] * feature_frames))
        longest = min(feature_frames, max(shortest, round(self.segment_ratio[1] * feature_frames)))
        return shortest, longest

    def forward(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> SkeleMixResult:
        """Mixes a batch.

        Args:
            x: ``(N, C, T, V, M)`` with ``N ≥ 2``, ``V`` the layout's joints and ``T`` a
                multiple of ``t_patch``.
            generator: Optional RNG on ``x``'s device, for reproducible draws.

        Returns:
            The mixed batch, the donors and the input- and feature-level region masks.

        Raises:
            TypeError: If ``x`` is not a ``torch.Tensor``.
            ValueError: If ``x`` does not have that shape.
        """
        batch, frames = self._check_input(x)
        device = x.device
        feature_frames = frames // self.t_patch
        regions = batch if self.per_sample else 1
        num_parts = len(self.part_joints)
        shortest, longest = self.segment_lengths(feature_frames)
        # One uniform draw per random choice: donor shift, part count, part order, segment
        # length and segment start.
        draws = _uniform((regions, 4 + num_parts), device=device, generator=generator)
        shift = _uniform_int(draws[:1, 0], 1, batch - 1)
        donor = (torch.arange(batch, device=device) + shift) % batch

        low, high = self.num_parts
        count = _uniform_int(draws[:, 1:2], low, high)
        # The rank of uniform noise is a uniform random order of the parts; the first `count`
        # parts in that order are a uniform draw without replacement.
        chosen = draws[:, 4:].argsort(dim=1).argsort(dim=1) < count
        joints = (chosen.unsqueeze(2) & self.part_joints.unsqueeze(0)).any(dim=1)

        length = _uniform_int(draws[:, 2:3], shortest, longest)
        start = _uniform_int(draws[:, 3:4], 0, feature_frames - length)
        steps = torch.arange(feature_frames, device=device).unsqueeze(0)
        in_segment = (steps >= start) & (steps < start + length)

        feature_mask = (in_segment.unsqueeze(2) & joints.unsqueeze(1)).expand(
            batch, feature_frames, self.num_joints
        )
        input_mask = feature_mask.repeat_interleave(self.t_patch, dim=1)
        paste = rearrange(input_mask, "n t v -> n 1 t v 1")
        mixed = torch.where(paste, x[donor], x)
        return SkeleMixResult(
            mixed=mixed,
            donor=donor,
            input_mask=input_mask.contiguous(),
            feature_mask=feature_mask.contiguous(),
        )

    def _check_input(self, x: torch.Tensor) -> tuple[int, int]:
        """Checks the ``(N, C, T, V, M)`` batch; returns ``(N, T)``."""
        check_tensor(x, "x")
        if x.dim() != 5 or 0 in x.shape:
            raise ValueError(
                f"x must be a non-empty (N, C, T, V, M) tensor, got shape {tuple(x.shape)}"
            )
        batch, _, frames, joints, _ = x.shape
        if batch < 2:
            raise ValueError(
                f"x must hold at least 2 samples (N >= 2) so that every sample has a donor "
                f"other than itself, got N = {batch}"
            )
        if joints != self.num_joints:
            raise ValueError(
                f"x has V = {joints} joints but the layout has {self.num_joints}; expected "
                f"(N, C, T, {self.num_joints}, M)"
            )
        if frames % self.t_patch != 0:
            raise ValueError(
                f"x has T = {frames} frames; expected a multiple of t_patch = "
                f"{self.t_patch} so that the region lines up with the encoder's frames"
            )
        return batch, frames

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        return (
            f"num_parts={self.num_parts}, segment_ratio={self.segment_ratio}, "
            f"t_patch={self.t_patch}, per_sample={self.per_sample}"
        )


def _uniform(
    shape: tuple[int, ...], *, device: torch.device, generator: torch.Generator | None
) -> torch.Tensor:
    """Uniform ``[0, 1)`` float32 noise from ``generator`` or the global RNG."""
    # Passing generator=None explicitly breaks torch.compile with dynamic shapes.
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, device=device, generator=generator)


def _uniform_int(
    uniform: torch.Tensor, low: int | torch.Tensor, high: int | torch.Tensor
) -> torch.Tensor:
    """Integers uniform in ``{low, …, high}`` (inclusive, broadcast) from ``[0, 1)`` noise."""
    span = high - low + 1
    offset = (uniform * span).floor().long()
    # float32 rounding can give exactly ``span`` for noise just below 1. clamp takes an int or a
    # tensor bound as it is; a tensor made from an int would be a blocking copy to the GPU.
    return low + offset.clamp(max=span - 1)


def mask_pool(features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spatio-temporal mask pooling: the mean feature inside a region and outside it.

    For every sample ``n`` (SkeleMixCLR's mask pooling, with ``B = mask[n]``)::

        trimmed[n]   = Σ_{t,v} B[t,v]·F[n,:,t,v] / Σ B
        truncated[n] = Σ_{t,v} (1−B[t,v])·F[n,:,t,v] / Σ (1−B)

    With persons, ``features`` is ``(N, M, D, T', V)``: every person is pooled with the same
    mask and the pooled features are averaged over the ``M`` persons (padded all-zero persons
    included, as in the reference). A sample whose region (or complement) is empty gets a zero
    vector there rather than a division by zero. Computed in the features' dtype.

    Args:
        features: ``(N, D, T', V)`` or ``(N, M, D, T', V)`` feature map, e.g.
            ``forward_map`` of the mixed batch.
        mask: Bool ``(N, T', V)``; True inside the region (the donor's fragment), e.g.
            ``SkeleMixResult.feature_mask``.

    Returns:
        ``(trimmed, truncated)``, each ``(N, D)``: the pooled region (trimmed view) and the
        pooled rest (truncated view).

    Raises:
        ValueError: If the shapes do not match or ``mask`` is not bool.

    Examples:
        >>> features = torch.arange(4.0).reshape(1, 1, 2, 2)  # (N, D, T', V)
        >>> mask = torch.tensor([[[True, False], [False, False]]])
        >>> mask_pool(features, mask)
        (tensor([[0.]]), tensor([[2.]]))
    """
    if features.dim() == 4:
        features = features.unsqueeze(1)
    if features.dim() != 5:
        raise ValueError(
            f"features must be (N, D, T', V) or (N, M, D, T', V), got shape {tuple(features.shape)}"
        )
    batch, _, _, frames, joints = features.shape
    if mask.dtype != torch.bool or tuple(mask.shape) != (batch, frames, joints):
        raise ValueError(
            f"mask must be a bool tensor of shape (N, T', V) = ({batch}, {frames}, {joints}) "
            f"to match features, got dtype {mask.dtype} and shape {tuple(mask.shape)}"
        )
    inside = mask.to(features.dtype)
    outside = 1.0 - inside
    per_person = features.mean(dim=1)
    trimmed = einsum(per_person, inside, "n d t v, n t v -> n d")
    truncated = einsum(per_person, outside, "n d t v, n t v -> n d")
    inside_count = inside.sum(dim=(1, 2)).clamp_min(1.0).unsqueeze(1)
    outside_count = outside.sum(dim=(1, 2)).clamp_min(1.0).unsqueeze(1)
    return trimmed / inside_count, truncated / outside_count
