from __future__ import annotations

import csv
import functools
import re
from pathlib import Path

import numpy as np
import pytest

from skelmask.data import SkeletonArrays, load_msr_action3d
from skelmask.layouts import get_layout

FOLDER = "MSRAction3DSkeletonReal3D"
ALL_ZERO_FILE = "a13_s09_e02_skeleton3D.txt"


@functools.cache
def load_real(root: Path) -> tuple[SkeletonArrays, SkeletonArrays, list[str]]:
    return load_msr_action3d(root)


def read_index(root: Path) -> list[dict[str, str]]:
    with (root / "index.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_real_data_split_sizes_and_labels(shared_data: Path) -> None:
    root = shared_data / "msr-action3d"
    index = read_index(root)
    assert len(index) == 567
    assert len(list((root / FOLDER).glob("*_skeleton3D.txt"))) == 567
    train, test, problems = load_real(root)

    skipped = [line for line in problems if line.endswith("file skipped")]
    assert len(skipped) == 1
    assert skipped[0].startswith(f"{ALL_ZERO_FILE}: all 38 frames are all zeros")
    skipped_names = {ALL_ZERO_FILE.removesuffix("_skeleton3D.txt")}

    for split, arrays in (("train", train), ("test", test)):
        rows = [row for row in index if row["split_xsub_odd_train"] == split]
        expected = sorted(
            row["file"].removesuffix("_skeleton3D.txt")
            for row in rows
            if row["file"].removesuffix("_skeleton3D.txt") not in skipped_names
        )
        assert arrays.names == expected
        assert len(arrays) == len(rows) - sum(row["file"] == ALL_ZERO_FILE for row in rows)
        assert arrays.layout == "msr-action3d"
        assert arrays.num_classes == 20
        assert arrays.data.shape[1:] == (3, train.data.shape[2], 20, 1)
        assert sorted(set(arrays.labels.tolist())) == list(range(20))
        by_name = {row["file"].removesuffix("_skeleton3D.txt"): row for row in rows}
        for name, label, length in zip(arrays.names, arrays.labels, arrays.lengths, strict=True):
            row = by_name[name]
            assert label == int(row["action_id"]) - 1
            assert length == int(row["n_frames"]) - int(row["n_allzero_frames"])
    assert (len(train), len(test)) == (291, 275)
    assert test.data.shape[2] == train.data.shape[2] == 196  # a13_s09_e03: 936 - 740 frames


def test_real_data_reports_every_dropped_frame(shared_data: Path) -> None:
    root = shared_data / "msr-action3d"
    _, _, problems = load_real(root)
    flagged = {
        row["file"]: (int(row["n_allzero_frames"]), int(row["n_frames"]))
        for row in read_index(root)
        if int(row["n_allzero_frames"]) > 0 and row["file"] != ALL_ZERO_FILE
    }
    dropped = [line for line in problems if "dropped" in line]
    assert len(dropped) == len(flagged) == 19
    for line in dropped:
        name = line.split(":", 1)[0]
        zeros, frames = flagged[name]
        assert f"dropped {zeros} of {frames} frames that were all zeros" in line


def test_real_data_is_centred_and_padded(shared_data: Path) -> None:
    train, test, _ = load_real(shared_data / "msr-action3d")
    hip_center = get_layout("msr-action3d").joint_index("hip_center")
    for arrays in (train, test):
        assert np.isfinite(arrays.data).all()
        np.testing.assert_array_equal(arrays.data[:, :, 0, hip_center], 0.0)
        for sample, length in zip(arrays.data, arrays.lengths, strict=True):
            assert not sample[:, length:].any()
            # Kept frames are never all zero (all-zero frames were dropped).
            assert (np.abs(sample[:, :length]).sum(axis=(0, 2, 3)) > 0).all()
        # Centred: coordinates are metres around the hip, not 2–3 m camera depths.
        assert np.abs(arrays.data).max() < 2.0


def test_real_data_raises_on_the_all_zero_file(shared_data: Path) -> None:
    with pytest.raises(ValueError, match=rf"{ALL_ZERO_FILE}: all 38 frames are all zeros"):
        load_msr_action3d(shared_data / "msr-action3d", on_error="raise")


def write_sequence(folder: Path, name: str, frames: int = 3, seed: int = 0) -> np.ndarray:
    """Writes a valid MSR-format file and returns its (frames, 20, 4) values."""
    values = np.random.default_rng(seed).uniform(0.1, 3.0, size=(frames, 20, 4))
    np.savetxt(folder / name, values.reshape(-1, 4), fmt="%.6f")
    return values


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / FOLDER
    folder.mkdir()
    write_sequence(folder, "a01_s01_e01_skeleton3D.txt", frames=3, seed=1)
    write_sequence(folder, "a02_s02_e01_skeleton3D.txt", frames=5, seed=2)
    return tmp_path


def test_small_folder_splits_labels_and_centres(root: Path) -> None:
    values = write_sequence(root / FOLDER, "a20_s03_e02_skeleton3D.txt", frames=4, seed=3)
    values[1] = 0.0  # an untracked frame in the middle
    np.savetxt(root / FOLDER / "a20_s03_e02_skeleton3D.txt", values.reshape(-1, 4), fmt="%.6f")
    train, test, problems = load_msr_action3d(root)
    assert train.names == ["a01_s01_e01", "a20_s03_e02"]
    assert test.names == ["a02_s02_e01"]
    assert train.labels.tolist() == [0, 19]
    assert test.labels.tolist() == [1]
    assert train.lengths.tolist() == [3, 3]
    assert train.data.shape == (2, 3, 5, 20, 1)
    assert test.data.shape == (1, 3, 5, 20, 1)
    assert problems == ["a20_s03_e02_skeleton3D.txt: dropped 1 of 4 frames that were all zeros"]
    kept = values[[0, 2, 3], :, :3]
    expected = (kept - kept[0, 6]).transpose(2, 0, 1)
    np.testing.assert_allclose(train.data[1, :, :3, :, 0], expected, atol=1e-5)


CORRUPT = {
    "wrong value count": (
        "0.1 0.2 0.3 1\n" * 5 + "0.1 0.2 0.3\n" + "0.1 0.2 0.3 1\n" * 14,
        r"line 6 has 3 values; expected 4 \(x y z c\)",
    ),
    "non-numeric": (
        "0.1 0.2 0.3 1\n" * 7 + "0.1 abc 0.3 1\n" + "0.1 0.2 0.3 1\n" * 12,
        "line 8: non-numeric value 'abc'",
    ),
    "non-finite": (
        "0.1 0.2 0.3 1\n" * 2 + "0.1 nan 0.3 1\n" + "0.1 0.2 0.3 1\n" * 17,
        "line 3: non-finite value 'nan'",
    ),
    "beyond float32": (
        "0.1 0.2 0.3 1\n" * 4 + "0.1 1e39 0.3 1\n" + "0.1 0.2 0.3 1\n" * 15,
        re.escape("line 5: value '1e39' is beyond the float32 range (|value| > 3.4e38)"),
    ),
    # Every value fits float32, but centring on the hip centre (joint 6) subtracts -3e38.
    "overflow when centred": (
        "3e38 0.2 0.3 1\n" * 6 + "-3e38 0.2 0.3 1\n" + "0.1 0.2 0.3 1\n" * 13,
        re.escape("centred coordinates are beyond the float32 range"),
    ),
    "partial frame": ("0.1 0.2 0.3 1\n" * 30, "30 rows is not a multiple of 20"),
    "five columns": ("0.1 0.2 0.3 1 5\n" * 20, r"rows have 5 values; expected 4"),
    "all zeros": ("0 0 0 0\n" * 40, "all 2 frames are all zeros"),
    "empty": ("\n", "file is empty"),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_file_is_skipped_and_reported(root: Path, case: str) -> None:
    text, reason = CORRUPT[case]
    name = "a05_s01_e03_skeleton3D.txt"
    (root / FOLDER / name).write_text(text)
    train, test, problems = load_msr_action3d(root, on_error="skip")
    assert train.names == ["a01_s01_e01"]
    assert test.names == ["a02_s02_e01"]
    assert len(problems) == 1
    assert problems[0].startswith(f"{name}: ")
    assert problems[0].endswith("; file skipped")
    assert re.search(reason, problems[0])


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_file_raises_naming_the_file(root: Path, case: str) -> None:
    text, reason = CORRUPT[case]
    path = root / FOLDER / "a05_s01_e03_skeleton3D.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=reason) as info:
        load_msr_action3d(root, on_error="raise")
    assert str(info.value).startswith(f"{path}: ")


def test_bad_file_name_is_reported(root: Path) -> None:
    write_sequence(root / FOLDER, "a21_s01_e01_skeleton3D.txt")
    write_sequence(root / FOLDER, "notes_skeleton3D.txt")
    _, _, problems = load_msr_action3d(root)
    assert problems == [
        "a21_s01_e01_skeleton3D.txt: action 21 is outside 1–20; file skipped",
        "notes_skeleton3D.txt: file name does not match aAA_sSS_eEE_skeleton3D.txt; file skipped",
    ]


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="MSR Action3D skeleton folder not found"):
        load_msr_action3d(tmp_path)
    (tmp_path / FOLDER).mkdir()
    with pytest.raises(FileNotFoundError, match=r"no \*_skeleton3D.txt files"):
        load_msr_action3d(tmp_path)


def test_bad_on_error(root: Path) -> None:
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip', got 'ignore'"):
        load_msr_action3d(root, on_error="ignore")  # type: ignore[arg-type]


def test_a_folder_named_like_a_data_file_is_reported(root: Path) -> None:
    folder = root / FOLDER / "a05_s01_e03_skeleton3D.txt"
    folder.mkdir()
    train, test, problems = load_msr_action3d(root)
    assert (train.names, test.names) == (["a01_s01_e01"], ["a02_s02_e01"])
    assert len(problems) == 1
    assert problems[0].startswith("a05_s01_e03_skeleton3D.txt: cannot read the file (")
    assert problems[0].endswith("); file skipped")
    with pytest.raises(ValueError, match=re.escape(f"{folder}: cannot read the file")):
        load_msr_action3d(root, on_error="raise")
