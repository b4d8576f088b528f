from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from skelmask.data.dataset import SkeletonDataset
from skelmask.data.errors import BEYOND_FLOAT32, SkeletonFileError
from skelmask.data.pku_mmd import load_pku_mmd, read_pku_labels, read_pku_skeleton, read_pku_split

VIDEO = "0310-R"


def write_video(
    root: Path, video: str, frames: np.ndarray, labels: list[str], *, line_values: int = 150
) -> None:
    """Writes ``frames`` (T, 2, 25, 3) and label lines as a PKU-MMD video under ``root``."""
    (root / "skeleton").mkdir(parents=True, exist_ok=True)
    (root / "label").mkdir(parents=True, exist_ok=True)
    rows = frames.reshape(len(frames), -1)[:, :line_values]
    text = "\n".join(" ".join(f"{value:.6f}" for value in row) for row in rows)
    (root / "skeleton" / f"{video}.txt").write_text(text + "\n")
    (root / "label" / f"{video}.txt").write_text("".join(f"{line}\n" for line in labels))


def write_split(path: Path, train: list[str], test: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"Training videos: \n{', '.join(train)},\nValidataion videos: \n{', '.join(test)},\n"
    )


def random_frames(frames: int, *, seed: int = 0, bodies: int = 2) -> np.ndarray:
    values = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(frames, 2, 25, 3))
    values[:, bodies:] = 0.0
    return values.round(6).astype(np.float32)


def make_root(tmp_path: Path, frames: np.ndarray, labels: list[str]) -> Path:
    root = tmp_path / "pku"
    write_video(root, "0001-L", frames, labels)
    write_split(root / "splits" / "cross-subject.txt", ["0001-L"], ["0002-L"])
    write_split(root / "splits" / "cross-view.txt", ["0002-L"], ["0001-L"])
    return root


# --- the real sample ------------------------------------------------------------------------


def real_labels(root: Path) -> np.ndarray:
    return np.loadtxt(root / "label" / f"{VIDEO}.txt", delimiter=",", dtype=np.int64, ndmin=2)


def test_real_sample_cross_subject(shared_data: Path) -> None:
    root = shared_data / "pku-mmd-sample"
    splits, report = load_pku_mmd(root, benchmark="xsub")
    # 0310 is a validation subject (videos 0291 and later) of the cross-subject list.
    assert len(splits["train"]) == 0
    test = splits["test"]
    raw_labels = real_labels(root)
    assert len(raw_labels) == 8
    assert test.names == [f"{VIDEO}_{k:02d}" for k in range(1, 9)]
    np.testing.assert_array_equal(test.labels, raw_labels[:, 0] - 1)
    # Inclusive 0-based segments: end - start + 1 frames.
    np.testing.assert_array_equal(test.lengths, raw_labels[:, 2] - raw_labels[:, 1] + 1)
    assert test.data.shape == (8, 3, 300, 25, 2)
    assert test.data.dtype == np.float32
    assert (test.layout, test.num_classes) == ("nturgb+d", 51)
    assert (report.read, report.kept, report.rejected, report.cleaned) == (1, 8, [], [])


def test_real_sample_cross_view_and_values(shared_data: Path) -> None:
    root = shared_data / "pku-mmd-sample"
    splits, _ = load_pku_mmd(root, benchmark="xview")
    # The cross-view list validates on the middle camera (-M), so a -R video trains.
    assert len(splits["test"]) == 0
    train = splits["train"]
    assert len(train) == 8
    raw = np.loadtxt(root / "skeleton" / f"{VIDEO}.txt").reshape(-1, 2, 25, 3)
    assert raw.shape[0] == 1158
    for n, (_, start, end, _) in enumerate(real_labels(root)):
        segment = raw[start : end + 1]
        # All 8 actions are two-person interactions: both bodies present in every frame.
        assert np.all(np.any(segment != 0.0, axis=(2, 3)))
        expected = segment - segment[0, 0, 1]
        sample = train.data[n]  # (3, 300, 25, 2)
        np.testing.assert_allclose(
            sample[:, : len(segment)].transpose(1, 3, 2, 0), expected, atol=1e-5
        )
        assert not sample[:, len(segment) :].any()
        np.testing.assert_array_equal(sample[:, 0, 1, 0], 0.0)
        assert np.abs(sample[..., 1]).sum() > 0.0


def test_real_split_lists(shared_data: Path) -> None:
    splits = shared_data / "pku-mmd-sample" / "splits"
    xsub = read_pku_split(splits / "cross-subject.txt")
    xview = read_pku_split(splits / "cross-view.txt")
    assert xsub[VIDEO] == "test"
    assert xview[VIDEO] == "train"
    assert xsub["0002-L"] == "train"
    assert xview["0002-M"] == "test"
    assert set(xsub) == set(xview)
    assert all(re.fullmatch(r"\d{4}-[LMR]", name) for name in xsub)


def test_real_sample_into_skeleton_dataset(shared_data: Path) -> None:
    splits, _ = load_pku_mmd(shared_data / "pku-mmd-sample", max_frames=64)
    x, y = SkeletonDataset(splits["test"], window=16, train=False)[0]
    assert x.shape == (3, 16, 25, 2)
    assert int(y) == 26


# --- read_pku_skeleton / read_pku_labels / read_pku_split ------------------------------------


def test_read_skeleton_one_body_lines_pad_second_body(tmp_path: Path) -> None:
    frames = random_frames(3, bodies=1)
    path = tmp_path / "x.txt"
    path.write_text(
        "\n".join(" ".join(map(str, row)) for row in frames.reshape(3, -1)[:, :75]) + "\n\n"
    )
    result = read_pku_skeleton(path)
    assert result.shape == (3, 2, 25, 3)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, frames)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (" ".join(["1"] * 149), "has 149 values; expected 75 or 150"),
        (" ".join(["1"] * 74 + ["x"]), "non-numeric value"),
        (" ".join(["1"] * 74 + ["nan"]), "non-finite value"),
    ],
)
def test_read_skeleton_bad_line_names_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(" ".join(["0"] * 150) + "\n" + line + "\n")
    with pytest.raises(SkeletonFileError, match=reason) as info:
        read_pku_skeleton(path)
    assert (info.value.path, info.value.line) == (str(path), 2)
    assert str(info.value).startswith(f"{path}:2: ")


def test_read_skeleton_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("\n")
    with pytest.raises(SkeletonFileError, match="no frames"):
        read_pku_skeleton(path)


def test_read_labels_zero_based(tmp_path: Path) -> None:
    path = tmp_path / "l.txt"
    path.write_text("1,0,9,1\n\n51,10,10,2\n")
    labels = read_pku_labels(path)
    assert labels.dtype == np.int64
    assert labels.tolist() == [[0, 0, 9, 1], [50, 10, 10, 2]]
    empty = tmp_path / "e.txt"
    empty.write_text("")
    assert read_pku_labels(empty).shape == (0, 4)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("3,1,2", "expected 4 comma-separated integers"),
        ("3,1,x,2", "expected 4 comma-separated integers"),
        ("0,1,2,1", "label 0 is outside 1..51"),
        ("52,1,2,1", "label 52 is outside 1..51"),
        ("3,5,4,1", "need 0 <= start <= end"),
        ("3,-1,4,1", "need 0 <= start <= end"),
    ],
)
def test_read_labels_errors_name_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "l.txt"
    path.write_text(f"1,0,9,1\n{line}\n")
    with pytest.raises(SkeletonFileError, match=reason) as info:
        read_pku_labels(path)
    assert (info.value.path, info.value.line) == (str(path), 2)


def test_read_labels_num_classes(tmp_path: Path) -> None:
    path = tmp_path / "l.txt"
    path.write_text("12,0,9,1\n")
    assert read_pku_labels(path, num_classes=12)[0, 0] == 11
    with pytest.raises(SkeletonFileError, match=r"outside 1\.\.11"):
        read_pku_labels(path, num_classes=11)


def test_read_split_errors(tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    path.write_text("Training videos:\n0001-L\n")
    with pytest.raises(ValueError, match="no test section"):
        read_pku_split(path)
    path.write_text("0001-L,\nTraining videos:\n")
    with pytest.raises(ValueError, match=r"s.txt:1: video names before"):
        read_pku_split(path)
    path.write_text("Training videos: 0001-L, 0002-L\nValidation videos: 0002-L\n")
    with pytest.raises(ValueError, match="0002-L is listed in both"):
        read_pku_split(path)


# --- load_pku_mmd on synthetic files ---------------------------------------------------------


def test_load_synthetic_centres_trims_and_splits(tmp_path: Path) -> None:
    frames = random_frames(40, bodies=1)
    root = make_root(tmp_path, frames, ["5,2,11,1", "7,20,39,2"])
    splits, report = load_pku_mmd(root, max_frames=32)
    train = splits["train"]
    assert train.names == ["0001-L_01", "0001-L_02"]
    assert train.labels.tolist() == [4, 6]
    assert train.lengths.tolist() == [10, 20]
    expected = frames[2:12] - frames[2, 0, 1]
    expected[:, 1] = 0.0  # the absent body stays zeros, not minus the origin
    np.testing.assert_allclose(train.data[0, :, :10].transpose(1, 3, 2, 0), expected, atol=1e-6)
    assert not train.data[0, :, 10:].any()
    assert report.cleaned == []
    assert len(splits["test"]) == 0
    view, _ = load_pku_mmd(root, benchmark="xview", max_frames=32)
    assert view["test"].names == train.names


def test_load_origin_from_first_frame_with_a_body(tmp_path: Path) -> None:
    frames = random_frames(10)
    frames[:3] = 0.0
    frames[3, 0] = 0.0  # body 1 absent in frame 3: body 2's spine mid is the origin
    root = make_root(tmp_path, frames, ["5,0,9,1"])
    arrays = load_pku_mmd(root, max_frames=10)[0]["train"]
    np.testing.assert_allclose(arrays.data[0, :, 3, 1, 1], 0.0, atol=1e-6)
    assert not arrays.data[0, :, :3].any()
    assert not arrays.data[0, :, 3, :, 0].any()


def test_load_resamples_long_segments(tmp_path: Path) -> None:
    frames = random_frames(50)
    root = make_root(tmp_path, frames, ["5,0,49,1"])
    splits, report = load_pku_mmd(root, max_frames=16)
    arrays = splits["train"]
    assert arrays.data.shape == (1, 3, 16, 25, 2)
    assert arrays.lengths.tolist() == [16]
    assert report.cleaned == ["0001-L_01: resampled 50 frames to 16"]
    centred = frames - frames[0, 0, 1]
    index = np.linspace(0, 49, 16).round().astype(int)
    np.testing.assert_allclose(arrays.data[0].transpose(1, 3, 2, 0), centred[index], atol=1e-5)


def test_segment_beyond_end_skip_and_raise(tmp_path: Path) -> None:
    root = make_root(tmp_path, random_frames(20), ["5,0,9,1", "6,10,20,1", "7,12,19,1"])
    splits, report = load_pku_mmd(root)
    assert splits["train"].names == ["0001-L_01", "0001-L_03"]
    label_path = root / "label" / "0001-L.txt"
    assert len(report.rejected) == 1
    assert report.rejected[0].startswith(f"{label_path}:2: segment 10..20 is beyond the end")
    with pytest.raises(SkeletonFileError, match="beyond the end") as info:
        load_pku_mmd(root, on_error="raise")
    assert (info.value.path, info.value.line) == (str(label_path), 2)


def test_segment_without_body_is_rejected(tmp_path: Path) -> None:
    frames = random_frames(20)
    frames[5:10] = 0.0
    root = make_root(tmp_path, frames, ["5,5,9,1", "6,0,4,1"])
    splits, report = load_pku_mmd(root)
    assert splits["train"].names == ["0001-L_02"]
    assert report.rejected == [f"{root / 'label' / '0001-L.txt'}:1: segment 5..9 holds no body"]


def test_bad_files_skip_and_raise(tmp_path: Path) -> None:
    root = make_root(tmp_path, random_frames(20), ["5,0,9,1"])
    write_video(root, "0002-L", random_frames(20), ["5,0,9,1", "99,0,9,1"])
    write_video(root, "0003-L", random_frames(20), ["5,0,9,1"])  # in no split list
    write_video(root, "0004-L", random_frames(20), ["5,0,9,1"])
    (root / "skeleton" / "0004-L.txt").unlink()
    write_video(root, "0005-L", random_frames(20), ["5,0,9,1"])
    (root / "label" / "0005-L.txt").unlink()
    write_split(root / "splits" / "cross-subject.txt", ["0001-L", "0004-L"], ["0002-L", "0005-L"])
    splits, report = load_pku_mmd(root)
    assert splits["train"].names == ["0001-L_01"]
    assert len(splits["test"]) == 0
    assert report.read == 5
    assert report.kept == 1
    rejected = "\n".join(report.rejected)
    assert f"{root / 'label' / '0002-L.txt'}:2: label 99 is outside 1..51" in rejected
    assert "video 0003-L is in neither list" in rejected
    assert f"skeleton file {root / 'skeleton' / '0004-L.txt'} not found" in rejected
    assert f"{root / 'skeleton' / '0005-L.txt'}: no label file" in rejected
    with pytest.raises(SkeletonFileError):
        load_pku_mmd(root, on_error="raise")


def test_workers_give_the_same_result(tmp_path: Path) -> None:
    root = make_root(tmp_path, random_frames(30), ["5,0,9,1"])
    write_video(root, "0002-L", random_frames(30, seed=1), ["8,3,29,2", "9,0,40,1"])
    serial, serial_report = load_pku_mmd(root, max_frames=20)
    parallel, parallel_report = load_pku_mmd(root, max_frames=20, workers=2)
    for split in ("train", "test"):
        np.testing.assert_array_equal(serial[split].data, parallel[split].data)
        assert serial[split].names == parallel[split].names
    assert serial_report == parallel_report
    assert serial["test"].names == ["0002-L_01"]
    assert len(serial_report.rejected) == 1


def test_phase_two_split_files(tmp_path: Path) -> None:
    root = tmp_path / "v2"
    write_video(root, "A01N01-L", random_frames(12), ["41,0,11,1"])
    write_video(root, "A01N02-M", random_frames(12, seed=3), ["2,1,5,1"])
    write_split(root / "cross_subject_v2.txt", ["A01N02-M"], ["A01N01-L"])
    write_split(root / "cross_view_v2.txt", ["A01N01-L"], ["A01N02-M"])
    xsub, _ = load_pku_mmd(root, phase=2)
    assert (xsub["train"].names, xsub["test"].names) == (["A01N02-M_01"], ["A01N01-L_01"])
    assert xsub["test"].labels.tolist() == [40]
    assert xsub["test"].num_classes == 51
    xview, _ = load_pku_mmd(root, phase=2, benchmark="xview")
    assert xview["train"].names == ["A01N01-L_01"]
    with pytest.raises(FileNotFoundError, match="phase 1 xsub split list"):
        load_pku_mmd(root, phase=1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"phase": 3}, "phase must be 1 or 2"),
        ({"benchmark": "xset"}, "benchmark must be 'xsub' or 'xview'"),
        ({"max_frames": 0}, "max_frames must be an int >= 1"),
        ({"on_error": "ignore"}, "on_error must be"),
        ({"workers": 0}, "workers must be"),
    ],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
    root = make_root(tmp_path, random_frames(10), ["5,0,9,1"])
    with pytest.raises(ValueError, match=match):
        load_pku_mmd(root, **kwargs)  # type: ignore[arg-type]


def test_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="skeleton folder not found"):
        load_pku_mmd(tmp_path)
    (tmp_path / "skeleton").mkdir()
    with pytest.raises(FileNotFoundError, match="label folder not found"):
        load_pku_mmd(tmp_path)


# --- hostile input ----------------------------------------------------------------------------


def test_read_skeleton_value_beyond_float32(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text(" ".join(["0"] * 150) + "\n" + " ".join(["1"] * 74 + ["1e39"]) + "\n")
    with pytest.raises(SkeletonFileError, match=re.escape(f"value {BEYOND_FLOAT32}")) as info:
        read_pku_skeleton(path)
    assert (info.value.path, info.value.line) == (str(path), 2)


def test_label_numbers_beyond_int64_are_reported_and_the_rest_kept(tmp_path: Path) -> None:
    root = make_root(tmp_path, random_frames(20), ["5,0,9,1"])
    write_video(root, "0002-L", random_frames(20), ["5,0,9,1", f"6,0,{10**30},1"])
    write_split(root / "splits" / "cross-subject.txt", ["0001-L"], ["0002-L"])
    splits, report = load_pku_mmd(root)
    assert splits["train"].names == ["0001-L_01"]
    label_path = root / "label" / "0002-L.txt"
    assert report.rejected == [
        f"{label_path}:2: start, end and confidence must fit in int64; got '6,0,{10**30},1'"
    ]
    assert report.kept == 1
    with pytest.raises(SkeletonFileError, match="must fit in int64") as info:
        load_pku_mmd(root, on_error="raise")
    assert (info.value.path, info.value.line) == (str(label_path), 2)


def test_segment_that_overflows_float32_when_centred_is_rejected(tmp_path: Path) -> None:
    frames = random_frames(20, bodies=1)
    frames[:10, 0, 1, 0] = -3e38  # the spine mid, the origin
    frames[:10, 0, 0, 0] = 3e38
    root = tmp_path / "pku"
    (root / "skeleton").mkdir(parents=True)
    (root / "label").mkdir()
    rows = frames.reshape(len(frames), -1).astype(np.float64)
    (root / "skeleton" / "0001-L.txt").write_text(
        "\n".join(" ".join(repr(float(value)) for value in row) for row in rows) + "\n"
    )
    (root / "label" / "0001-L.txt").write_text("5,0,9,1\n6,10,19,1\n")
    write_split(root / "splits" / "cross-subject.txt", ["0001-L"], [])
    splits, report = load_pku_mmd(root)
    assert splits["train"].names == ["0001-L_02"]
    assert report.rejected == [
        f"{root / 'label' / '0001-L.txt'}:1: segment 0..9: centred coordinates are {BEYOND_FLOAT32}"
    ]
    assert np.isfinite(splits["train"].data).all()


def test_folders_named_like_data_files_are_reported(tmp_path: Path) -> None:
    root = make_root(tmp_path, random_frames(20), ["5,0,9,1"])
    write_video(root, "0002-L", random_frames(20), ["5,0,9,1"])
    (root / "label" / "0002-L.txt").unlink()
    (root / "label" / "0002-L.txt").mkdir()
    (root / "skeleton" / "0003-L.txt").mkdir()
    (root / "label" / "0003-L.txt").write_text("5,0,9,1\n")
    write_split(root / "splits" / "cross-subject.txt", ["0001-L", "0003-L"], ["0002-L"])
    splits, report = load_pku_mmd(root)
    assert splits["train"].names == ["0001-L_01"]
    assert len(report.rejected) == 2
    assert report.rejected[0] == (
        f"{root / 'label' / '0003-L.txt'}: skeleton file {root / 'skeleton' / '0003-L.txt'} "
        "is not a file"
    )
    assert report.rejected[1].startswith(f"{root / 'label' / '0002-L.txt'}: cannot read the file (")
