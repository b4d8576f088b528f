"""Pictures of skeletons and masks: a frame with its hidden joints, a mask heat-map, a GIF.

Needs the optional ``viz`` extra (``pip install 'skelmask[viz]'``: matplotlib and Pillow). Both
are imported inside the functions, so ``import skelmask`` never loads them. Figures are built as
``matplotlib.figure.Figure`` objects on an Agg canvas rather than through pyplot: nothing
here changes the user's backend or global state or opens a window, so it runs headless.

Coordinates are drawn as given (x to the right, y up); 3-D coordinates are projected by a
``view``: ``"front"`` (x, y), ``"side"`` (z, y) or ``"top"`` (x, z).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, get_args

import numpy as np
import numpy.typing as npt
import torch

from skelmask._checks import as_integer, check_positive, check_positive_int
from skelmask.layouts import SkeletonLayout, get_layout
from skelmask.tokens import MaskResult, expand_mask

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

__all__ = ["MaskField", "View", "animate_sequence", "figure_to_array", "plot_mask", "plot_skeleton"]

View: TypeAlias = Literal["front", "side", "top"]
"""Projection of 3-D coordinates: front (x, y), side (z, y) or top (x, z)."""

MaskField: TypeAlias = Literal["mask", "probs", "scores"]
"""Which field of a ``MaskResult`` ``plot_mask`` draws."""

ArrayLike: TypeAlias = "torch.Tensor | npt.ArrayLike"

_VIEWS: tuple[View, ...] = get_args(View)
_FIELDS: tuple[MaskField, ...] = get_args(MaskField)
_VIEW_AXES: dict[View, tuple[int, int]] = {"front": (0, 1), "side": (2, 1), "top": (0, 2)}
_AXIS_NAMES = "xyz"
_NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64)
_MISSING_MATPLOTLIB = "skelmask.viz needs matplotlib: pip install 'skelmask[viz]'"

_BONE_COLOUR = "#7f7f7f"
_VISIBLE_COLOUR = "#1f77b4"
_HIDDEN_COLOUR = "#d62728"
_MASK_COLOURS = ("#deebf7", "#08306b")  # visible, hidden


def plot_skeleton(
    coords: ArrayLike,
    layout: SkeletonLayout | str,
    *,
    hidden: ArrayLike | None = None,
    ax: Axes | None = None,
    view: View = "front",
    title: str | None = None,
    figsize: tuple[float, float] = (4.0, 4.0),
    dpi: float = 100.0,
) -> Figure:
    """Draws one skeleton frame: bones from the layout's tree, hidden joints marked.

    Visible joints are filled blue dots; hidden joints are hollow red crosses.

    Args:
        coords: One frame, ``(V, 3)`` or ``(V, 2)`` floats (tensor or array), ``V`` the
            layout's joint count. 2-D coordinates are drawn as given.
        layout: Skeleton layout or registered name; its edges are the bones.
        hidden: Optional bool ``(V,)``; True marks a hidden joint.
        ax: Axes to draw into; None creates a new figure of ``figsize`` inches at ``dpi``.
        view: Projection of 3-D coordinates, ``"front"``, ``"side"`` or ``"top"``. 2-D
            coordinates accept only ``"front"``.
        title: Optional axes title.
        figsize: Size in inches of a new figure.
        dpi: Resolution of a new figure; the image is ``figsize·dpi`` pixels.

    Returns:
        The figure drawn into (``ax``'s figure when given).

    Raises:
        ImportError: If matplotlib is not installed.
        ValueError: If ``coords`` is not ``(V, 2)`` or ``(V, 3)`` with the layout's ``V``, holds
            NaN or infinity, ``hidden`` is not ``(V,)``, or ``view`` is unknown.
        TypeError: If ``hidden`` is not boolean.

    Examples:
        >>> from skelmask.layouts import get_layout
        >>> layout = get_layout("msr-action3d")
        >>> hidden = torch.zeros(20, dtype=torch.bool)
        >>> hidden[[9, 11]] = True  # left wrist and hand
        >>> fig = plot_skeleton(torch.randn(20, 3), layout, hidden=hidden, dpi=50)
        >>> figure_to_array(fig).shape
        (200, 200, 4)
    """
    skeleton = get_layout(layout)
    points = _as_float_array(coords, "coords")
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise ValueError(f"coords must have shape (V, 2) or (V, 3), got {points.shape}")
    _check_joints(points.shape[0], skeleton, "coords", points.shape)
    _check_finite(points, "coords")
    hidden_joints = _bool_array(hidden, (skeleton.num_joints,), "hidden", "(V,)")
    planar = _project(points, view)
    figure, axes = _figure_and_axes(ax, figsize, dpi)
    _draw_skeleton(axes, planar, skeleton, hidden_joints)
    _style_skeleton_axes(axes, planar, view, points.shape[1])
    if title is not None:
        axes.set_title(title)
    return figure


def plot_mask(
    values: ArrayLike | MaskResult,
    *,
    sample: int = 0,
    field: MaskField = "mask",
    layout: SkeletonLayout | str | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    cmap: str | Colormap | None = None,
    labels: tuple[str, str] = ("visible", "hidden"),
    figsize: tuple[float, float] = (6.0, 4.0),
    dpi: float = 100.0,
) -> Figure:
    """Draws a token mask or per-token values as a heat-map, time along x and joints along y.

    A bool mask gets two colours (light = False, dark = True) and a colour bar naming them
    ``labels``; any other numeric grid (keep probabilities, scores) gets a continuous colour map
    and a colour bar.

    Args:
        values: Bool mask ``(Tp, Vp)`` (True = hidden) or numeric ``(Tp, Vp)`` values, as a tensor
            or array; or a ``MaskResult``, of which ``field`` of sample
            ``sample`` is drawn.
        sample: Sample of a ``MaskResult`` to draw; ignored for a grid.
        field: ``"mask"`` (``grid_mask``), ``"probs"`` or ``"scores"`` of a ``MaskResult``;
            ignored for a grid.
        layout: Optional layout whose joint names label the y axis; it must have ``Vp`` joints.
            None labels joints by index.
        ax: Axes to draw into; None creates a new figure of ``figsize`` inches at ``dpi``.
        title: Optional axes title.
        cmap: Colour map name or object; None picks the two mask colours for a bool grid and
            ``"viridis"`` for floats.
        labels: Colour-bar names of False and True entries of a bool grid.
        figsize: Size in inches of a new figure.
        dpi: Resolution of a new figure.

    Returns:
        The figure drawn into (``ax``'s figure when given).

    Raises:
        ImportError: If matplotlib is not installed.
        ValueError: If the grid is not 2-D and non-empty, holds NaN or infinity, ``layout`` has a
            different joint count, ``field`` is unknown or missing from the ``MaskResult``, or
            ``sample`` is out of range.
        TypeError: If ``sample`` is not an integer.

    Examples:
        >>> from skelmask.maskers.random import RandomMasker
        >>> result = RandomMasker(0.75)(torch.randn(2, 8, 20, 16))
        >>> fig = plot_mask(result, sample=1, layout="msr-action3d", dpi=50)
        >>> figure_to_array(fig).shape
        (200, 300, 4)
    """
    grid = _mask_grid(values, sample, field)
    joint_names: tuple[str, ...] | None = None
    if layout is not None:
        skeleton = get_layout(layout)
        _check_joints(grid.shape[1], skeleton, "values", grid.shape)
        joint_names = skeleton.joint_names
    figure, axes = _figure_and_axes(ax, figsize, dpi)
    if grid.dtype == np.bool_:
        colours = _colormap(cmap, default=_MASK_COLOURS)
        image = axes.imshow(
            grid.T.astype(np.float32),
            cmap=colours,
            vmin=0.0,
            vmax=1.0,
            aspect="auto",
            interpolation="nearest",
        )
        bar = figure.colorbar(image, ax=axes, ticks=[0.25, 0.75])
        bar.ax.set_yticklabels(list(labels))
    else:
        image = axes.imshow(
            grid.T, cmap=_colormap(cmap, default=None), aspect="auto", interpolation="nearest"
        )
        figure.colorbar(image, ax=axes)
    axes.set_xlabel("time patch")
    axes.set_ylabel("joint" if joint_names is not None else "joint patch")
    if joint_names is not None:
        axes.set_yticks(range(len(joint_names)), joint_names, fontsize="x-small")
    if title is not None:
        axes.set_title(title)
    return figure


def animate_sequence(
    coords: ArrayLike,
    layout: SkeletonLayout | str,
    path: str | Path,
    *,
    mask: ArrayLike | None = None,
    t_patch: int = 1,
    v_patch: int = 1,
    fps: int = 10,
    view: View = "front",
    title: str | None = None,
    figsize: tuple[float, float] = (4.0, 4.0),
    dpi: float = 80.0,
) -> Path:
    """Writes an animated GIF of a sequence, one frame per skeleton frame, hidden joints marked.

    The axes limits are fixed over the whole sequence and every frame's title carries its
    number. Written with matplotlib's ``PillowWriter`` (no ffmpeg needed).

    Args:
        coords: Sequence ``(T, V, C)`` with ``C`` 2 or 3 and ``V`` the layout's joint count.
        layout: Skeleton layout or registered name.
        path: Output ``.gif`` file; its folder must exist.
        mask: Optional bool mask, True = hidden: per frame and joint ``(T, V)``, or a token
            mask ``(T // t_patch, V // v_patch)`` that is expanded to frames and joints with
            ``expand_mask``.
        t_patch: Frames per token of a token mask; ``T`` must be a multiple of it.
        v_patch: Joints per token of a token mask; ``V`` must be a multiple of it.
        fps: Frames per second, a positive integer.
        view: Projection of 3-D coordinates (see ``plot_skeleton``).
        title: Optional text put before each frame's number.
        figsize: Size in inches of every frame.
        dpi: Resolution; every frame is ``figsize·dpi`` pixels.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ImportError: If matplotlib is not installed.
        ValueError: If ``coords`` is not a non-empty ``(T, V, 2|3)`` sequence with the layout's
            ``V`` and finite values, the mask's shape does not fit, a patch size does not divide
            its axis, ``fps`` is not a positive integer, ``view`` is unknown, or ``path`` does
            not end in ``.gif``.
        FileNotFoundError: If ``path``'s folder does not exist (checked before any drawing).
        TypeError: If ``mask`` is not boolean.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> token_mask = torch.rand(2, 20) < 0.5  # (T // t_patch, V), t_patch = 2
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     gif = animate_sequence(
        ...         torch.randn(4, 20, 3),
        ...         "msr-action3d",
        ...         Path(folder) / "clip.gif",
        ...         mask=token_mask,
        ...         t_patch=2,
        ...         dpi=25,
        ...     )
        ...     gif.stat().st_size > 0
        True
    """
    skeleton = get_layout(layout)
    sequence = _as_float_array(coords, "coords")
    if sequence.ndim != 3 or sequence.shape[2] not in (2, 3):
        raise ValueError(f"coords must have shape (T, V, 2) or (T, V, 3), got {sequence.shape}")
    num_frames = sequence.shape[0]
    if num_frames == 0:
        raise ValueError(f"coords must hold at least one frame, got shape {sequence.shape}")
    _check_joints(sequence.shape[1], skeleton, "coords", sequence.shape)
    _check_finite(sequence, "coords")
    frames_per_second = check_positive_int(fps, "fps")
    hidden = _frame_mask(mask, num_frames, skeleton.num_joints, t_patch, v_patch)
    planar = _project(sequence, view)
    output = _gif_path(path)
    try:
        from matplotlib.animation import PillowWriter  # noqa: PLC0415
    except ImportError as error:
        raise ImportError(_MISSING_MATPLOTLIB) from error
    figure, axes = _figure_and_axes(None, figsize, dpi)
    writer = PillowWriter(fps=frames_per_second)
    with writer.saving(figure, str(output), dpi):
        # One redraw per frame: rendering, not a numeric hot path.
        for frame in range(num_frames):
            axes.clear()
            _draw_skeleton(axes, planar[frame], skeleton, hidden[frame])
            _style_skeleton_axes(axes, planar, view, sequence.shape[2])
            label = f"frame {frame + 1}/{num_frames}"
            axes.set_title(label if title is None else f"{title} — {label}")
            writer.grab_frame()
    return output


def _gif_path(path: str | Path) -> Path:
    """``path`` as a ``Path`` after checking, before any frame is drawn, its suffix and folder.

    ``PillowWriter`` writes GIF only, and would fail only after drawing every frame.
    """
    output = Path(path)
    if output.suffix.lower() != ".gif":
        raise ValueError(
            f"path must end in .gif (animations are written as GIF), got {str(output)!r}"
        )
    if not output.parent.is_dir():
        raise FileNotFoundError(f"the folder of path does not exist: {str(output.parent)!r}")
    return output


def figure_to_array(fig: Figure) -> npt.NDArray[np.uint8]:
    """Renders a figure to pixels.

    Args:
        fig: Any matplotlib figure (pyplot's included; its canvas is not replaced).

    Returns:
        Uint8 RGBA array ``(H, W, 4)``, ``H = height·dpi`` and ``W = width·dpi`` pixels.

    Examples:
        >>> fig = plot_skeleton(torch.zeros(20, 2), "msr-action3d", figsize=(2, 1), dpi=40)
        >>> figure_to_array(fig).shape, figure_to_array(fig).dtype
        ((40, 80, 4), dtype('uint8'))
    """
    from PIL import Image  # noqa: PLC0415  (a matplotlib dependency, so present with it)

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    buffer.seek(0)
    with Image.open(buffer) as image:
        pixels: npt.NDArray[np.uint8] = np.array(image.convert("RGBA"), dtype=np.uint8)
    return pixels


def _figure_and_axes(
    ax: Axes | None, figsize: tuple[float, float], dpi: float
) -> tuple[Figure, Axes]:
    """``ax`` and its root figure, or a new Agg figure with one axes."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415
    except ImportError as error:
        raise ImportError(_MISSING_MATPLOTLIB) from error
    if ax is not None:
        parent = ax.figure
        while not isinstance(parent, Figure):  # a SubFigure: climb to the root figure
            parent = parent.figure
        return parent, ax
    width, height = (check_positive(size, "figsize") for size in figsize)
    figure = Figure(figsize=(width, height), dpi=check_positive(dpi, "dpi"), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _draw_skeleton(
    axes: Axes,
    planar: npt.NDArray[np.float64],
    skeleton: SkeletonLayout,
    hidden: npt.NDArray[np.bool_],
) -> None:
    """Bones as one line collection, visible joints as dots, hidden joints as hollow crosses."""
    from matplotlib.collections import LineCollection  # noqa: PLC0415

    bones = np.asarray(skeleton.edges, dtype=np.int64).reshape(-1, 2)
    axes.add_collection(
        LineCollection(list(planar[bones]), colors=_BONE_COLOUR, linewidths=2.0, zorder=1)
    )
    shown = planar[~hidden]
    axes.scatter(shown[:, 0], shown[:, 1], s=30, c=_VISIBLE_COLOUR, zorder=2)
    masked = planar[hidden]
    axes.scatter(
        masked[:, 0],
        masked[:, 1],
        s=90,
        marker="X",
        facecolors="none",
        edgecolors=_HIDDEN_COLOUR,
        linewidths=1.5,
        zorder=3,
    )


def _style_skeleton_axes(
    axes: Axes, planar: npt.NDArray[np.float64], view: View, channels: int
) -> None:
    """Equal aspect, limits around all points of ``planar`` ``(..., 2)``, no ticks."""
    flat = planar.reshape(-1, 2)
    low, high = flat.min(axis=0), flat.max(axis=0)
    centre = (low + high) / 2
    half = max(float((high - low).max()) / 2, 1e-6) * 1.1
    axes.set_xlim(centre[0] - half, centre[0] + half)
    axes.set_ylim(centre[1] - half, centre[1] + half)
    axes.set_aspect("equal")
    axes.set_xticks([])
    axes.set_yticks([])
    if channels == 3:
        horizontal, vertical = _VIEW_AXES[view]
        axes.set_xlabel(_AXIS_NAMES[horizontal])
        axes.set_ylabel(_AXIS_NAMES[vertical])


def _project(points: npt.NDArray[np.float64], view: View) -> npt.NDArray[np.float64]:
    """``(..., 3)`` → ``(..., 2)`` by ``view``; ``(..., 2)`` is returned as is (front only)."""
    if view not in _VIEWS:
        raise ValueError(f"view must be one of {list(_VIEWS)}, got {view!r}")
    if points.shape[-1] == 2:
        if view != "front":
            raise ValueError(f"2-D coordinates have only the 'front' view, got view={view!r}")
        return points
    horizontal, vertical = _VIEW_AXES[view]
    return points[..., [horizontal, vertical]]


def _to_numpy(values: ArrayLike) -> npt.NDArray[Any]:
    """A tensor (detached, on the CPU) or array-like as a numpy array of the same kind.

    Float formats numpy lacks (bfloat16 from autocast, float8) become float32.
    """
    if isinstance(values, torch.Tensor):
        tensor = values.detach().cpu()
        if tensor.is_floating_point() and tensor.dtype not in _NUMPY_FLOATS:
            tensor = tensor.float()
        return tensor.numpy()
    return np.asarray(values)


def _as_float_array(values: ArrayLike, name: str) -> npt.NDArray[np.float64]:
    """A tensor or array-like as a float64 numpy array."""
    try:
        return np.asarray(_to_numpy(values), dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric, got {type(values).__name__}") from error


def _bool_array(
    values: ArrayLike | None, shape: tuple[int, ...], name: str, symbolic: str
) -> npt.NDArray[np.bool_]:
    """A bool array of ``shape``; all False when ``values`` is None."""
    if values is None:
        return np.zeros(shape, dtype=np.bool_)
    array = _to_numpy(values)
    if array.dtype != np.bool_:
        raise TypeError(f"{name} must be a bool array (True = hidden), got dtype {array.dtype}")
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {symbolic} = {shape}, got {array.shape}")
    return array


def _check_joints(joints: int, skeleton: SkeletonLayout, name: str, shape: tuple[int, ...]) -> None:
    if joints != skeleton.num_joints:
        raise ValueError(
            f"{name} has V = {joints} joints (shape {shape}) but layout {skeleton.name!r} has "
            f"{skeleton.num_joints}"
        )


def _check_finite(values: npt.NDArray[np.float64], name: str) -> None:
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise ValueError(f"{name} contains {bad} NaN or infinite values; expected finite numbers")


def _mask_grid(
    values: ArrayLike | MaskResult, sample: int, field: MaskField
) -> npt.NDArray[np.bool_] | npt.NDArray[np.float64]:
    """The ``(Tp, Vp)`` grid ``plot_mask`` draws: bool for masks, float64 otherwise."""
    if isinstance(values, MaskResult):
        if field not in _FIELDS:
            raise ValueError(f"field must be one of {list(_FIELDS)}, got {field!r}")
        batch = values.mask.shape[0]
        index = as_integer(sample)
        if index is None:
            raise TypeError(f"sample must be an integer, got {sample!r}")
        sample = index
        if not -batch <= sample < batch:
            raise ValueError(f"sample must index one of the {batch} samples, got {sample}")
        selected = values.mask if field == "mask" else getattr(values, field)
        if selected is None:
            raise ValueError(
                f"this MaskResult has no {field} (its masker draws without scores); "
                "use field='mask'"
            )
        values = selected[sample].reshape(values.grid_size)
    array = _to_numpy(values)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"values must be a non-empty (Tp, Vp) grid, got shape {array.shape}")
    if array.dtype == np.bool_:
        return array
    grid = _as_float_array(array, "values")
    _check_finite(grid, "values")
    return grid


def _frame_mask(
    mask: ArrayLike | None, frames: int, joints: int, t_patch: int, v_patch: int
) -> npt.NDArray[np.bool_]:
    """A ``(T, V)`` bool mask from a frame mask or a ``(T // t_patch, V // v_patch)`` token mask."""
    check_positive_int(t_patch, "t_patch")
    check_positive_int(v_patch, "v_patch")
    if mask is None:
        return np.zeros((frames, joints), dtype=np.bool_)
    if frames % t_patch or joints % v_patch:
        raise ValueError(
            f"t_patch={t_patch} and v_patch={v_patch} must divide the sequence's T={frames} and "
            f"V={joints}"
        )
    grid_size = (frames // t_patch, joints // v_patch)
    tokens = _bool_array(mask, grid_size, "mask", "(T // t_patch, V // v_patch)")
    expanded = expand_mask(torch.from_numpy(tokens).reshape(1, -1), grid_size, t_patch, v_patch)
    return expanded[0].numpy()


def _colormap(cmap: str | Colormap | None, *, default: tuple[str, str] | None) -> Colormap:
    """``cmap`` as a colour map; None gives a two-colour map of ``default`` or viridis."""
    from matplotlib import colormaps  # noqa: PLC0415
    from matplotlib.colors import ListedColormap  # noqa: PLC0415

    if cmap is None:
        return ListedColormap(list(default)) if default is not None else colormaps["viridis"]
    return colormaps[cmap] if isinstance(cmap, str) else cmap
