from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skelmask.data.dataset import SkeletonDataset
from skelmask.data.errors import SkeletonFileError
from skelmask.data.nw_ucla import load_nw_ucla


def write_sequence(
    folder: Path, name: str, frames: np.ndarray | list[object], label: object
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    skeletons = frames.tolist() if isinstance(frames, np.ndarray) else frames
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"file_name": name, "skeletons": skeletons, "label": label}))
    return path


def random_frames(frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, size=(frames, 20, 3))


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sequences=st.lists(
        st.tuples(st.integers(1, 10), st.integers(1, 3), st.integers(1, 12)),
        min_size=1,
        max_size=6,
    ),
    seed=st.integers(0, 2**16),
)
def test_round_trip_and_cross_view_split(
    tmp_path: Path, sequences: list[tuple[int, int, int]], seed: int
) -> None:
    # A fresh folder per example: tmp_path is shared by all of hypothesis's examples.
    folder = Path(tempfile.mkdtemp(dir=tmp_path)) / "all_sqe"
    expected: dict[str, dict[str, tuple[int, np.ndarray]]] = {"train": {}, "test": {}}
    for index, (action, view, frames) in enumerate(sequences):
        name = f"a{action:02d}_s{index:02d}_e00_v{view:02d}"
        values = random_frames(frames, seed + index)
        write_sequence(folder, name, values, action)
        split = "train" if view in (1, 2) else "test"
        expected[split][name] = (action - 1, values - values[0, 0])
    splits, report = load_nw_ucla(folder.parent)
    longest = max(frames for _, _, frames in sequences)
    for split, samples in expected.items():
        arrays = splits[split]
        assert arrays.names == sorted(samples)
        assert arrays.data.shape == (len(samples), 3, longest, 20, 1)
        assert (arrays.layout, arrays.num_classes) == ("nw-ucla", 10)
        for n, name in enumerate(arrays.names):
            label, values = samples[name]
            assert arrays.labels[n] == label
            assert arrays.lengths[n] == len(values)
            np.testing.assert_allclose(
                arrays.data[n, :, : len(values), :, 0].transpose(1, 2, 0), values, atol=1e-6
            )
            assert not arrays.data[n, :, len(values) :].any()
    assert (report.read, report.kept, report.rejected) == (len(sequences), len(sequences), [])


def test_centred_on_hip_centre_of_first_frame(tmp_path: Path) -> None:
    values = random_frames(5)
    write_sequence(tmp_path, "a03_s01_e02_v02", values, 3)
    arrays = load_nw_ucla(tmp_path)[0]["train"]
    np.testing.assert_allclose(arrays.data[0, :, 0, 0, 0], 0.0, atol=1e-7)
    np.testing.assert_allclose(
        arrays.data[0, :, 4, 7, 0], values[4, 7] - values[0, 0], rtol=1e-5, atol=1e-6
    )


def test_max_frames_resamples_and_pads(tmp_path: Path) -> None:
    long, short = random_frames(30), random_frames(4, seed=1)
    write_sequence(tmp_path, "a01_s01_e00_v01", long, 1)
    write_sequence(tmp_path, "a02_s01_e00_v03", short, 2)
    splits, report = load_nw_ucla(tmp_path, max_frames=10)
    train, test = splits["train"], splits["test"]
    assert train.data.shape == test.data.shape == (1, 3, 10, 20, 1)
    assert (train.lengths.tolist(), test.lengths.tolist()) == ([10], [4])
    index = np.linspace(0, 29, 10).round().astype(int)
    np.testing.assert_allclose(
        train.data[0, :, :, :, 0].transpose(1, 2, 0), (long - long[0, 0])[index], atol=1e-6
    )
    assert report.cleaned == ["a01_s01_e00_v01: resampled 30 frames to 10"]


@pytest.mark.parametrize(
    ("name", "skeletons", "label", "match"),
    [
        ("a01_s01_e00_v01", [[[0.0, 0.0, 0.0]] * 19] * 3, 1, r"has shape \(3, 19, 3\)"),
        ("a01_s01_e00_v01", [], 1, r"has shape \(0,\)"),
        ("a01_s01_e00_v01", [[[0.0, 0.0]] * 20, [[0.0]] * 20], 1, "is not a T × 20 × 3 array"),
        ("a01_s01_e00_v01", [[["x", 0.0, 0.0]] * 20], 1, "is not a T × 20 × 3 array"),
        ("a01_s01_e00_v01", [[[float("nan"), 0.0, 0.0]] * 20], 1, "non-finite value"),
        ("a01_s01_e00_v01", [[[1e39, 0.0, 0.0]] * 20], 1, "holds a value beyond the float32"),
        (
            "a01_s01_e00_v01",
            [[[-3e38, 0.0, 0.0]] + [[3e38, 0.0, 0.0]] * 19],
            1,
            r"centred coordinates are beyond the float32 range \(\|value\| > 3\.4e38\)",
        ),
        ("a01_s01_e00_v01", [[[10**400, 0.0, 0.0]] * 20], 1, "beyond the float64 range"),
        ("a01_s01_e00_v01", [[[0.0, 0.0, 0.0]] * 20], 0, r"label 0 is outside 1\.\.10"),
        ("a01_s01_e00_v01", [[[0.0, 0.0, 0.0]] * 20], 11, r"label 11 is outside 1\.\.10"),
        ("a01_s01_e00_v01", [[[0.0, 0.0, 0.0]] * 20], "1", r"label '1' is outside"),
        ("a01_s01_e00", [[[0.0, 0.0, 0.0]] * 20], 1, r"has no view \(_vVV\)"),
        ("a01_s01_e00_v04", [[[0.0, 0.0, 0.0]] * 20], 1, "view 4 is not one of 1, 2, 3"),
    ],
)
def test_bad_files_skip_and_raise(
    tmp_path: Path, name: str, skeletons: list[object], label: object, match: str
) -> None:
    write_sequence(tmp_path, "a02_s01_e00_v03", random_frames(3), 2)
    bad = write_sequence(tmp_path, name, skeletons, label)
    with pytest.raises(SkeletonFileError, match=match) as info:
        load_nw_ucla(tmp_path, on_error="raise")
    assert info.value.path == str(bad)
    splits, report = load_nw_ucla(tmp_path)
    assert splits["test"].names == ["a02_s01_e00_v03"]
    assert len(splits["train"]) == 0
    assert (report.read, report.kept, len(report.rejected)) == (2, 1, 1)
    assert report.rejected[0].startswith(f"{bad}: ")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"file_name": "a01_s01_e00_v01", "label": 1}', r"missing key\(s\) skeletons"),
        ('{"file_name": 7, "skeletons": [], "label": 1}', "file_name must be a string"),
        # An integer literal of more than 4300 digits (Python refuses to parse it).
        ('{"file_name": "a01_s01_e00_v01", "skeletons": ' + "9" * 5000 + "}", "invalid JSON"),
        ("[" * 100_000 + "]" * 100_000, "invalid JSON: nested too deeply"),
        (
            '{"file_name": "a01_s01_e00_v01", "label": 1, "skeletons": '
            + "[" * 100_000
            + "]" * 100_000
            + "}",
            "invalid JSON: nested too deeply",
        ),
    ],
)
def test_bad_json(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "a01_s01_e00_v01.json"
    path.write_text(text)
    with pytest.raises(SkeletonFileError, match=match) as info:
        load_nw_ucla(tmp_path, on_error="raise")
    assert str(info.value).startswith(f"{path}: ")
    splits, report = load_nw_ucla(tmp_path)
    assert len(splits["train"]) == len(splits["test"]) == 0
    assert splits["train"].data.shape == (0, 3, 1, 20, 1)
    assert len(report.rejected) == 1


def test_workers_give_the_same_result(tmp_path: Path) -> None:
    for index in range(4):
        write_sequence(tmp_path, f"a0{index + 1}_s01_e00_v0{index % 3 + 1}", random_frames(6), 1)
    (tmp_path / "a09_s09_e09.json").write_text("{}")
    serial, serial_report = load_nw_ucla(tmp_path)
    parallel, parallel_report = load_nw_ucla(tmp_path, workers=2)
    for split in ("train", "test"):
        np.testing.assert_array_equal(serial[split].data, parallel[split].data)
    assert serial_report == parallel_report
    assert len(serial_report.rejected) == 1


def test_arguments_and_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="NW-UCLA folder not found"):
        load_nw_ucla(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=r"no \*\.json files"):
        load_nw_ucla(tmp_path)
    write_sequence(tmp_path, "a01_s01_e00_v01", random_frames(3), 1)
    with pytest.raises(ValueError, match="max_frames must be None or an int >= 1"):
        load_nw_ucla(tmp_path, max_frames=0)
    with pytest.raises(ValueError, match="on_error must be"):
        load_nw_ucla(tmp_path, on_error="warn")  # type: ignore[arg-type]


def test_into_skeleton_dataset(tmp_path: Path) -> None:
    write_sequence(tmp_path, "a05_s01_e00_v01", random_frames(40), 5)
    arrays = load_nw_ucla(tmp_path)[0]["train"]
    clip, label = SkeletonDataset(arrays, window=16, seed=0)[0]
    assert clip.shape == (3, 16, 20, 1)
    assert int(label) == 4


def test_a_folder_named_like_a_data_file_is_reported(tmp_path: Path) -> None:
    write_sequence(tmp_path, "a02_s01_e00_v03", random_frames(3), 2)
    folder = tmp_path / "a01_s01_e00_v01.json"
    folder.mkdir()
    splits, report = load_nw_ucla(tmp_path)
    assert splits["test"].names == ["a02_s01_e00_v03"]
    assert len(report.rejected) == 1
    assert report.rejected[0].startswith(f"{folder}: cannot read the file (")
