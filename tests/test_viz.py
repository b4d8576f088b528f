from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp

pytest.importorskip("matplotlib")

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image

from skelmask.layouts import get_layout
from skelmask.tokens import mask_result_from_bool
from skelmask.viz import animate_sequence, figure_to_array, plot_mask, plot_skeleton

LAYOUT = get_layout("msr-action3d")
V = LAYOUT.num_joints
HIDDEN_RGB = np.array([0xD6, 0x27, 0x28])  # the hollow crosses of hidden joints
MASK_VISIBLE_RGB = np.array([0xDE, 0xEB, 0xF7])
MASK_HIDDEN_RGB = np.array([0x08, 0x30, 0x6B])


def _skeleton(seed: int = 0, channels: int = 3) -> torch.Tensor:
    """A random but spread-out frame ``(V, C)``."""
    return torch.randn(V, channels, generator=torch.Generator().manual_seed(seed))


def _count_near(pixels: np.ndarray, rgb: np.ndarray, tolerance: int = 30) -> int:
    distance = np.abs(pixels[..., :3].astype(np.int64) - rgb).max(axis=-1)
    return int((distance <= tolerance).sum())


def _cell_rgb(fig: Figure, ax: Axes, pixels: np.ndarray, t: int, v: int) -> np.ndarray:
    """Colour of the heat-map cell (time t, joint v): data point (t, v), y axis pointing down."""
    x, y = ax.transData.transform((t, v))
    return pixels[round(pixels.shape[0] - y), round(x), :3].astype(np.int64)


def _gif_frames(path: Path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        frames = []
        for index in range(gif.n_frames):
            gif.seek(index)
            frames.append(np.asarray(gif.convert("RGB")))
        return frames


# ---------------------------------------------------------------- import behaviour


def test_importing_the_module_does_not_import_matplotlib() -> None:
    code = "import sys, skelmask.viz; print('matplotlib' in sys.modules, 'PIL' in sys.modules)"
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "False False"


def test_missing_matplotlib_raises_an_import_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"needs matplotlib: pip install 'skelmask\[viz\]'"):
        plot_skeleton(_skeleton(), LAYOUT)
    with pytest.raises(ImportError, match=r"skelmask\[viz\]"):
        plot_mask(torch.zeros(4, V, dtype=torch.bool))
    with pytest.raises(ImportError, match=r"skelmask\[viz\]"):
        animate_sequence(torch.randn(2, V, 3), LAYOUT, tmp_path / "a.gif")


# ---------------------------------------------------------------- plot_skeleton


def test_skeleton_image_has_the_requested_size_and_is_not_blank() -> None:
    pixels = figure_to_array(plot_skeleton(_skeleton(), LAYOUT, figsize=(3, 2), dpi=50))
    assert pixels.shape == (100, 150, 4)
    assert pixels.dtype == np.uint8
    # Bones and joints are drawn on a white background.
    assert (pixels[..., :3] < 200).any(axis=-1).sum() > 100


def test_hidden_joints_are_drawn_as_red_crosses_and_change_the_picture() -> None:
    coords = _skeleton()
    hidden = torch.zeros(V, dtype=torch.bool)
    hidden[[0, 5, 11]] = True
    plain = figure_to_array(plot_skeleton(coords, LAYOUT, dpi=50))
    none_hidden = figure_to_array(
        plot_skeleton(coords, LAYOUT, hidden=torch.zeros(V, dtype=torch.bool), dpi=50)
    )
    marked = figure_to_array(plot_skeleton(coords, LAYOUT, hidden=hidden, dpi=50))
    np.testing.assert_array_equal(plain, none_hidden)
    assert (plain != marked).any(axis=-1).sum() > 50
    assert _count_near(plain, HIDDEN_RGB) == 0
    assert _count_near(marked, HIDDEN_RGB) > 20
    more = hidden.clone()
    more[[1, 2, 3, 4]] = True
    assert _count_near(
        figure_to_array(plot_skeleton(coords, LAYOUT, hidden=more, dpi=50)), HIDDEN_RGB
    ) > _count_near(marked, HIDDEN_RGB)


def test_tensor_and_array_inputs_give_the_same_picture() -> None:
    coords = _skeleton()
    hidden = np.arange(V) % 3 == 0
    from_tensor = plot_skeleton(coords, LAYOUT, hidden=torch.from_numpy(hidden), dpi=40)
    from_array = plot_skeleton(coords.numpy(), "msr-action3d", hidden=hidden, dpi=40)
    np.testing.assert_array_equal(figure_to_array(from_tensor), figure_to_array(from_array))


def test_bfloat16_tensors_draw_like_their_float32_values() -> None:
    # Regression: numpy has no bfloat16, so autocast outputs used to fail in Tensor.numpy().
    values = torch.tensor([[0.125, 0.5, 0.875], [0.25, 0.75, 1.0]])
    from_bf16 = plot_mask(values.bfloat16(), dpi=40)
    from_fp32 = plot_mask(values, dpi=40)
    np.testing.assert_array_equal(figure_to_array(from_bf16), figure_to_array(from_fp32))
    coords = _skeleton().bfloat16()
    np.testing.assert_array_equal(
        figure_to_array(plot_skeleton(coords, LAYOUT, dpi=40)),
        figure_to_array(plot_skeleton(coords.float(), LAYOUT, dpi=40)),
    )


@pytest.mark.parametrize(
    ("view", "columns"), [("front", [0, 1]), ("side", [2, 1]), ("top", [0, 2])]
)
def test_views_project_the_documented_axes(view: str, columns: list[int]) -> None:
    coords = _skeleton().numpy()
    hidden = np.arange(V) < 4
    fig = plot_skeleton(coords, LAYOUT, hidden=hidden, view=view)  # type: ignore[arg-type]
    bones, shown, masked = fig.axes[0].collections
    np.testing.assert_allclose(shown.get_offsets(), coords[~hidden][:, columns])
    np.testing.assert_allclose(masked.get_offsets(), coords[hidden][:, columns])
    segments = np.stack(bones.get_segments())  # type: ignore[attr-defined]
    np.testing.assert_allclose(segments, coords[np.array(LAYOUT.edges)][..., columns])


def test_2d_coordinates_are_drawn_as_given() -> None:
    coords = _skeleton(channels=2).numpy()
    fig = plot_skeleton(coords, LAYOUT)
    _, shown, masked = fig.axes[0].collections
    np.testing.assert_allclose(shown.get_offsets(), coords)
    assert len(masked.get_offsets()) == 0


def test_skeleton_drawn_into_given_axes_returns_their_figure() -> None:
    fig = Figure(figsize=(4, 2), dpi=30)
    left, right = fig.subplots(1, 2)
    assert plot_skeleton(_skeleton(), LAYOUT, ax=right, title="right") is fig
    assert right.get_title() == "right"
    assert len(right.collections) == 3  # bones, visible joints, hidden joints
    assert not left.collections
    sub = Figure().subfigures(1, 2)[1]
    assert plot_skeleton(_skeleton(), LAYOUT, ax=sub.add_subplot()) is sub.figure


@pytest.mark.parametrize(
    ("coords", "kwargs", "error", "match"),
    [
        (torch.randn(19, 3), {}, ValueError, r"V = 19 joints .* 'msr-action3d' has 20"),
        (torch.randn(V, 4), {}, ValueError, r"\(V, 2\) or \(V, 3\), got \(20, 4\)"),
        (torch.randn(2, V, 3), {}, ValueError, r"\(V, 2\) or \(V, 3\)"),
        (torch.full((V, 3), float("nan")), {}, ValueError, "60 NaN or infinite"),
        (torch.randn(V, 3), {"view": "back"}, ValueError, r"view must be one of .*'back'"),
        (torch.randn(V, 2), {"view": "side"}, ValueError, "only the 'front' view"),
        (torch.randn(V, 3), {"hidden": torch.zeros(V)}, TypeError, "hidden must be a bool"),
        (
            torch.randn(V, 3),
            {"hidden": torch.zeros(V - 1, dtype=torch.bool)},
            ValueError,
            r"hidden must have shape \(V,\) = \(20,\), got \(19,\)",
        ),
        (torch.randn(V, 3), {"dpi": 0}, ValueError, "dpi must be a finite number > 0"),
        (torch.randn(V, 3), {"figsize": (0, 3)}, ValueError, "figsize must be"),
    ],
)
def test_plot_skeleton_rejects_bad_arguments(
    coords: torch.Tensor, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        plot_skeleton(coords, LAYOUT, **kwargs)  # type: ignore[arg-type]


def test_unknown_layout_name_raises() -> None:
    with pytest.raises(KeyError):
        plot_skeleton(_skeleton(), "no-such-layout")


# ---------------------------------------------------------------- plot_mask


def test_mask_image_has_the_requested_size() -> None:
    fig = plot_mask(torch.zeros(4, V, dtype=torch.bool), figsize=(5, 3), dpi=40)
    assert figure_to_array(fig).shape == (120, 200, 4)


@settings(max_examples=5, deadline=None)
@given(hnp.arrays(np.bool_, (4, 5)))
def test_mask_cells_take_the_hidden_or_visible_colour(mask: np.ndarray) -> None:
    fig = plot_mask(mask, figsize=(4, 3), dpi=40)
    ax = fig.axes[0]
    pixels = figure_to_array(fig)
    for t in range(4):
        for v in range(5):
            expected = MASK_HIDDEN_RGB if mask[t, v] else MASK_VISIBLE_RGB
            assert np.abs(_cell_rgb(fig, ax, pixels, t, v) - expected).max() <= 2, (t, v)


def test_float_values_map_equal_values_to_equal_colours() -> None:
    values = torch.tensor([[0.1, 0.1, 0.9], [0.5, 0.9, 0.1]])
    fig = plot_mask(values, dpi=40)
    ax = fig.axes[0]
    pixels = figure_to_array(fig)
    colour = {(t, v): tuple(_cell_rgb(fig, ax, pixels, t, v)) for t in range(2) for v in range(3)}
    assert colour[0, 0] == colour[0, 1] == colour[1, 2]
    assert colour[0, 2] == colour[1, 1]
    assert len({colour[0, 0], colour[1, 0], colour[0, 2]}) == 3
    assert len(fig.axes) == 2  # the heat-map and its colour bar


def test_mask_result_draws_the_chosen_sample_and_field() -> None:
    mask = torch.zeros(2, 12, dtype=torch.bool)
    mask[0, [0, 1, 2]] = True
    mask[1, [5, 7, 11]] = True
    probs = torch.rand(2, 12, generator=torch.Generator().manual_seed(0))
    result = mask_result_from_bool(mask, 9, (3, 4), probs=probs)
    direct = figure_to_array(plot_mask(mask[1].reshape(3, 4), dpi=30))
    np.testing.assert_array_equal(figure_to_array(plot_mask(result, sample=1, dpi=30)), direct)
    np.testing.assert_array_equal(figure_to_array(plot_mask(result, sample=-1, dpi=30)), direct)
    np.testing.assert_array_equal(
        figure_to_array(plot_mask(result, sample=1, field="probs", dpi=30)),
        figure_to_array(plot_mask(probs[1].reshape(3, 4), dpi=30)),
    )


def test_layout_names_label_the_joint_axis() -> None:
    fig = plot_mask(torch.zeros(3, V, dtype=torch.bool), layout=LAYOUT, title="mask")
    ax = fig.axes[0]
    assert [label.get_text() for label in ax.get_yticklabels()] == list(LAYOUT.joint_names)
    assert ax.get_title() == "mask"


def test_labels_and_cmap_are_used() -> None:
    fig = plot_mask(torch.eye(3, dtype=torch.bool), labels=("own", "donor"), cmap="gray")
    bar = fig.axes[1]
    assert [label.get_text() for label in bar.get_yticklabels()] == ["own", "donor"]
    pixels = figure_to_array(fig)
    assert _count_near(pixels, MASK_HIDDEN_RGB, tolerance=2) == 0


@pytest.mark.parametrize(
    ("values", "kwargs", "match"),
    [
        (torch.zeros(3, 4, 5, dtype=torch.bool), {}, r"non-empty \(Tp, Vp\) grid, got shape"),
        (torch.zeros(0, 5, dtype=torch.bool), {}, r"non-empty \(Tp, Vp\) grid"),
        (torch.tensor([[0.1, float("nan")]]), {}, "1 NaN or infinite"),
        (torch.zeros(3, 7, dtype=torch.bool), {"layout": LAYOUT}, r"V = 7 joints .* has 20"),
        (np.array([["a", "b"]]), {}, "values must be numeric"),
    ],
)
def test_plot_mask_rejects_bad_grids(values: object, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        plot_mask(values, **kwargs)  # type: ignore[arg-type]


def test_plot_mask_rejects_bad_mask_result_arguments() -> None:
    result = mask_result_from_bool(torch.tensor([[True, False, False, True]]), 2, (2, 2))
    with pytest.raises(ValueError, match="sample must index one of the 1 samples, got 1"):
        plot_mask(result, sample=1)
    with pytest.raises(ValueError, match="has no probs"):
        plot_mask(result, field="probs")
    with pytest.raises(ValueError, match=r"field must be one of \['mask', 'probs', 'scores'\]"):
        plot_mask(result, field="weights")  # type: ignore[arg-type]


# ---------------------------------------------------------------- animate_sequence


def test_gif_has_one_frame_per_skeleton_frame_and_the_requested_size(tmp_path: Path) -> None:
    sequence = torch.randn(5, V, 3, generator=torch.Generator().manual_seed(1))
    path = animate_sequence(sequence, LAYOUT, tmp_path / "clip.gif", fps=5, figsize=(3, 2), dpi=40)
    assert path == tmp_path / "clip.gif"
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 5
        assert gif.size == (120, 80)
        assert gif.info["duration"] == 200


def test_gif_marks_hidden_joints_per_frame(tmp_path: Path) -> None:
    sequence = torch.randn(4, V, 3, generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(4, V, dtype=torch.bool)
    mask[2, :6] = True
    plain = _gif_frames(animate_sequence(sequence, LAYOUT, tmp_path / "plain.gif", dpi=30))
    marked = _gif_frames(
        animate_sequence(sequence, LAYOUT, tmp_path / "marked.gif", mask=mask, dpi=30)
    )
    assert len(plain) == len(marked) == 4
    for frame in (0, 1, 3):
        np.testing.assert_array_equal(plain[frame], marked[frame])
    assert (plain[2] != marked[2]).any()


def test_token_mask_is_expanded_to_frames_and_joints(tmp_path: Path) -> None:
    sequence = torch.randn(4, V, 3, generator=torch.Generator().manual_seed(3))
    tokens = torch.zeros(2, V // 2, dtype=torch.bool)
    tokens[1, 3] = True  # frames 2-3, joints 6-7
    frames = torch.zeros(4, V, dtype=torch.bool)
    frames[2:, 6:8] = True
    expanded = animate_sequence(
        sequence, LAYOUT, tmp_path / "t.gif", mask=tokens, t_patch=2, v_patch=2, dpi=30
    )
    direct = animate_sequence(sequence, LAYOUT, tmp_path / "f.gif", mask=frames.numpy(), dpi=30)
    for left, right in zip(_gif_frames(expanded), _gif_frames(direct), strict=True):
        np.testing.assert_array_equal(left, right)


@pytest.mark.parametrize(
    ("coords", "kwargs", "error", "match"),
    [
        (torch.zeros(0, V, 3), {}, ValueError, "at least one frame"),
        (torch.randn(3, V), {}, ValueError, r"\(T, V, 2\) or \(T, V, 3\), got \(3, 20\)"),
        (torch.randn(3, 25, 3), {}, ValueError, r"V = 25 joints .* has 20"),
        (torch.tensor(float("inf")).expand(3, V, 3), {}, ValueError, "180 NaN or infinite"),
        (torch.randn(3, V, 3), {"fps": 0}, ValueError, "fps must be a positive integer, got 0"),
        (torch.randn(3, V, 3), {"fps": -5}, ValueError, "fps must be a positive integer"),
        (torch.randn(3, V, 3), {"fps": 2.5}, ValueError, "fps must be a positive integer"),
        (torch.randn(3, V, 3), {"view": "under"}, ValueError, "view must be one of"),
        (
            torch.randn(3, V, 3),
            {"mask": torch.zeros(3, V - 1, dtype=torch.bool)},
            ValueError,
            r"mask must have shape .* = \(3, 20\), got \(3, 19\)",
        ),
        (torch.randn(3, V, 3), {"mask": torch.zeros(3, V)}, TypeError, "mask must be a bool"),
        (
            torch.randn(3, V, 3),
            {"mask": torch.zeros(1, V, dtype=torch.bool), "t_patch": 2},
            ValueError,
            r"t_patch=2 and v_patch=1 must divide the sequence's T=3 and V=20",
        ),
        (torch.randn(4, V, 3), {"t_patch": 0}, ValueError, "t_patch must be a positive integer"),
    ],
)
def test_animate_sequence_rejects_bad_arguments(
    tmp_path: Path,
    coords: torch.Tensor,
    kwargs: dict[str, object],
    error: type[Exception],
    match: str,
) -> None:
    path = tmp_path / "bad.gif"
    with pytest.raises(error, match=match):
        animate_sequence(coords, LAYOUT, path, **kwargs)  # type: ignore[arg-type]
    assert not path.exists()


def test_animate_sequence_checks_its_path_before_drawing(tmp_path: Path) -> None:
    # PillowWriter failed on a .txt path only after drawing every frame.
    coords = torch.randn(3, V, 3)
    with pytest.raises(ValueError, match=r"path must end in \.gif .* got '.*clip\.txt'"):
        animate_sequence(coords, LAYOUT, tmp_path / "clip.txt")
    with pytest.raises(FileNotFoundError, match=r"the folder of path does not exist: '.*missing'"):
        animate_sequence(coords, LAYOUT, tmp_path / "missing" / "clip.gif")
    assert list(tmp_path.iterdir()) == []
    assert animate_sequence(coords, LAYOUT, tmp_path / "clip.GIF").exists()


def test_plot_mask_sample_must_be_an_integer() -> None:
    result = mask_result_from_bool(torch.tensor([[True, False], [False, True]]), 1, (1, 2))
    with pytest.raises(TypeError, match=r"sample must be an integer, got 1\.0"):
        plot_mask(result, sample=1.0)  # type: ignore[arg-type]
    assert isinstance(plot_mask(result, sample=np.int64(1), dpi=20), Figure)  # type: ignore[arg-type]


# ---------------------------------------------------------------- figure_to_array


def test_figure_to_array_renders_figures_without_an_agg_canvas() -> None:
    fig = Figure(figsize=(2, 1), dpi=30)
    fig.add_subplot().plot([0, 1], [0, 1])
    canvas = fig.canvas
    pixels = figure_to_array(fig)
    assert pixels.shape == (30, 60, 4)
    assert (pixels[..., :3] < 200).any()
    assert fig.canvas is canvas


# ---------------------------------------------------------------- real data


def test_real_msr_action3d_frame_and_clip(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "msr-action3d" / "MSRAction3DSkeletonReal3D"
    rows = np.loadtxt(folder / "a01_s01_e01_skeleton3D.txt")  # x y z confidence, V rows a frame
    frames = rows.reshape(-1, V, 4)[..., :3]
    hidden = np.zeros(V, dtype=np.bool_)
    hidden[list(LAYOUT.body_parts["right_arm"])] = True
    plain = figure_to_array(plot_skeleton(frames[10], LAYOUT, dpi=60))
    marked = figure_to_array(plot_skeleton(frames[10], LAYOUT, hidden=hidden, dpi=60))
    assert _count_near(plain, HIDDEN_RGB) == 0
    assert _count_near(marked, HIDDEN_RGB) > 10
    gif = animate_sequence(frames[:6], LAYOUT, tmp_path / "wave.gif", dpi=25)
    with Image.open(gif) as image:
        assert image.n_frames == 6
