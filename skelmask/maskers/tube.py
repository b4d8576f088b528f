"""Semantic tube masking (SLiM): spatio-temporal tubes over contiguous joints of one body part.

Reference: SLiM, KAIST-VICLab (code: github.com/KAIST-VICLab/SLiM, Apache-2.0), "Semantic Tube
Masking". This is an independent, vectorised implementation of the rule its
``MaskingGenerator`` follows, with an exact count per sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from skelmask._checks import check_positive, check_positive_int
from skelmask.layouts import SkeletonLayout, get_layout
from skelmask.maskers.base import MaskContext, Masker, Priority
from skelmask.maskers.body_part import _check_part_map, _joint_patch_parts
from skelmask.maskers.ratio import RatioSpec
from skelmask.sampling import num_hidden_tokens

__all__ = ["SemanticTubeMasker"]

# Tube ranks are held in int16 (see ``priority``).
_MAX_TUBES = 2**15 - 1


class SemanticTubeMasker(Masker):
    """Hides tubes: a contiguous run of one body part's joints over a contiguous run of time.

    SLiM's Semantic Tube Masking (``create_masker`` name ``"tube"``). Not the joint tubes of
    ``RandomMasker(granularity="joint")`` (name ``"joint-tube"``), which are single joints
    drawn uniformly and hidden over the whole clip. A tube is drawn in five steps, every draw
    uniform:

    1. a body part ``p`` of the layout (or of ``part_map``);
    2. a width ``w`` in ``[1, |p|]`` and a start ``a`` in ``[0, |p| - w]``: the tube covers the
       part's joints ``p[a : a + w]`` in the order of a depth-first walk of the layout's tree
       (or in ``part_map``'s order), so its joints are neighbours along the limb;
    3. an area ``A ~ U[min_area, max(min_area, K)]`` for a budget of ``K`` hidden tokens;
    4. a duration ``h = clip(round(A / w), 1, Tp)``;
    5. a start time ``s`` in ``[0, Tp - h]``; the tube covers time patches ``[s, s + h)``.

    **Exact count.** SLiM adds tubes one by one until the budget ``K`` is filled and stops
    early (missing ``K``) when ten proposals in a row add nothing or overshoot. Here every
    sample draws ``N`` candidate tubes at once, as tensors, and ranks them in draw order. A
    cell's key is ``rank · L + order``, where ``rank`` is the first tube that covers it (a tube
    that adds no new cell is thus skipped, as in SLiM) and ``order`` is the cell's time-major
    position inside that tube, ``(t - s) · w + (joint's position - a)``. The sampler hides the
    ``K`` smallest keys: whole tubes in rank order, with **at most one tube cut**, and that one
    loses the end of its time-major order, i.e. whole time rows of it and then part of one
    row, so what it hides is still contiguous runs of time over contiguous joints.

    One difference from SLiM, for the vectorised draw: SLiM bounds each tube's area by the
    budget *still* unfilled and rejects a tube that would overshoot it, which needs a
    sequential loop; here every tube's area is drawn as SLiM draws the first one, from
    ``U[min_area, K]``, and the overshoot is the one cut tube. With the default ``N = 64`` the
    tubes' union reaches ``K`` in more than 99.9 % of draws at ratio 0.9 (about 21 tubes are
    used on average, 7 at ratio 0.5, on any grid length); in the rare draw where it does not,
    the rest of the count is filled with uniformly random cells, so the count stays exact.

    Joints in no part are never covered by a tube (they are hidden only by that fallback).
    Inside a ``CrossMasker`` region the tubes are drawn over the whole grid and only their
    cells inside the region count. ``MaskResult.scores`` and ``probs`` are None.

    Defaults from SLiM: ``min_area=4``; SLiM uses an ``8 × 25`` grid (64 frames, 8 frames per
    token, NTU's 25 joints in its five parts) and draws the ratio from ``U(0.5, 0.9)``.

    Args:
        mask_ratio: Fraction of tokens hidden: a number in (0, 1), a ``(low, high)`` range
            drawn once per batch (default SLiM's ``(0.5, 0.9)``) or a ``RatioSchedule``.
        layout: Layout (or registered name) whose joints make the grid's ``Vp · v_patch`` joints.
        min_area: Smallest tube area in cells (SLiM: 4), a number > 0.
        v_patch: Joints per joint patch; every patch's joints must lie in one part (or none).
        part_map: Parts to use instead of ``layout.body_parts``: name → joint indices in the
            order along which tubes run, disjoint.
        num_tubes: Candidate tubes ``N`` per sample (default 64). The call holds a few
            ``B · N · Tp · Vp`` tensors of 1- and 2-byte entries.

    Raises:
        ValueError: If an argument is out of range, the parts are invalid, or at call time if
            the grid's ``Vp · v_patch`` is not the layout's joint count.
        KeyError: If ``layout`` is an unknown name.

    Examples:
        >>> masker = SemanticTubeMasker(0.7, layout="nturgb+d")
        >>> result = masker(torch.randn(2, 8, 25, 64))  # SLiM's 8×25 grid
        >>> result.num_hidden
        140
    """

    def __init__(
        self,
        mask_ratio: RatioSpec = (0.5, 0.9),
        *,
        layout: str | SkeletonLayout = "nturgb+d",
        min_area: float = 4.0,
        v_patch: int = 1,
        part_map: Mapping[str, Sequence[int]] | None = None,
        num_tubes: int = 64,
    ) -> None:
        super().__init__(mask_ratio)
        resolved = get_layout(layout)
        check_positive_int(v_patch, "v_patch")
        if resolved.num_joints % v_patch:
            raise ValueError(
                f"v_patch={v_patch} must divide the joint count V={resolved.num_joints} of "
                f"layout {resolved.name!r}"
            )
        self.min_area = check_positive(min_area, "min_area")
        if check_positive_int(num_tubes, "num_tubes") >= _MAX_TUBES:
            raise ValueError(f"num_tubes must be in [1, {_MAX_TUBES - 1}], got {num_tubes}")
        self.num_tubes = num_tubes
        groups = _check_part_map(resolved, part_map)
        if part_map is None:
            # A layout lists a part's joints in any order (NTU's trunk: 0, 1, 2, 3, 20); tubes
            # run along the skeleton, so order them by a depth-first walk of the tree.
            walk = {joint: index for index, joint in enumerate(_depth_first(resolved))}
            groups = {
                name: tuple(sorted(joints, key=walk.__getitem__)) for name, joints in groups.items()
            }
        _joint_patch_parts(groups, resolved, v_patch)  # checks that no patch straddles parts
        joint_patches = resolved.num_joints // v_patch
        # Each part as its joint patches, in the part's order (a patch once, where it first is).
        part_patches = [
            list(dict.fromkeys(j // v_patch for j in joints)) for joints in groups.values()
        ]
        part_of = [len(groups)] * joint_patches
        position = [0] * joint_patches
        for index, patches in enumerate(part_patches):
            for order, patch in enumerate(patches):
                part_of[patch] = index
                position[patch] = order
        self.layout = resolved
        self.v_patch = v_patch
        self.part_names = tuple(groups)
        # Buffers, so that they follow the module's device; configuration, hence not persistent.
        self.part_size: torch.Tensor
        self.patch_part: torch.Tensor
        self.patch_position: torch.Tensor
        sizes = torch.tensor([len(patches) for patches in part_patches], dtype=torch.int64)
        self.register_buffer("part_size", sizes, persistent=False)
        self.register_buffer("patch_part", torch.tensor(part_of), persistent=False)
        self.register_buffer("patch_position", torch.tensor(position), persistent=False)

    def priority(self, context: MaskContext) -> Priority:
        """Integer keys ``-(rank · L + order)`` (see the class docstring); values are not read.

        Raises:
            ValueError: If the grid does not match the layout.
        """
        batch, time_patches, joint_patches, _ = context.tokens.shape
        if joint_patches * self.v_patch != self.layout.num_joints:
            raise ValueError(
                f"the token grid has Vp={joint_patches} joint patches of v_patch={self.v_patch} "
                f"joints ({joint_patches * self.v_patch} joints) but layout "
                f"{self.layout.name!r} has {self.layout.num_joints}"
            )
        num_tokens = time_patches * joint_patches
        budget = context.num_hidden
        if budget is None:
            budget = num_hidden_tokens(num_tokens, self.mask_ratio)
        tubes = self.num_tubes
        device = context.tokens.device
        draws = _uniform((batch, tubes, 5), device, context.generator).unbind(dim=2)
        num_parts = int(self.part_size.shape[0])
        part = (draws[0] * num_parts).long().clamp(max=num_parts - 1)  # (B, N)
        size = self.part_size[part]
        width = 1 + (draws[1] * size).long().clamp(max=size - 1)
        first_joint = (draws[2] * (size - width + 1)).long().clamp(max=size - width)
        area = self.min_area + draws[3] * max(budget - self.min_area, 0.0)
        duration = torch.round(area / width).long().clamp(1, time_patches)
        start = (draws[4] * (time_patches - duration + 1)).long().clamp(max=time_patches - duration)

        times = torch.arange(time_patches, device=device)
        in_time = (times >= start.unsqueeze(2)) & (times < (start + duration).unsqueeze(2))
        offset = self.patch_position - first_joint.unsqueeze(2)  # (B, N, Vp)
        in_joints = (
            (self.patch_part == part.unsqueeze(2)) & (offset >= 0) & (offset < width.unsqueeze(2))
        )
        cover = (in_time.unsqueeze(3) & in_joints.unsqueeze(2)).flatten(2)  # (B, N, L)
        # Tube i counts as N - i where it covers a cell, so the max is the first covering tube
        # with no tie to break; int16 keeps this B·N·L tensor small.
        countdown = torch.arange(tubes, 0, -1, device=device, dtype=torch.int16).view(1, -1, 1)
        first = torch.where(cover, countdown, 0).amax(dim=1).long()  # (B, L)
        covered = first > 0
        rank = (tubes - first).clamp(max=tubes - 1)
        order = (times.repeat_interleave(joint_patches) - start.gather(1, rank)) * width.gather(
            1, rank
        ) + (self.patch_position.repeat(time_patches) - first_joint.gather(1, rank))
        # Cells no tube covers come last, in a uniformly random order.
        noise = _uniform((batch, num_tokens), device, context.generator)
        leftover = noise.argsort(dim=1).argsort(dim=1)
        rank = torch.where(covered, rank, tubes)
        order = torch.where(covered, order, leftover)
        # Integer keys below (N + 1)·L are exact in float32 while (N + 1)·L ≤ 2^24.
        return Priority(keys=-(rank * num_tokens + order).float())

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        return (
            f"mask_ratio={self.mask_ratio}, layout={self.layout.name!r}, "
            f"min_area={self.min_area}, v_patch={self.v_patch}, num_tubes={self.num_tubes}"
        )


def _depth_first(layout: SkeletonLayout) -> list[int]:
    """The layout's joints in depth-first pre-order from the root, children by index."""
    order: list[int] = []
    stack = [layout.root]
    while stack:
        joint = stack.pop()
        order.append(joint)
        stack.extend(reversed(layout.children[joint]))
    return order


def _uniform(
    shape: tuple[int, ...], device: torch.device, generator: torch.Generator | None
) -> torch.Tensor:
    """Float32 U[0, 1) draws from ``generator`` or the global RNG."""
    # Passing generator=None explicitly breaks torch.compile with dynamic shapes.
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, device=device, generator=generator)
