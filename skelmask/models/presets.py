"""Ready-made masked autoencoders: MAE, MAMP and HA-CM on any skeleton layout.

References:
    - MAE: He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022.
    - MAMP: Mao et al., "Masked Motion Predictors are Strong 3D Action Representation
      Learners", ICCV 2023.
    - HA-CM: Yin & Cao, "Spatial Hierarchy and Temporal Attention Guided Cross Masking for
      Self-supervised Skeleton-based Action Recognition", arXiv:2409.17951, 2024.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

from skelmask._checks import check_positive_int
from skelmask.layouts import SkeletonLayout, get_layout
from skelmask.losses import CrossContrastLoss
from skelmask.maskers import (
    BodyPartMasker,
    CrossMasker,
    DegreeMotionMasker,
    GlobalAttentionMasker,
    HyperbolicHierarchyMasker,
    Masker,
    MotionAwareMasker,
    RandomMasker,
    ScoreGuidedMasker,
    SemanticTubeMasker,
)
from skelmask.maskers.ratio import RatioSpec, check_ratio_spec, nominal_ratio
from skelmask.models.encoder import SkeletonEncoder
from skelmask.models.mae import Target, TransformerMAE
from skelmask.poincare import DEFAULT_CLIP_R

__all__ = [
    "PRESET_MASKERS",
    "PRESET_TARGETS",
    "MaskerName",
    "Preset",
    "create_mae",
    "create_masker",
]

Preset = Literal["mae", "mamp", "hacm"]
"""Names of the ``create_mae`` presets."""

_PRESETS: tuple[Preset, ...] = ("mae", "mamp", "hacm")

MaskerName = Literal[
    "random",
    "joint-tube",
    "frame",
    "motion",
    "hyperbolic",
    "attention",
    "hacm-cross",
    "body-part",
    "tube",
    "degree-hub-still",
    "degree-limb-moving",
]
"""Names of the maskers ``create_masker`` builds (``typing.get_args(MaskerName)`` lists them)."""

_MASKER_NAMES: tuple[MaskerName, ...] = get_args(MaskerName)

PRESET_MASKERS: dict[Preset, MaskerName] = {
    "mae": "random",
    "mamp": "motion",
    "hacm": "hacm-cross",
}
"""The masker each ``create_mae`` preset uses unless told otherwise, by preset.

Examples:
    >>> PRESET_MASKERS["mamp"]
    'motion'
"""

PRESET_TARGETS: dict[Preset, Target] = {"mae": "coords", "mamp": "motion", "hacm": "motion"}
"""The reconstruction target each ``create_mae`` preset uses unless told otherwise.

Examples:
    >>> PRESET_TARGETS["mae"]
    'coords'
"""

# Ratio of each named masker when none is given: its paper's, and for "joint-tube" and "frame"
# that of "random", the same masker at token granularity, so that only the unit differs (see
# ``create_masker``).
_DEFAULT_RATIOS: dict[MaskerName, RatioSpec] = {
    **dict.fromkeys(_MASKER_NAMES, 0.9),
    "tube": (0.5, 0.9),
    "degree-hub-still": 0.5,
    "degree-limb-moving": 0.5,
}


def _hyperbolic(ratio: float, layout: SkeletonLayout) -> HyperbolicHierarchyMasker:
    """HA-CM's spatial masker on the encoder's fixed ball: curvature 1, the default clip radius."""
    return HyperbolicHierarchyMasker(ratio, layout=layout, curvature=1.0, clip_r=DEFAULT_CLIP_R)


# Each builder takes the nominal ratio, the layout and t_patch.
_BUILDERS: dict[MaskerName, Callable[[float, SkeletonLayout, int], Masker]] = {
    "random": lambda ratio, _, __: RandomMasker(ratio),
    "joint-tube": lambda ratio, _, __: RandomMasker(ratio, granularity="joint"),
    "frame": lambda ratio, _, __: RandomMasker(ratio, granularity="frame"),
    "motion": lambda ratio, _, t_patch: MotionAwareMasker(ratio, t_patch=t_patch),
    "hyperbolic": lambda ratio, layout, _: _hyperbolic(ratio, layout),
    "attention": lambda ratio, _, __: GlobalAttentionMasker(ratio),
    "hacm-cross": lambda ratio, layout, _: CrossMasker.hacm(
        _hyperbolic(ratio, layout), mask_ratio=ratio
    ),
    "body-part": lambda ratio, layout, _: BodyPartMasker(
        ratio, layout=layout, draw_per="time_patch"
    ),
    "tube": lambda ratio, layout, _: SemanticTubeMasker(ratio, layout=layout),
    "degree-hub-still": lambda ratio, layout, t_patch: DegreeMotionMasker(
        "hub_still", ratio, layout=layout, t_patch=t_patch
    ),
    "degree-limb-moving": lambda ratio, layout, t_patch: DegreeMotionMasker(
        "limb_moving", ratio, layout=layout, t_patch=t_patch
    ),
}


def create_masker(
    name: MaskerName,
    *,
    layout: str | SkeletonLayout = "nturgb+d",
    t_patch: int = 4,
    mask_ratio: RatioSpec | None = None,
) -> Masker:
    """Builds a masker by name, configured as ``create_mae`` uses it.

    | name | masker | default ratio |
    |---|---|---|
    | ``"random"`` | ``RandomMasker`` (MAE): single tokens | 0.9 |
    | ``"joint-tube"`` | ``RandomMasker(granularity="joint")``: joints in every time patch | 0.9 |
    | ``"frame"`` | ``RandomMasker(granularity="frame")``: whole time patches | 0.9 |
    | ``"motion"`` | ``MotionAwareMasker(t_patch=t_patch)`` (MAMP) | 0.9 |
    | ``"hyperbolic"`` | ``HyperbolicHierarchyMasker``, ball of curvature 1 (HA-CM) | 0.9 |
    | ``"attention"`` | ``GlobalAttentionMasker`` (HA-CM's temporal criterion) | 0.9 |
    | ``"hacm-cross"`` | ``CrossMasker.hacm`` of the two above (HA-CM) | 0.9 |
    | ``"body-part"`` | ``BodyPartMasker(draw_per="time_patch")`` (SkeletonMAE) | 0.9 |
    | ``"tube"`` | ``SemanticTubeMasker`` (SLiM): body-part joints × time runs | ``(0.5, 0.9)`` |
    | ``"degree-hub-still"`` | ``DegreeMotionMasker("hub_still")`` (ASMa) | 0.5 |
    | ``"degree-limb-moving"`` | ``DegreeMotionMasker("limb_moving")`` (ASMa) | 0.5 |

    ``"joint-tube"`` and ``"tube"`` are different maskers. ``"joint-tube"`` is the classic
    random tube (Wu et al.'s SkeletonMAE joint-level masking): ``round(r·V)`` joints drawn
    uniformly, each hidden in every time patch of the clip. ``"tube"`` is SLiM's semantic tube:
    runs of neighbouring joints of one body part over runs of time patches, drawn until exactly
    ``round(r·Tp·V)`` tokens are hidden. ``"frame"`` hides ``round(r·Tp)`` whole time patches.

    ``"joint-tube"`` and ``"frame"`` default to 0.9 like ``"random"``: the three are
    ``RandomMasker`` at three granularities, so at their defaults only the unit differs. Their
    count is rounded to whole units and clamped so that at least one joint (time patch) is
    hidden and one stays visible, so the share of tokens hidden is the ratio rounded: at 0.9,
    23 of NTU's 25 joints (92 %), 18 of MSR Action3D's 20 (90 %), 27 of 30 time patches
    (90 %), 7 of 8 (87.5 %), 1 of 2 (50 %). A grid with one joint (time patch) cannot be
    masked this way: ``create_mae`` refuses it, and the masker raises at call time.

    Every masker takes the ``(Tp, V)`` grid of the layout's joints, one token per joint.
    ``SaliencyMasker`` has no name: it needs a ``saliency=`` map at every call, which
    ``TransformerMAE`` does not pass.

    Args:
        name: One of the names above.
        layout: Skeleton layout or registered name, for the maskers that read one.
        t_patch: Frames per token, for the maskers that read raw coordinates.
        mask_ratio: A number in (0, 1), a ``(low, high)`` range drawn once per batch or a
            ``RatioSchedule`` (which the caller steps); None for the default above.

    Returns:
        The masker.

    Raises:
        ValueError: On an unknown name or an invalid ratio or ``t_patch``.
        KeyError: If ``layout`` names no registered layout.

    Examples:
        >>> from skelmask.models import create_masker
        >>> masker = create_masker("tube", layout="msr-action3d")
        >>> type(masker).__name__, masker.ratio_spec
        ('SemanticTubeMasker', (0.5, 0.9))
        >>> create_masker("random", mask_ratio=0.75)(torch.randn(2, 8, 25, 16)).num_hidden
        150
        >>> joints = create_masker("joint-tube")  # 23 of 25 joints, in all 8 time patches
        >>> joints.granularity, joints(torch.randn(2, 8, 25, 16)).num_hidden
        ('joint', 184)
    """
    if name not in _MASKER_NAMES:
        raise ValueError(f"masker must be one of {list(_MASKER_NAMES)}, got {name!r}")
    check_positive_int(t_patch, "t_patch")
    spec = _DEFAULT_RATIOS[name] if mask_ratio is None else check_ratio_spec(mask_ratio)
    masker = _BUILDERS[name](nominal_ratio(spec), get_layout(layout), t_patch)
    if not isinstance(spec, float):
        # A range or schedule goes on the outer masker (a CrossMasker's branches read theirs
        # at the nominal value).
        masker.mask_ratio = spec
    return masker


def create_mae(
    preset: Preset,
    *,
    layout: str | SkeletonLayout = "nturgb+d",
    num_frames: int = 120,
    t_patch: int = 4,
    in_channels: int = 3,
    embed_dim: int = 256,
    depth: int = 8,
    num_heads: int = 8,
    decoder_dim: int = 256,
    decoder_depth: int = 3,
    mask_ratio: RatioSpec | None = None,
    decoder_heads: int | None = None,
    masker: MaskerName | Masker | None = None,
    target: Target | None = None,
    target_eps: float = 1e-6,
    mask_temperature: float | None = None,
) -> TransformerMAE:
    """Builds a ``TransformerMAE`` in the configuration of a published method.

    * ``"mae"``: uniform ``RandomMasker``, coordinate target (He et al.).
    * ``"mamp"``: ``MotionAwareMasker`` (temperature 0.8, salient motion
      hidden), motion target (Mao et al.).
    * ``"hacm"``: ``CrossMasker.hacm`` — global temporal attention on even time patches and
      ``HyperbolicHierarchyMasker`` on odd ones, each hiding ``mask_ratio`` of its
      branch — a hyperbolic encoder, motion target and ``CrossContrastLoss``
      with its defaults (Yin & Cao). The masker's ball has the encoder's fixed curvature 1
      and clip radius, and is not learnable: masking scores carry no gradient, so a learnable
      masker curvature would never be updated (and would break DDP's
      ``find_unused_parameters=False``).

    Every target is normalised per patch. The joint count is the layout's; nothing is specific
    to NTU RGB+D. HA-CM's own configuration is ``num_frames=72, t_patch=3`` on 18 joints; MAMP's
    is ``num_frames=120, t_patch=4`` on 25.

    ``masker`` swaps the preset's masker and keeps its encoder, target and losses: a name of
    ``create_masker`` (``"joint-tube"``, ``"frame"``, ``"tube"``, ``"degree-hub-still"``, ...),
    built for this layout and ``t_patch``, or a ``Masker`` of your own for the
    ``(T // t_patch, V)`` grid. ``"hacm"``'s cross-contrast loss compares the two branches of a
    ``CrossMasker``, so that preset takes ``"hacm-cross"`` or a ``CrossMasker`` only. ``target``
    likewise swaps the reconstruction target and keeps the rest, for target ablations at a fixed
    masker. The masker is tried on the grid's size here, so a grid it cannot mask (``"frame"``
    with one time patch, ``"hacm-cross"`` with fewer than two) is an error when the model is
    built, not at its first batch.

    Args:
        preset: ``"mae"``, ``"mamp"`` or ``"hacm"``.
        layout: Skeleton layout or registered name; ``V = layout.num_joints``.
        num_frames: Frames per clip ``T``; a multiple of ``t_patch``.
        t_patch: Frames per token.
        in_channels: Coordinates per joint ``C``.
        embed_dim: Encoder width.
        depth: Encoder blocks.
        num_heads: Encoder attention heads.
        decoder_dim: Decoder width.
        decoder_depth: Decoder blocks.
        mask_ratio: Fraction of tokens hidden: a number in (0, 1), a ``(low, high)`` range
            drawn once per batch or a ``RatioSchedule`` (which the caller steps once per
            training step). None: 0.9 for the presets' maskers, a named masker's default
            otherwise (see ``create_masker``). Not with a ``Masker`` instance, which carries
            its own. A varying ratio changes the count, and ``torch.compile`` specialises on
            it (``docs/maskers/schedules.md``).
        decoder_heads: Decoder attention heads; default ``num_heads``.
        masker: None for the preset's masker, a ``create_masker`` name, or a ``Masker``.
        target: None for the preset's target (``"coords"`` for ``"mae"``, ``"motion"``
            otherwise), or ``"coords"``, ``"motion"`` or ``"acceleration"``.
        target_eps: The per-patch normalisation's variance floor (``TransformerMAE``).
        mask_temperature: The sampling temperature ``tau`` of a score-guided masker (motion,
            hyperbolic, attention): MAMP uses 0.80 on NTU-60 and PKU-MMD, 0.75 on
            NTU-120. None keeps the masker's default.

    Returns:
        The model, in training mode.

    Raises:
        ValueError: On an unknown preset or masker name, an invalid size or ratio, a masker
            that needs call-time inputs ``TransformerMAE`` does not pass (``saliency=``), a
            ratio given with a ``Masker`` instance, ``"hacm"`` without a ``CrossMasker``, a
            ``mask_temperature`` for a masker that does not sample from scores, or a masker
            that cannot mask the ``(num_frames // t_patch, V)`` grid.
        TypeError: If ``masker`` is neither a name nor a ``Masker``.
        KeyError: If ``layout`` names no registered layout.

    Examples:
        >>> from skelmask.models import create_mae
        >>> mae = create_mae(
        ...     "hacm",
        ...     layout="msr-action3d",
        ...     num_frames=8,
        ...     embed_dim=16,
        ...     depth=1,
        ...     num_heads=2,
        ...     decoder_dim=8,
        ...     decoder_depth=1,
        ... )
        >>> out = mae(0.1 * torch.randn(2, 3, 8, 20, 1))  # (N, C, T, V, M), metres
        >>> sorted(out.losses), out.pred.shape
        (['contrast', 'reconstruction'], torch.Size([2, 40, 12]))
        >>> tubes = create_mae(
        ...     "mamp",
        ...     layout="msr-action3d",
        ...     num_frames=8,
        ...     embed_dim=16,
        ...     depth=1,
        ...     num_heads=2,
        ...     decoder_dim=8,
        ...     masker="tube",
        ... )
        >>> type(tubes.masker).__name__, tubes.target
        ('SemanticTubeMasker', 'motion')
    """
    if preset not in _PRESETS:
        raise ValueError(f"preset must be one of {list(_PRESETS)}, got {preset!r}")
    skeleton = get_layout(layout)
    chosen = _preset_masker(preset, masker, skeleton, t_patch, mask_ratio)
    if mask_temperature is not None:
        if not isinstance(chosen, ScoreGuidedMasker):
            raise ValueError(
                f"mask_temperature={mask_temperature!r}: {type(chosen).__name__} does not sample "
                "from scores; a temperature applies to the motion, hyperbolic and attention "
                "maskers"
            )
        chosen.temperature = mask_temperature
    encoder = SkeletonEncoder(
        num_joints=skeleton.num_joints,
        num_frames=num_frames,
        t_patch=t_patch,
        in_channels=in_channels,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        hyperbolic=preset == "hacm",
        clip_r=DEFAULT_CLIP_R,
    )
    _check_grid(chosen, num_frames, t_patch, skeleton.num_joints)
    if target is None:
        target = PRESET_TARGETS[preset]
    contrast = CrossContrastLoss() if preset == "hacm" else None
    return TransformerMAE(
        encoder,
        chosen,
        decoder_dim=decoder_dim,
        decoder_depth=decoder_depth,
        decoder_heads=num_heads if decoder_heads is None else decoder_heads,
        target=target,
        target_eps=target_eps,
        contrast=contrast,
    )


def _preset_masker(
    preset: Preset,
    masker: MaskerName | Masker | None,
    layout: SkeletonLayout,
    t_patch: int,
    mask_ratio: RatioSpec | None,
) -> Masker:
    """The masker of ``create_mae``: the preset's, a named one, or the caller's, checked."""
    if masker is None:
        chosen = create_masker(
            PRESET_MASKERS[preset],
            layout=layout,
            t_patch=t_patch,
            mask_ratio=0.9 if mask_ratio is None else mask_ratio,
        )
    elif isinstance(masker, str):
        chosen = create_masker(masker, layout=layout, t_patch=t_patch, mask_ratio=mask_ratio)
    elif isinstance(masker, Masker):
        if mask_ratio is not None:
            raise ValueError(
                f"mask_ratio={mask_ratio!r} was given with a {type(masker).__name__} instance, "
                "which has its own ratio; set masker.mask_ratio instead"
            )
        chosen = masker
    else:
        raise TypeError(
            f"masker must be a name in {list(_MASKER_NAMES)} or a skelmask Masker, got "
            f"{type(masker).__name__}"
        )
    if "saliency" in chosen.call_inputs:
        raise ValueError(
            f"{type(chosen).__name__} needs saliency= at every call, which SkeletonMAE does not "
            "pass; call the masker from your own training step instead"
        )
    if preset == "hacm" and not isinstance(chosen, CrossMasker):
        raise ValueError(
            "preset 'hacm' keeps HA-CM's cross-contrast loss, which compares the two branches "
            f"of a CrossMasker; got {type(chosen).__name__}. Use masker='hacm-cross' or a "
            "CrossMasker, or preset 'mamp' for the same target without the contrast loss"
        )
    return chosen


def _check_grid(masker: Masker, num_frames: int, t_patch: int, num_joints: int) -> None:
    """Raises now, naming the sizes, if ``masker`` cannot mask the model's token grid.

    Otherwise the error would come from the first training step, after the data has loaded.
    """
    time_patches = num_frames // t_patch
    try:
        masker.num_hidden((time_patches, num_joints))
    except ValueError as error:
        raise ValueError(
            f"{type(masker).__name__} cannot mask the {time_patches} × {num_joints} token grid "
            f"(num_frames={num_frames} // t_patch={t_patch} time patches × the layout's "
            f"{num_joints} joints): {error}"
        ) from error
