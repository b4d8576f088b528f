"""Draws the documentation's masker pictures from real MSR Action3D sequences.

Run from the repository root (needs the ``viz`` extra):

    python docs/scripts/make_figures.py --data-root ../shared/data/msr-action3d --out docs/images

For every token masker and SkeleMix it writes ``<out>/maskers/<name>.png``: one skeleton frame with its hidden joints marked, the clip's
``Tp × V`` mask and, where the masker samples from scores, its sampling weights. It also writes
``<out>/maskers/cross.gif``, a two-hand wave under the HA-CM cross mask; ``degree-motion.png``,
ASMa's two complementary views; and ``schedules.png``, masks at the two ends of a ratio
schedule with AMR's motion-energy weights of the hidden tokens.

The clips are 32 frames resampled from the whole sequence, cut into tokens of 4 frames × 1 joint
and embedded by a small, randomly initialised ``SkeletonEncoder`` (the state at the start of
pretraining). Every random draw is seeded, so the pictures are reproducible.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from skelmask.data import crop_and_resize, load_msr_action3d
from skelmask.data.arrays import SkeletonArrays
from skelmask.layouts import SkeletonLayout, get_layout
from skelmask.losses import motion_energy_weights, motion_target
from skelmask.maskers.attention import GlobalAttentionMasker
from skelmask.maskers.base import Masker, ScoreGuidedMasker
from skelmask.maskers.body_part import BodyPartMasker
from skelmask.maskers.cross import CrossMasker
from skelmask.maskers.degree import degree_motion_views
from skelmask.maskers.hyperbolic import HyperbolicHierarchyMasker
from skelmask.maskers.motion import MotionAwareMasker
from skelmask.maskers.random import RandomMasker
from skelmask.maskers.ratio import RatioSchedule
from skelmask.maskers.saliency import SaliencyMasker
from skelmask.maskers.skelemix import SkeleMix
from skelmask.maskers.tube import SemanticTubeMasker
from skelmask.models import SkeletonEncoder
from skelmask.tokens import MaskResult, expand_mask
from skelmask.viz import animate_sequence, plot_mask, plot_skeleton

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FRAMES, T_PATCH, WIDTH, MASK_RATIO, SEED = 32, 4, 64, 0.75, 0
# Tubes and ASMa's two views show their shape best when half of the grid is hidden.
HALF_RATIO = 0.5
SCHEDULE = RatioSchedule(0.5, 0.9, steps=1000, shape="cosine")
WAVE, TWO_HAND_WAVE = "a01_s01_e01", "a11_s01_e01"
ACTION_NAMES = {WAVE: "high arm wave", TWO_HAND_WAVE: "two hand wave"}
LAYOUT = "msr-action3d"
FIGSIZE, DPI = (12.0, 4.6), 80
GIF_FIGSIZE, GIF_DPI, GIF_FPS = (4.0, 4.0), 80, 8


def load_clips(data_root: Path) -> dict[str, torch.Tensor]:
    """The two sequences, each resampled to ``FRAMES`` frames, as ``(1, T, V, 3)`` float32."""
    train, test, _ = load_msr_action3d(data_root)
    clips = {}
    for name in (WAVE, TWO_HAND_WAVE):
        arrays = _holding(name, train, test)
        index = arrays.names.index(name)
        sample = arrays.data[index]  # (C, T, V, M)
        clip = crop_and_resize(sample, 0, int(arrays.lengths[index]), FRAMES)
        clips[name] = torch.from_numpy(np.ascontiguousarray(clip[..., 0].transpose(1, 2, 0)))[None]
    return clips


def _holding(name: str, *splits: SkeletonArrays) -> SkeletonArrays:
    for arrays in splits:
        if name in arrays.names:
            return arrays
    raise FileNotFoundError(f"sequence {name} is not in the MSR Action3D folder")


def embed(coords: torch.Tensor) -> torch.Tensor:
    """Tokens ``(B, Tp, V, WIDTH)`` of a seeded, untrained encoder's patch embedding."""
    torch.manual_seed(SEED)
    encoder = SkeletonEncoder(
        num_joints=coords.shape[2],
        num_frames=coords.shape[1],
        t_patch=T_PATCH,
        embed_dim=WIDTH,
        depth=1,
        num_heads=4,
    )
    with torch.no_grad():
        return encoder.embed_euclidean(coords)


def hyperbolic(layout: SkeletonLayout) -> HyperbolicHierarchyMasker:
    """HA-CM's spatial masker rooted at the trunk, at ``MASK_RATIO``."""
    return HyperbolicHierarchyMasker(
        MASK_RATIO, layout=layout, root_joints=layout.body_parts["trunk"]
    )


def build_maskers(layout: SkeletonLayout) -> dict[str, Masker]:
    """Every token masker at ``MASK_RATIO`` (body parts: two parts per time patch; tubes: half)."""
    return {
        "random": RandomMasker(MASK_RATIO),
        "motion-aware": MotionAwareMasker(MASK_RATIO, t_patch=T_PATCH),
        "hyperbolic": hyperbolic(layout),
        "global-attention": GlobalAttentionMasker(MASK_RATIO),
        "cross": CrossMasker.hacm(hyperbolic(layout), mask_ratio=MASK_RATIO),
        "body-part": BodyPartMasker(num_parts=2, layout=layout, draw_per="time_patch"),
        "tube": SemanticTubeMasker(HALF_RATIO, layout=layout),
        "saliency": SaliencyMasker(MASK_RATIO),
    }


def relative_speed(coords: torch.Tensor, layout: SkeletonLayout) -> torch.Tensor:
    """Per-token speed relative to the layout's centre joint ``(B, Tp, V)``, a stand-in saliency.

    MaskSem's saliency is a Grad-CAM map computed on relative motion, which needs a trained
    network; this draws the relative motion itself, so the picture shows the mechanics.
    """
    relative = coords - coords[:, :, layout.center : layout.center + 1]
    return motion_target(relative, T_PATCH).norm(dim=-1)


def weights_title(masker: Masker) -> str:
    """What a masker's ``probs`` mean: weights of the tokens it keeps or of those it hides."""
    children = [masker.first, masker.second] if isinstance(masker, CrossMasker) else [masker]
    directions = {child.direction for child in children if isinstance(child, ScoreGuidedMasker)}
    if directions == {"keep_high"}:
        return "keep probability (sampling weight)"
    if directions == {"hide_high"}:
        return "hide probability (sampling weight)"
    return "sampling weight"


def showcase_frame(coords: torch.Tensor, layout: SkeletonLayout) -> int:
    """The frame in which a hand is highest (y up): the most telling pose of a wave."""
    hands = [layout.joint_index("left_hand"), layout.joint_index("right_hand")]
    return int(coords[0, :, hands, 1].amax(dim=1).argmax())


def masker_figure(
    coords: torch.Tensor,
    grid_mask: torch.Tensor,
    weights: torch.Tensor | None,
    *,
    layout: SkeletonLayout,
    title: str,
    weights_label: str,
    mask_title: str = "token mask",
    mask_labels: tuple[str, str] = ("visible", "hidden"),
    more: Sequence[tuple[torch.Tensor, str]] = (),
) -> Figure:
    """Skeleton frame | token mask | sampling weights | more panels, for one clip ``(T, V, 3)``.

    Args:
        coords: ``(T, V, 3)`` clip.
        grid_mask: Bool ``(Tp, V)`` token mask, True = hidden.
        weights: Optional float ``(Tp, V)`` sampling weights.
        layout: The clip's layout.
        title: Figure title.
        weights_label: Title of the weights panel.
        mask_title: Title of the mask panel.
        mask_labels: Colour-bar names of visible and hidden tokens.
        more: Further ``(Tp, V)`` grids (bool masks or values), each with its title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    frame = showcase_frame(coords[None], layout)
    patch = frame // T_PATCH
    time_patches, joints = grid_mask.shape
    frame_hidden = expand_mask(grid_mask.reshape(1, -1), (time_patches, joints), T_PATCH)[0]
    panels = 3 if weights is not None else 2
    panels += len(more)
    # Wider for more than three panels; three or fewer keep the common size.
    figsize = (FIGSIZE[0] * max(panels, 3) / 3, FIGSIZE[1])
    figure = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(1, panels, width_ratios=[1.4] + [1.2] * (panels - 1))
    skeleton_axes: Axes = figure.add_subplot(grid[0])
    plot_skeleton(
        coords[frame],
        layout,
        hidden=frame_hidden[frame],
        ax=skeleton_axes,
        title=f"frame {frame + 1} of {len(coords)} (time patch {patch})\nred ✕ = {mask_labels[1]}",
    )
    heat_maps: list[Axes] = [figure.add_subplot(grid[i]) for i in range(1, panels)]
    plot_mask(grid_mask, layout=layout, ax=heat_maps[0], title=mask_title, labels=mask_labels)
    extra = ([(weights, weights_label)] if weights is not None else []) + list(more)
    for axes, (values, label) in zip(heat_maps[1:], extra, strict=True):
        plot_mask(values, layout=layout, ax=axes, title=label)
    for axes in heat_maps:
        # Frames the time patch of the frame drawn on the left.
        axes.axvspan(patch - 0.5, patch + 0.5, fill=False, edgecolor="#d62728", linewidth=2)
    figure.suptitle(title)
    return figure


def draw_maskers(clip: torch.Tensor, layout: SkeletonLayout, out: Path) -> list[Path]:
    """One picture per token masker, all on the same clip and tokens."""
    tokens = embed(clip)
    written = []
    for name, masker in build_maskers(layout).items():
        guidance = {"saliency": relative_speed(clip, layout)} if name == "saliency" else {}
        result: MaskResult = masker(
            tokens, coords=clip, generator=torch.Generator().manual_seed(SEED), **guidance
        )
        weights = None if result.probs is None else result.probs[0].reshape(result.grid_size)
        figure = masker_figure(
            clip[0],
            result.grid_mask[0],
            weights,
            layout=layout,
            title=(
                f"{type(masker).__name__} — MSR Action3D {WAVE} ({ACTION_NAMES[WAVE]}), "
                f"{result.num_hidden} of {result.mask.shape[1]} tokens hidden"
            ),
            weights_label=weights_title(masker),
        )
        path = out / f"{name}.png"
        figure.savefig(path)
        written.append(path)
    return written


def draw_degree_motion(clip: torch.Tensor, layout: SkeletonLayout, out: Path) -> Path:
    """ASMa's two views of the wave: hubs in still time patches, limbs in moving ones."""
    hub, limb = degree_motion_views(
        embed(clip),
        clip,
        mask_ratio=HALF_RATIO,
        layout=layout,
        t_patch=T_PATCH,
        generator=torch.Generator().manual_seed(SEED),
    )
    figure = masker_figure(
        clip[0],
        hub.grid_mask[0],
        limb.grid_mask[0],
        layout=layout,
        title=(
            f"degree_motion_views — {WAVE} ({ACTION_NAMES[WAVE]}): the views hide "
            f"{hub.num_hidden} and {limb.num_hidden} of {hub.mask.shape[1]} tokens, "
            "complementary"
        ),
        weights_label='"limb_moving" view',
        mask_title='"hub_still" view',
    )
    path = out / "degree-motion.png"
    figure.savefig(path)
    return path


def draw_schedules(clip: torch.Tensor, layout: SkeletonLayout, out: Path) -> Path:
    """Masks at the start and end of a ratio ramp, and AMR's weights of the hidden tokens."""
    tokens = embed(clip)
    masker = RandomMasker(SCHEDULE)
    masks = []
    for step in (0, SCHEDULE.steps):
        ratio = SCHEDULE.value(step)
        result = masker(tokens, mask_ratio=ratio, generator=torch.Generator().manual_seed(SEED))
        masks.append((result.grid_mask[0], f"step {step}: ratio {ratio:.2f}"))
    (first, first_title), (last, last_title) = masks
    target = motion_target(clip, T_PATCH)  # (1, Tp, V, P), before per-patch normalisation
    weights = motion_energy_weights(target, last.unsqueeze(0))[0].view(last.shape)
    figure = masker_figure(
        clip[0],
        first,
        last,
        layout=layout,
        title=(
            f"{SCHEDULE.shape} ratio schedule {SCHEDULE.start} → {SCHEDULE.end} over "
            f"{SCHEDULE.steps} steps, and AMR's weights — {WAVE} ({ACTION_NAMES[WAVE]})"
        ),
        weights_label=last_title,
        mask_title=first_title,
        more=[(weights * last, "AMR weight of each hidden token")],
    )
    path = out / "schedules.png"
    figure.savefig(path)
    return path


def draw_skelemix(clips: dict[str, torch.Tensor], layout: SkeletonLayout, out: Path) -> Path:
    """SkeleMix pastes a donor's body parts and frames: the wave with the two-hand wave mixed in."""
    mix = SkeleMix(layout, t_patch=T_PATCH)
    # (N, C, T, V, M) with sample 0 the wave and sample 1, its only possible donor, the other.
    batch = torch.cat([clips[WAVE], clips[TWO_HAND_WAVE]]).permute(0, 3, 1, 2).unsqueeze(-1)
    result = mix(batch, generator=torch.Generator().manual_seed(SEED))
    mixed = result.mixed[0, ..., 0].permute(1, 2, 0)  # (T, V, 3)
    figure = masker_figure(
        mixed,
        result.feature_mask[0],
        None,
        layout=layout,
        title=(
            f"SkeleMix — {WAVE} ({ACTION_NAMES[WAVE]}) with body parts and frames of "
            f"{TWO_HAND_WAVE} ({ACTION_NAMES[TWO_HAND_WAVE]}) pasted in (red = pasted)"
        ),
        weights_label="",
        mask_title=f"mixed region per {T_PATCH} frames",
        mask_labels=("own", "from donor"),
    )
    path = out / "skelemix.png"
    figure.savefig(path)
    return path


def draw_cross_gif(clip: torch.Tensor, layout: SkeletonLayout, out: Path) -> Path:
    """The two-hand wave, frame by frame, under the HA-CM cross mask."""
    masker = CrossMasker.hacm(hyperbolic(layout), mask_ratio=MASK_RATIO)
    result = masker(embed(clip), coords=clip, generator=torch.Generator().manual_seed(SEED))
    return animate_sequence(
        clip[0],
        layout,
        out / "cross.gif",
        mask=result.grid_mask[0],
        t_patch=T_PATCH,
        fps=GIF_FPS,
        title="HA-CM cross mask",
        figsize=GIF_FIGSIZE,
        dpi=GIF_DPI,
    )


def main() -> None:
    """Parses the arguments and writes every picture."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data/msr-action3d"))
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    out = args.out / "maskers"
    out.mkdir(parents=True, exist_ok=True)
    layout = get_layout(LAYOUT)
    clips = load_clips(args.data_root)
    written = draw_maskers(clips[WAVE], layout, out)
    written.append(draw_degree_motion(clips[WAVE], layout, out))
    written.append(draw_schedules(clips[WAVE], layout, out))
    written.append(draw_skelemix(clips, layout, out))
    written.append(draw_cross_gif(clips[TWO_HAND_WAVE], layout, out))
    for path in written:
        print(f"{path}  {path.stat().st_size / 1024:.0f} kB")


if __name__ == "__main__":
    main()
