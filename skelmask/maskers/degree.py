"""Degree-and-motion masking (ASMa): two complementary views of one clip.

Reference: ASMa, TMLR 2026: one view hides the skeleton's high-degree joints (the spine and its
hubs) in low-motion time patches, the other hides low-degree joints (hands, feet, head) in
high-motion time patches, and the model learns from both.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import torch

from skelmask._checks import check_positive
from skelmask.layouts import SkeletonLayout, get_layout
from skelmask.maskers.base import MaskContext, Masker, Priority
from skelmask.maskers.motion import MotionAwareMasker
from skelmask.maskers.ratio import RatioSpec
from skelmask.tokens import MaskResult, mask_result_from_bool

__all__ = ["DegreeMotionMasker", "DegreeMotionView", "degree_motion_views"]

DegreeMotionView: TypeAlias = Literal["hub_still", "limb_moving"]
"""``"hub_still"``: high-degree joints in low-motion time; ``"limb_moving"``: the opposite."""

_VIEWS: tuple[DegreeMotionView, ...] = ("hub_still", "limb_moving")


class DegreeMotionMasker(Masker):
    """Hides joints by their degree in the skeleton tree, in time patches chosen by motion.

    Every token gets a *joint score* from the joint's degree (its number of bones in the
    layout's tree, ``1 + len(children)`` except the root's ``len(children)``), normalised to
    ``[0, 1]`` over the layout, and a *time score* from the clip's motion per time patch (the
    mean over joints of ``MotionAwareMasker``'s motion, normalised to ``[0, 1]`` per sample).
    The view decides which end of each is hidden first:

    * ``"hub_still"``: ``key = degree + (1 - motion)``: high-degree joints in low-motion time;
    * ``"limb_moving"``: ``key = (1 - degree) + motion``: low-degree joints in high-motion time.

    The two keys sum to 2 for every token, so the two views rank the grid in exactly opposite
    orders (ties aside): with ratios ``r`` and ``1 - r`` they hide complementary sets, which
    ``degree_motion_views`` builds for one batch. The sampler hides the ``num_hidden`` highest
    keys (``MaskResult.scores`` holds the keys). A little uniform noise
    (``jitter``) breaks ties between joints of equal degree at random.

    Args:
        view: ``"hub_still"`` or ``"limb_moving"``.
        mask_ratio: Fraction of tokens hidden.
        layout: Layout whose ``Vp · v_patch`` joints make the grid; degrees come from its tree.
        t_patch: Frames per token of raw ``coords`` (as ``MotionAwareMasker``).
        v_patch: Joints per token; a joint patch's degree is the mean of its joints'.
        jitter: Width of the uniform tie-breaking noise added to the keys (> 0, default 1e-3;
            smaller than any gap between distinct degrees of the built-in layouts).

    Raises:
        ValueError: On invalid arguments, or at call time when ``coords`` is missing or does not
            fit the grid, or the grid's joints are not the layout's.

    Examples:
        >>> masker = DegreeMotionMasker("hub_still", 0.5, layout="nturgb+d", t_patch=4)
        >>> masker(torch.randn(2, 30, 25, 8), coords=torch.randn(2, 120, 25, 3)).num_keep
        375
    """

    def __init__(
        self,
        view: DegreeMotionView,
        mask_ratio: RatioSpec = 0.5,
        *,
        layout: str | SkeletonLayout = "nturgb+d",
        t_patch: int = 4,
        v_patch: int = 1,
        jitter: float = 1e-3,
    ) -> None:
        super().__init__(mask_ratio)
        if view not in _VIEWS:
            raise ValueError(f"view must be one of {list(_VIEWS)}, got {view!r}")
        self.view: DegreeMotionView = view
        self.layout = get_layout(layout)
        self.jitter = check_positive(jitter, "jitter")
        # Reuses the motion scores and the coordinate checks of MotionAwareMasker.
        self.motion = MotionAwareMasker(0.5, t_patch=t_patch, v_patch=v_patch)
        if self.layout.num_joints % v_patch:
            raise ValueError(
                f"v_patch={v_patch} must divide the joint count V={self.layout.num_joints} of "
                f"layout {self.layout.name!r}"
            )
        self.joint_degree: torch.Tensor
        self.register_buffer("joint_degree", joint_degrees(self.layout, v_patch), persistent=False)

    def grid_size_from_inputs(
        self,
        num_tokens: int,
        coords: torch.Tensor | None,
        attention: torch.Tensor | None,
        root_tokens: torch.Tensor | None,
        saliency: torch.Tensor | None = None,
    ) -> tuple[int, int] | None:
        """Reads the grid from ``coords`` as ``MotionAwareMasker`` does."""
        return self.motion.grid_size_from_inputs(
            num_tokens, coords, attention, root_tokens, saliency
        )

    def priority(self, context: MaskContext) -> Priority:
        """Keys ``degree + (1 - motion)`` or ``(1 - degree) + motion`` plus tie-breaking noise.

        Raises:
            ValueError: If the grid does not match the layout or ``coords`` does not fit.
        """
        batch, time_patches, joint_patches, _ = context.tokens.shape
        if joint_patches != self.joint_degree.shape[0]:
            raise ValueError(
                f"the token grid has Vp={joint_patches} joint patches but layout "
                f"{self.layout.name!r} gives {self.joint_degree.shape[0]} (v_patch="
                f"{self.motion.v_patch})"
            )
        with torch.no_grad():
            motion = self.motion.score(context).mean(dim=2)  # (B, Tp)
            low = motion.amin(dim=1, keepdim=True)
            spread = (motion.amax(dim=1, keepdim=True) - low).clamp_min(1e-12)
            motion = (motion - low) / spread
        degree = self.joint_degree.view(1, 1, -1)
        if self.view == "hub_still":
            keys = degree + (1.0 - motion).unsqueeze(2)
        else:
            keys = (1.0 - degree) + motion.unsqueeze(2)
        keys = keys.expand(batch, time_patches, joint_patches).reshape(batch, -1)
        if context.generator is None:
            noise = torch.rand(keys.shape, device=keys.device)
        else:
            noise = torch.rand(keys.shape, device=keys.device, generator=context.generator)
        return Priority(keys=keys + self.jitter * noise, scores=keys.float())

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        return (
            f"view={self.view!r}, mask_ratio={self.ratio_spec}, layout={self.layout.name!r}, "
            f"t_patch={self.motion.t_patch}, v_patch={self.motion.v_patch}"
        )


def joint_degrees(layout: SkeletonLayout, v_patch: int = 1) -> torch.Tensor:
    """Float32 ``(V // v_patch,)`` tree degree per joint patch, scaled to ``[0, 1]``.

    A joint's degree is its number of bones: its children plus its parent (none for the root).
    A patch takes the mean of its joints; the result is min-max scaled over the layout.
    """
    degree = torch.tensor(
        [
            len(children) + (parent >= 0)
            for children, parent in zip(layout.children, layout.parents, strict=True)
        ],
        dtype=torch.float32,
    )
    degree = degree.view(-1, v_patch).mean(dim=1)
    low, high = degree.min(), degree.max()
    return (degree - low) / (high - low).clamp_min(1e-12)


def degree_motion_views(
    tokens: torch.Tensor,
    coords: torch.Tensor,
    *,
    mask_ratio: float = 0.5,
    layout: str | SkeletonLayout = "nturgb+d",
    t_patch: int = 4,
    v_patch: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[MaskResult, MaskResult]:
    """ASMa's two views of one batch, complementary by construction.

    The ``"hub_still"`` view hides ``K = num_hidden_tokens(L, mask_ratio)`` tokens: the
    highest-degree joints in the lowest-motion time patches. The ``"limb_moving"`` view hides
    exactly the other ``L - K``: what the first keeps visible, which are the lowest keys of
    the first view, i.e. the highest ``"limb_moving"`` keys (the two keys sum to 2).

    Args:
        tokens: Token grid ``(B, Tp, Vp, D)`` or flat ``(B, L, D)``.
        coords: Coordinates as for ``MotionAwareMasker``: raw ``(B, T, V, C)`` or patchified.
        mask_ratio: Ratio hidden by the ``"hub_still"`` view, in (0, 1).
        layout: Layout of the grid's joints.
        t_patch: Frames per token of raw ``coords``.
        v_patch: Joints per token.
        generator: Optional ``torch.Generator`` for the tie-breaking noise.

    Returns:
        ``(hub_still, limb_moving)`` mask results; ``hub_still.mask ^ limb_moving.mask`` is all
        True and ``limb_moving.scores == 2 - hub_still.scores``.

    Examples:
        >>> first, second = degree_motion_views(
        ...     torch.randn(2, 30, 25, 8), torch.randn(2, 120, 25, 3), mask_ratio=0.6
        ... )
        >>> bool((first.mask ^ second.mask).all()), first.num_hidden, second.num_hidden
        (True, 450, 300)
    """
    hub = DegreeMotionMasker(
        "hub_still", mask_ratio, layout=layout, t_patch=t_patch, v_patch=v_patch
    ).to(coords.device)
    first = hub(tokens, coords=coords, generator=generator)
    assert first.scores is not None  # DegreeMotionMasker always returns its keys
    second = mask_result_from_bool(
        ~first.mask, first.num_hidden, first.grid_size, scores=2.0 - first.scores
    )
    return first, second
