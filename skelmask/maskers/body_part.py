"""Body-part masking: whole limbs hidden at once (Yan et al.'s SkeletonMAE).

Reference: Yan, Liu, Wei, Li, Li, Lin, "SkeletonMAE: Graph-based Masked Autoencoder for Skeleton
Sequence Pre-training", ICCV 2023, arXiv:2307.08476 (Sec. 3.1.2, "action-sensitive" body-region
masking). Its code was never published; this follows the paper text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, TypeAlias

import torch

from skelmask._checks import as_integer, as_integers, check_mask_ratio, check_positive_int
from skelmask.layouts import SkeletonLayout, get_layout
from skelmask.maskers.base import MaskContext, Masker, Priority
from skelmask.sampling import gumbel_noise, num_hidden_tokens

__all__ = ["BodyPartMasker", "PartDraw"]

PartDraw: TypeAlias = Literal["time_patch", "clip"]
"""``"time_patch"``: every time patch draws its own parts; ``"clip"``: one draw per clip."""

_DRAWS: tuple[PartDraw, ...] = ("time_patch", "clip")

# Fixed parts are ranked before all others by this offset; Gumbel noise lies in about [-4.5, 16.2].
_FIXED_FIRST = 100.0


class BodyPartMasker(Masker):
    """Hides whole body parts of a skeleton layout (Yan et al.'s SkeletonMAE masking).

    The parts are the layout's ``body_parts`` (five on every built-in layout: trunk, both arms,
    both legs) or a user ``part_map``. Joints in no part are never hidden unless a count asks for
    more tokens than all parts hold. One of three settings chooses what is hidden:

    * ``parts``: these named parts, in every time patch of every sample (deterministic);
      hides ``Tp · |union of parts|`` tokens (joint patches).
    * ``num_parts``: ``num_parts`` random parts per sample; the count is the mean fraction
      ``num_parts · mean part size / Vp`` (the nominal ``mask_ratio``) applied as below.
    * ``mask_ratio``: random parts per sample until the ratio's count is reached.

    **The count rule.** Every sample hides exactly the same number of tokens (the masker
    contract), although parts differ in size. With ``draw_per="clip"`` it hides
    ``Tp · num_hidden_tokens(Vp, mask_ratio)`` tokens, i.e. the same joint patches in every time
    patch; with ``"time_patch"`` it hides ``num_hidden_tokens(Tp · Vp, mask_ratio)`` tokens (both
    ``round(ratio · n)`` clamped to ``[1, n - 1]``). The hidden tokens are the first ones of a
    per-sample random **priority order** in which every *unit* (a part in one time patch for
    ``"time_patch"``; a part over the whole clip for ``"clip"``) is contiguous:

    * ``"time_patch"``: every time patch draws its own random order of the parts. Units are taken
      level by level: the first-ranked part of every time patch (time patches in a random
      per-sample order), then the second-ranked part of every time patch, and so on.
    * ``"clip"``: the sample draws one random order of the parts; each part's joint patches
      come in a random order, each joint patch with all its time patches.
    * With ``parts``, the fixed parts come first (in a random order among themselves), so the
      default count hides exactly them; only a larger count (e.g. inside a
      ``CrossMasker`` region) continues with the other parts.
    * Joints in no part come last.

    Cutting this order at the count hides whole units and **at most one unit partially** per
    sample (the one that straddles the count; in ``"clip"`` mode the cut removes whole joint
    patches of that part, the same in every time patch). With parts of equal size and the
    ``num_parts`` count, no unit is cut and every time patch (``"time_patch"``) or the clip
    (``"clip"``) hides exactly ``num_parts`` parts. Inside a ``CrossMasker``
    branch the same order is restricted to the branch and
    cut at ``num_hidden``, so a ``CrossMasker`` branch hides exactly its share.

    ``MaskResult.scores`` and ``probs`` are None: parts are drawn uniformly.

    Args:
        mask_ratio: Fraction of tokens hidden, in (0, 1). Give it alone, or leave it None and
            give ``parts`` or ``num_parts``.
        layout: Layout (or registered name) whose joints make the grid's ``Vp · v_patch`` joints.
        parts: Names of parts hidden in every time patch; not together with ``num_parts`` or
            ``mask_ratio``.
        num_parts: Random parts hidden per time patch (``"time_patch"``) or per clip (``"clip"``), in
            ``[1, P - 1]`` for ``P`` parts (``[1, P]`` when some joints are in no part).
        draw_per: ``"time_patch"`` or ``"clip"`` (see above). ``RandomMasker``'s
            ``granularity="frame"``, which hides whole time patches, is another thing.
        v_patch: Joints per joint patch; every patch's joints must lie in the same part (or in
            none), since patches ``[k·v_patch, (k+1)·v_patch)`` are consecutive joints.
        part_map: Parts to use instead of ``layout.body_parts``: name → joint indices, disjoint,
            each index a joint of the layout.

    Raises:
        ValueError: If a setting is missing, combined with another or out of range; if a part
            name is unknown (the message lists the valid ones); if parts overlap, are empty or
            name a joint outside the layout; if ``v_patch`` splits a part; if the layout has no
            parts; or at call time if the grid's ``Vp · v_patch`` is not the layout's joint
            count.
        TypeError: If ``parts`` is a single string or ``num_parts`` is not an int.
        KeyError: If ``layout`` is an unknown name.

    Examples:
        >>> masker = BodyPartMasker(parts=["right_arm", "right_leg"], layout="coco")
        >>> result = masker(torch.randn(2, 8, 17, 16))  # (B, Tp, Vp, D)
        >>> result.grid_mask[0, 0].nonzero().flatten().tolist()
        [8, 10, 14, 16]
        >>> BodyPartMasker(num_parts=2, layout="nw-ucla")(torch.randn(2, 8, 20, 4)).num_hidden
        64
    """

    def __init__(
        self,
        mask_ratio: float | None = None,
        *,
        layout: str | SkeletonLayout = "nturgb+d",
        parts: Sequence[str] | None = None,
        num_parts: int | None = None,
        draw_per: PartDraw = "clip",
        v_patch: int = 1,
        part_map: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        resolved = get_layout(layout)
        check_positive_int(v_patch, "v_patch")
        if resolved.num_joints % v_patch:
            raise ValueError(
                f"v_patch={v_patch} must divide the joint count V={resolved.num_joints} of "
                f"layout {resolved.name!r}"
            )
        if draw_per not in _DRAWS:
            raise ValueError(f"draw_per must be one of {list(_DRAWS)}, got {draw_per!r}")
        groups = _check_part_map(resolved, part_map)
        joint_part = _joint_patch_parts(groups, resolved, v_patch)
        joint_patches = resolved.num_joints // v_patch
        part_sizes = [len(joints) // v_patch for joints in groups.values()]
        unassigned = joint_patches - sum(part_sizes)
        part_names = tuple(groups)
        fixed = [False] * len(groups)
        chosen: list[int] = []
        fixed_patches: int | None = None
        if parts is not None and num_parts is not None:
            raise ValueError("give parts or num_parts, not both")
        if parts is not None:
            if mask_ratio is not None:
                raise ValueError(
                    f"parts fixes the count; leave mask_ratio None, got mask_ratio={mask_ratio!r}"
                )
            chosen = _check_part_names(parts, part_names)
            for index in chosen:
                fixed[index] = True
            fixed_patches = sum(part_sizes[index] for index in chosen)
            if fixed_patches == joint_patches:
                raise ValueError(
                    f"parts {list(parts)} cover every joint of layout {resolved.name!r}; at least "
                    "one joint must stay visible"
                )
            ratio = fixed_patches / joint_patches
        elif num_parts is not None:
            if mask_ratio is not None:
                raise ValueError(
                    "num_parts and mask_ratio both set the count; give one, got "
                    f"num_parts={num_parts!r} and mask_ratio={mask_ratio!r}"
                )
            most = len(part_sizes) if unassigned else len(part_sizes) - 1
            count = as_integer(num_parts)
            if count is None:
                raise TypeError(f"num_parts must be an int, got {num_parts!r}")
            num_parts = count
            if not 1 <= num_parts <= most:
                raise ValueError(
                    f"num_parts must be in [1, {most}] for the {len(part_sizes)} parts "
                    f"{list(part_names)} (at least one joint stays visible), got {num_parts}"
                )
            ratio = num_parts * (sum(part_sizes) / len(part_sizes)) / joint_patches
        elif mask_ratio is None:
            raise ValueError("give one of parts, num_parts or mask_ratio; got none of them")
        else:
            ratio = mask_ratio
        super().__init__(ratio)
        self.layout = resolved
        self.v_patch = v_patch
        self.part_names = part_names
        self.draw_per: PartDraw = draw_per
        self._count_fixed_by: str | None = None
        if parts is not None:
            self._count_fixed_by = f"parts={list(parts)}"
        elif num_parts is not None:
            self._count_fixed_by = f"num_parts={num_parts}"
        self.parts: tuple[str, ...] | None = (
            None if parts is None else tuple(part_names[i] for i in chosen)
        )
        self.num_parts = num_parts
        self._fixed_patches = fixed_patches
        self._num_parts_total = len(part_sizes)
        # Buffers, so that they follow the module's device; configuration, hence not persistent.
        self.joint_part: torch.Tensor
        self.part_is_fixed: torch.Tensor
        self.register_buffer("joint_part", joint_part, persistent=False)
        self.register_buffer("part_is_fixed", torch.tensor(fixed), persistent=False)

    def check_ratio(self, value: float) -> float:
        """Checks a ratio; one built with ``parts`` or ``num_parts`` takes none (fixed count)."""
        if getattr(self, "_count_fixed_by", None) is not None:
            raise ValueError(
                f"BodyPartMasker({self._count_fixed_by}) hides a fixed set of parts; its "
                f"mask_ratio is derived and cannot be set, got {value!r}. Build it with "
                "mask_ratio= instead"
            )
        return check_mask_ratio(value)

    def num_hidden(self, grid_size: tuple[int, int], mask_ratio: float | None = None) -> int:
        """Tokens hidden per sample on a ``(Tp, Vp)`` grid (see the count rule above).

        Raises:
            ValueError: If the grid does not fit the layout.
        """
        time_patches, joint_patches = grid_size
        self._check_joint_patches(joint_patches)
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        if self._fixed_patches is not None:
            return time_patches * self._fixed_patches
        if self.draw_per == "clip":
            return time_patches * num_hidden_tokens(joint_patches, ratio)
        return num_hidden_tokens(time_patches * joint_patches, ratio)

    def priority(self, context: MaskContext) -> Priority:
        """Keys of the priority order (see the class docstring); token values are not read.

        Raises:
            ValueError: If the grid does not match the layout.
        """
        batch, time_patches, joint_patches, _ = context.tokens.shape
        self._check_joint_patches(joint_patches)
        order = self._order(
            batch, time_patches, joint_patches, context.tokens.device, context.generator
        )
        # Distinct integer keys below (P + 1)·L ≤ 2^24 are exact in float32; the first are hidden.
        return Priority(keys=-order.float())

    def _order(
        self,
        batch: int,
        time_patches: int,
        joint_patches: int,
        device: torch.device,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Int64 ``(B, L)`` distinct keys per sample; the smallest are hidden first."""
        num_parts = self._num_parts_total
        draws = time_patches if self.draw_per == "time_patch" else 1
        part_noise = gumbel_noise((batch, draws, num_parts), device=device, generator=generator)
        part_noise = part_noise - _FIXED_FIRST * self.part_is_fixed.to(part_noise.dtype)
        part_rank = _ranks(part_noise, dim=2)
        # Joints in no part form a last pseudo-part of rank P.
        part_rank = torch.cat([part_rank, part_rank.new_full((batch, draws, 1), num_parts)], dim=2)
        token_part_rank = part_rank[:, :, self.joint_part]  # (B, draws, Vp)
        if self.draw_per == "time_patch":
            time_noise = gumbel_noise((batch, time_patches), device=device, generator=generator)
            joint_noise = gumbel_noise(
                (batch, time_patches, joint_patches), device=device, generator=generator
            )
            time_rank = _ranks(time_noise, dim=1).unsqueeze(2)
            unit = token_part_rank * time_patches + time_rank
            key = unit * joint_patches + _ranks(joint_noise, dim=2)
        else:
            joint_noise = gumbel_noise(
                (batch, 1, joint_patches), device=device, generator=generator
            )
            time_noise = gumbel_noise(
                (batch, time_patches, joint_patches), device=device, generator=generator
            )
            column = token_part_rank * joint_patches + _ranks(joint_noise, dim=2)
            key = column * time_patches + _ranks(time_noise, dim=1)
        return key.reshape(batch, time_patches * joint_patches)

    def _check_joint_patches(self, joint_patches: int) -> None:
        if joint_patches * self.v_patch != self.layout.num_joints:
            raise ValueError(
                f"the token grid has Vp={joint_patches} joint patches of v_patch={self.v_patch} "
                f"joints ({joint_patches * self.v_patch} joints) but layout "
                f"{self.layout.name!r} has {self.layout.num_joints}"
            )

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        if self.parts is not None:
            setting = f"parts={list(self.parts)}"
        elif self.num_parts is not None:
            setting = f"num_parts={self.num_parts}"
        else:
            setting = f"mask_ratio={self.mask_ratio}"
        return (
            f"{setting}, layout={self.layout.name!r}, draw_per={self.draw_per!r}, "
            f"v_patch={self.v_patch}"
        )


def _ranks(values: torch.Tensor, dim: int) -> torch.Tensor:
    """Rank (0 = smallest) of every entry along ``dim``; ties broken by position."""
    return values.argsort(dim=dim).argsort(dim=dim)


def _check_part_map(
    layout: SkeletonLayout, part_map: Mapping[str, Sequence[int]] | None
) -> dict[str, tuple[int, ...]]:
    """The parts to use, checked to be non-empty, in range and disjoint."""
    source = "part_map" if part_map is not None else f"layout {layout.name!r} body_parts"
    groups = dict(layout.body_parts) if part_map is None else dict(part_map)
    if not groups:
        raise ValueError(
            f"{source} is empty; pass part_map (name → joint indices) to define body parts"
        )
    owner: dict[int, str] = {}
    checked: dict[str, tuple[int, ...]] = {}
    for name, joints in groups.items():
        indices = as_integers(joints, f"{source}[{name!r}]")
        if not indices:
            raise ValueError(f"{source}[{name!r}] is empty; expected at least one joint index")
        bad = [j for j in indices if not 0 <= j < layout.num_joints]
        if bad:
            raise ValueError(
                f"{source}[{name!r}] has joint indices {bad} outside [0, {layout.num_joints}) "
                f"of layout {layout.name!r}"
            )
        for joint in indices:
            if joint in owner:
                raise ValueError(
                    f"{source} puts joint {joint} in both {owner[joint]!r} and {name!r}; parts "
                    "must be disjoint"
                )
            owner[joint] = name
        checked[str(name)] = indices
    return checked


def _joint_patch_parts(
    groups: Mapping[str, tuple[int, ...]], layout: SkeletonLayout, v_patch: int
) -> torch.Tensor:
    """Int64 ``(Vp,)`` part index of every joint patch; ``P`` for patches in no part."""
    joint_ids = [len(groups)] * layout.num_joints
    for index, joints in enumerate(groups.values()):
        for joint in joints:
            joint_ids[joint] = index
    names = [*groups, None]
    patch_ids = []
    for start in range(0, layout.num_joints, v_patch):
        members = joint_ids[start : start + v_patch]
        if len(set(members)) > 1:
            raise ValueError(
                f"v_patch={v_patch} does not map the body parts onto joint patches: patch "
                f"{start // v_patch} holds joints {list(range(start, start + v_patch))} of parts "
                f"{[names[i] for i in members]}; use v_patch=1 or parts made of whole patches"
            )
        patch_ids.append(members[0])
    return torch.tensor(patch_ids, dtype=torch.int64)


def _check_part_names(parts: Sequence[str], valid: tuple[str, ...]) -> list[int]:
    """Indices of the named parts, checked to be known, distinct and at least one."""
    if isinstance(parts, str):
        raise TypeError(f"parts must be a sequence of part names, not the string {parts!r}")
    names = list(parts)
    if not names:
        raise ValueError(f"parts must name at least one of {list(valid)}, got []")
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise ValueError(f"unknown part(s) {unknown} in parts; valid parts are {list(valid)}")
    if len(set(names)) != len(names):
        raise ValueError(f"parts repeats a name: {names}")
    return [valid.index(name) for name in names]
