from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skelmask.data.dataset import SkeletonDataset
from skelmask.data.errors import BEYOND_FLOAT32, SkeletonFileError
from skelmask.data.ntu import (
    NTU60_TRAINING_SUBJECTS,
    NTU120_TRAINING_SUBJECTS,
    NTU_BENCHMARKS,
    NTUBody,
    NTUName,
    NTUSequence,
    clean_ntu_sequence,
    load_ntu,
    ntu_split,
    parse_ntu_name,
    read_ntu_skeleton,
)

SPINE_MID = 1
Frame = Sequence[tuple[str, np.ndarray]]  # (body ID, joints (25, 3)) of every body in a frame


def person(frames: int, *, seed: int, motion: float = 0.05, wide: bool = False) -> np.ndarray:
    """A standing person (taller than wide, or wider than tall) moving a little, (T, 25, 3)."""
    rng = np.random.default_rng(seed)
    x_half, y_half = (0.9, 0.2) if wide else (0.2, 0.8)
    pose = rng.uniform((-x_half, -y_half, 2.8), (x_half, y_half, 3.2), size=(25, 3))
    pose[:, 0] += rng.uniform(-1.0, 1.0)
    drift = rng.normal(scale=motion, size=(frames, 25, 3))
    # Six decimals, as written to the files, so comparisons are exact up to float32.
    return np.round(pose + drift, 6)


def skeleton_lines(frames: Sequence[Frame]) -> list[str]:
    lines = [str(len(frames))]
    for frame in frames:
        lines.append(str(len(frame)))
        for body_id, joints in frame:
            lines += [f"{body_id} 0 1 1 1 1 0 0.01 -0.25 2", "25"]
            lines += [f"{x:.6f} {y:.6f} {z:.6f} 300 200 1100 500 0 0 0 0 2" for x, y, z in joints]
    return lines


def write_skeleton(
    folder: Path, name: str, frames: Sequence[Frame], *, newline: str = "\n"
) -> Path:
    path = folder / f"{name}.skeleton"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((newline.join(skeleton_lines(frames)) + newline).encode())
    return path


def single(joints: np.ndarray, body_id: str = "72057594037931101") -> list[Frame]:
    return [[(body_id, frame)] for frame in joints]


def write_text(folder: Path, name: str, lines: Sequence[str]) -> Path:
    path = folder / f"{name}.skeleton"
    path.write_text("\n".join(lines) + "\n")
    return path


# --- real data --------------------------------------------------------------------------------


def read_index(root: Path) -> list[dict[str, str]]:
    with (root / "index.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_real_files_are_read_with_their_frame_and_body_counts(shared_data: Path) -> None:
    root = shared_data / "ntu-raw-samples"
    index = read_index(root)
    assert len(index) == 6
    for row in index:
        path = root / row["file"]
        assert b"\r\n" in path.read_bytes()[:200]  # the published files use CRLF
        sequence = read_ntu_skeleton(path)
        assert sequence.num_frames == int(row["n_frames"])
        per_frame = np.zeros(sequence.num_frames, dtype=np.int64)
        for body in sequence.bodies:
            per_frame[body.frames] += 1
            assert body.joints.shape == (len(body.frames), 25, 3)
            assert body.joints.dtype == np.float32
        assert per_frame.max() == int(row["max_bodies"])
    first = read_ntu_skeleton(root / "S001C003P008R002A058.skeleton").bodies[0]
    # First joint line of the file: "0.7201789 0.1647426 3.561895 ...".
    np.testing.assert_allclose(first.joints[0, 0], [0.7201789, 0.1647426, 3.561895], rtol=1e-6)


@pytest.mark.parametrize("benchmark", ["ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset"])
def test_real_files_load_into_the_benchmark_splits(shared_data: Path, benchmark: str) -> None:
    root = shared_data / "ntu-raw-samples"
    index = {row["file"].removesuffix(".skeleton"): row for row in read_index(root)}
    splits, report = load_ntu(root, benchmark=benchmark, max_frames=128, missing="builtin")
    assert (report.read, report.kept, report.rejected, report.cleaned) == (6, 6, [], [])
    assert sorted(splits["train"].names + splits["test"].names) == sorted(index)
    for split, arrays in splits.items():
        assert arrays.data.shape[1:] == (3, 128, 25, 2)
        assert arrays.num_classes == (60 if benchmark.startswith("ntu60") else 120)
        assert arrays.layout == "nturgb+d"
        for n, name in enumerate(arrays.names):
            row = index[name]
            assert ntu_split(parse_ntu_name(name), benchmark) == split
            assert arrays.labels[n] == int(row["action_id"]) - 1
            assert arrays.lengths[n] == int(row["n_frames"])
            sample = arrays.data[n]
            assert not sample[:, arrays.lengths[n] :].any()
            np.testing.assert_array_equal(sample[:, 0, SPINE_MID, 0], 0.0)
            nonzero_bodies = np.abs(sample[:, : arrays.lengths[n]]).sum(axis=(0, 1, 2)) > 0
            assert nonzero_bodies.tolist() == (
                [True, True] if row["max_bodies"] == "2" else [True, False]
            )
            assert np.abs(sample).max() < 3.0  # centred: not the 3-4 m camera depth


def test_real_xsub_split_follows_the_performers(shared_data: Path) -> None:
    splits, _ = load_ntu(shared_data / "ntu-raw-samples", benchmark="ntu60-xsub")
    # Performers 1, 8 and 15 are training subjects; performer 3 is a test subject.
    assert splits["train"].names == [
        "S001C001P001R001A001",
        "S001C001P001R001A011",
        "S001C003P008R002A058",
        "S003C001P015R001A034",
    ]
    assert splits["test"].names == ["S002C001P003R001A003", "S004C002P003R001A017"]


# --- reading synthetic files --------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_reads_lf_and_crlf_files_exactly(tmp_path: Path, newline: str) -> None:
    joints = person(5, seed=1)
    path = write_skeleton(tmp_path, "S001C001P001R001A001", single(joints), newline=newline)
    sequence = read_ntu_skeleton(path)
    assert sequence.num_frames == 5
    assert sequence.path == str(path)
    [body] = sequence.bodies
    assert body.body_id == "72057594037931101"
    np.testing.assert_array_equal(body.frames, np.arange(5))
    np.testing.assert_allclose(body.joints, joints, atol=1e-6)


def test_reads_zero_and_several_bodies_per_frame(tmp_path: Path) -> None:
    a, b = person(4, seed=1), person(4, seed=2)
    frames: list[Frame] = [[], [("7", a[0]), ("9", b[0])], [("9", b[1])], [("7", a[2])]]
    sequence = read_ntu_skeleton(write_skeleton(tmp_path, "S001C001P001R001A050", frames))
    assert sequence.num_frames == 4
    assert [body.body_id for body in sequence.bodies] == ["7", "9"]
    np.testing.assert_array_equal(sequence.bodies[0].frames, [1, 3])
    np.testing.assert_array_equal(sequence.bodies[1].frames, [1, 2])
    np.testing.assert_allclose(sequence.bodies[0].joints, a[[0, 2]], atol=1e-6)
    np.testing.assert_allclose(sequence.bodies[1].joints, b[[0, 1]], atol=1e-6)


def good_lines() -> list[str]:
    """Two frames, one body each: lines 1 (frames), 2 (bodies), 3 (info), 4 (joints), 5-29, 30..."""
    return skeleton_lines(single(person(2, seed=3)))


def replace(lines: list[str], number: int, text: str) -> list[str]:
    changed = list(lines)
    changed[number - 1] = text
    return changed


JOINT = "0.1 0.2 3.0 300 200 1100 500 0 0 0 0 2"
ERROR_CASES = {
    "truncated in the joints": (good_lines()[:40], 41, "truncated: the file ends after 8 of 25"),
    "truncated before a frame": (good_lines()[:29], 30, "truncated: the file ends where the body count of frame 2"),
    "joint line with 11 values": (replace(good_lines(), 7, JOINT.rsplit(" ", 1)[0]), 7, "joint line has 11 values; expected 12"),
    "joint line with 13 values": (replace(good_lines(), 33, JOINT + " 5"), 33, "joint line has 13 values; expected 12"),
    "non-numeric joint value": (replace(good_lines(), 12, JOINT.replace("3.0", "3.O")), 12, "non-numeric value '3.O'"),
    "NaN coordinate": (replace(good_lines(), 20, JOINT.replace("0.2", "nan")), 20, "joint x y z must be finite, got 0.1 nan 3.0"),
    "coordinate beyond float32": (replace(good_lines(), 20, JOINT.replace("0.2", "1e39")), 20, re.escape("joint x y z are beyond the float32 range (|value| > 3.4e38), got 0.1 1e39 3.0")),
    "joint count 24": (replace(good_lines(), 4, "24"), 4, "joint count is 24; expected 25"),
    "non-integer joint count": (replace(good_lines(), 32, "25.5"), 32, "the joint count of body \\d+ in frame 2 must be an integer"),
    "negative body count": (replace(good_lines(), 2, "-1"), 2, "body count of frame 1 is -1"),
    "too many bodies": (replace(good_lines(), 30, "7"), 30, "body count of frame 2 is 7; expected 0 to 6"),
    "non-numeric body count": (replace(good_lines(), 2, "two"), 2, "the body count of frame 1 must be an integer"),
    "short body info line": (replace(good_lines(), 3, "7 0 1"), 3, "body info line has 3 values; expected 10"),
    "zero frames": (["0"], 1, "frame count is 0; expected at least 1"),
    "non-numeric frame count": (["frames"], 1, "the frame count must be an integer"),
    "text after the last frame": ([*good_lines(), "", "extra"], 59, "unexpected text after the last frame"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_bad_files_raise_naming_the_file_and_line(tmp_path: Path, case: str) -> None:
    lines, line, message = ERROR_CASES[case]
    path = write_text(tmp_path, "S001C001P001R001A001", lines)
    with pytest.raises(
        SkeletonFileError, match=rf"^{re.escape(str(path))}:{line}: {message}"
    ) as info:
        read_ntu_skeleton(path)
    assert (info.value.path, info.value.line) == (str(path), line)


def test_bad_crlf_file_reports_the_same_line(tmp_path: Path) -> None:
    lines = replace(good_lines(), 7, "1 2")
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    with pytest.raises(SkeletonFileError, match=r":7: joint line has 2 values"):
        read_ntu_skeleton(path)


def test_empty_unreadable_and_duplicate_body_id_files_raise(tmp_path: Path) -> None:
    empty = tmp_path / "S001C001P001R001A001.skeleton"
    empty.write_text("\r\n\n")
    with pytest.raises(SkeletonFileError, match=rf"^{re.escape(str(empty))}: file is empty$"):
        read_ntu_skeleton(empty)
    with pytest.raises(SkeletonFileError, match=rf"^{re.escape(str(tmp_path))}: cannot read"):
        read_ntu_skeleton(tmp_path)  # a folder
    pose = person(1, seed=0)[0]
    twice = write_skeleton(tmp_path, "S001C001P001R001A002", [[("5", pose), ("5", pose)]])
    with pytest.raises(SkeletonFileError, match=r":30: body ID 5 appears twice in frame 1"):
        read_ntu_skeleton(twice)


# --- cleaning -----------------------------------------------------------------------------------


def test_frames_without_a_body_are_dropped_and_the_first_actor_centred(tmp_path: Path) -> None:
    joints = person(6, seed=4)
    frames = single(joints)
    frames[0], frames[3] = [], []
    sequence = read_ntu_skeleton(write_skeleton(tmp_path, "S001C001P001R001A001", frames))
    cleaned, notes = clean_ntu_sequence(sequence)
    assert notes == ["dropped 2 of 6 frames without a body"]
    assert cleaned.shape == (4, 2, 25, 3)
    assert cleaned.dtype == np.float32
    kept = joints[[1, 2, 4, 5]]
    np.testing.assert_allclose(cleaned[:, 0], kept - kept[0, SPINE_MID], atol=1e-5)
    assert not cleaned[:, 1].any()


def test_actors_are_ranked_by_motion_and_noisy_bodies_discarded() -> None:
    frames = np.arange(40)
    calm = NTUBody("calm", frames, person(40, seed=5, motion=0.01).astype(np.float32))
    busy = NTUBody("busy", frames, person(40, seed=6, motion=0.2).astype(np.float32))
    wide = NTUBody("wide", frames, person(40, seed=7, motion=0.5, wide=True).astype(np.float32))
    blip = NTUBody("blip", frames[:11], person(11, seed=8, motion=0.9).astype(np.float32))
    sequence = NTUSequence("S001C001P001R001A050.skeleton", 40, (calm, blip, wide, busy))
    cleaned, notes = clean_ntu_sequence(sequence, max_bodies=2)
    assert notes == [
        "discarded body blip (11 frames): tracked in at most 11 frames",
        "discarded body wide (40 frames): wider than 0.8 of its height in at least 70% of its frames",
    ]
    origin = busy.joints[0, SPINE_MID]
    np.testing.assert_allclose(cleaned[:, 0], busy.joints - origin, atol=1e-6)  # moves most
    np.testing.assert_allclose(cleaned[:, 1], calm.joints - origin, atol=1e-6)


def test_a_noisy_third_body_in_a_file_is_discarded(tmp_path: Path) -> None:
    hugger, hugged = person(30, seed=20, motion=0.1), person(30, seed=21, motion=0.05)
    ghost = person(30, seed=22, motion=0.3, wide=True)  # a chair or wall: more motion, but wide
    frames: list[Frame] = [
        [("11", hugger[t]), ("12", hugged[t]), ("13", ghost[t])] for t in range(30)
    ]
    write_skeleton(tmp_path, "S001C001P001R001A055", frames, newline="\r\n")
    splits, report = load_ntu(tmp_path, benchmark="ntu60-xsub", max_frames=32)
    noise = "discarded body 13 (30 frames): wider than 0.8 of its height in at least 70%"
    assert report.cleaned == [f"S001C001P001R001A055: {noise} of its frames"]
    data = splits["train"].data[0]  # (C, T, V, M)
    origin = hugger[0, SPINE_MID]
    np.testing.assert_allclose(data[:, :30, :, 0], (hugger - origin).transpose(2, 0, 1), atol=1e-5)
    np.testing.assert_allclose(data[:, :30, :, 1], (hugged - origin).transpose(2, 0, 1), atol=1e-5)


def test_a_track_broken_into_two_ids_becomes_one_actor() -> None:
    first = NTUBody("a1", np.arange(0, 20), person(20, seed=9, motion=0.3).astype(np.float32))
    second = NTUBody("a2", np.arange(20, 40), person(20, seed=10, motion=0.3).astype(np.float32))
    other = NTUBody("b", np.arange(40), person(40, seed=11, motion=0.01).astype(np.float32))
    third = NTUBody("c", np.arange(5, 25), person(20, seed=12, motion=0.005).astype(np.float32))
    sequence = NTUSequence("x.skeleton", 40, (first, other, second, third))
    cleaned, notes = clean_ntu_sequence(sequence, max_bodies=2)
    assert notes == ["discarded body c (20 frames): it overlaps the 2 actors that move more"]
    origin = first.joints[0, SPINE_MID]
    np.testing.assert_allclose(cleaned[:20, 0], first.joints - origin, atol=1e-6)
    np.testing.assert_allclose(cleaned[20:, 0], second.joints - origin, atol=1e-6)
    np.testing.assert_allclose(cleaned[:, 1], other.joints - origin, atol=1e-6)


def test_filters_keep_the_bodies_when_all_would_go() -> None:
    short = [NTUBody(str(i), np.arange(5), person(5, seed=i).astype(np.float32)) for i in range(2)]
    cleaned, notes = clean_ntu_sequence(NTUSequence("x.skeleton", 5, tuple(short)))
    assert notes == ["kept all 2 bodies although each was tracked in at most 11 frames"]
    assert (np.abs(cleaned).sum(axis=(0, 2, 3)) > 0).all()
    # A single body is never filtered, however short or wide.
    alone = NTUBody("w", np.arange(3), person(3, seed=1, wide=True).astype(np.float32))
    assert clean_ntu_sequence(NTUSequence("x.skeleton", 3, (alone,)))[1] == []


def test_first_present_actor_is_the_centre_when_slot_zero_starts_later() -> None:
    late = NTUBody("late", np.arange(10, 30), person(20, seed=13, motion=0.4).astype(np.float32))
    early = NTUBody("early", np.arange(30), person(30, seed=14, motion=0.01).astype(np.float32))
    cleaned, _ = clean_ntu_sequence(NTUSequence("x.skeleton", 30, (early, late)))
    np.testing.assert_allclose(cleaned[0, 1, SPINE_MID], 0.0, atol=1e-7)
    assert not cleaned[:10, 0].any()


def test_a_file_without_any_body_is_rejected(tmp_path: Path) -> None:
    path = write_skeleton(tmp_path, "S001C001P001R001A001", [[], [], []])
    sequence = read_ntu_skeleton(path)
    assert sequence.bodies == ()
    with pytest.raises(SkeletonFileError, match="no skeleton: none of its 3 frames holds a body"):
        clean_ntu_sequence(sequence)
    with pytest.raises(ValueError, match="max_bodies must be an int >= 1, got 0"):
        clean_ntu_sequence(sequence, max_bodies=0)


# --- names and benchmarks -----------------------------------------------------------------------


def test_parse_ntu_name_accepts_names_files_and_paths() -> None:
    expected = NTUName(setup=18, camera=2, performer=45, replication=1, action=120)
    for name in (
        "S018C002P045R001A120",
        "S018C002P045R001A120.skeleton",
        "a/b/S018C002P045R001A120.skeleton",
    ):
        assert parse_ntu_name(name) == expected
    for bad in ("S01C002P045R001A120", "S018C002P045R001A120.txt", "x", "S000C001P001R001A001"):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            parse_ntu_name(bad)


def test_training_subject_lists_match_the_dataset_papers() -> None:
    ntu60 = {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38}
    added = {45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103}  # fmt: skip
    assert ntu60 == NTU60_TRAINING_SUBJECTS
    assert ntu60 | added == NTU120_TRAINING_SUBJECTS
    assert (len(NTU60_TRAINING_SUBJECTS), len(NTU120_TRAINING_SUBJECTS)) == (20, 53)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("S001C001P001R001A001", {"ntu60-xsub": "train", "ntu60-xview": "test", "ntu120-xsub": "train", "ntu120-xset": "test"}),
        ("S002C002P003R002A060", {"ntu60-xsub": "test", "ntu60-xview": "train", "ntu120-xsub": "test", "ntu120-xset": "train"}),
        ("S017C003P040R001A010", {"ntu60-xsub": "test", "ntu60-xview": "train", "ntu120-xsub": "test", "ntu120-xset": "test"}),
        ("S018C001P045R001A061", {"ntu60-xsub": None, "ntu60-xview": None, "ntu120-xsub": "train", "ntu120-xset": "train"}),
        ("S032C003P106R002A120", {"ntu60-xsub": None, "ntu60-xview": None, "ntu120-xsub": "test", "ntu120-xset": "train"}),
        ("S033C001P001R001A001", {"ntu60-xsub": None, "ntu60-xview": None, "ntu120-xsub": None, "ntu120-xset": None}),
        ("S001C001P001R001A121", {"ntu60-xsub": None, "ntu60-xview": None, "ntu120-xsub": None, "ntu120-xset": None}),
    ],
)  # fmt: skip
def test_split_membership(name: str, expected: dict[str, str | None]) -> None:
    parsed = parse_ntu_name(name)
    assert {benchmark: ntu_split(parsed, benchmark) for benchmark in NTU_BENCHMARKS} == expected


@given(
    setup=st.integers(1, 32),
    camera=st.integers(1, 3),
    performer=st.integers(1, 106),
    action=st.integers(1, 120),
)
@settings(max_examples=200, deadline=None)
def test_split_rules(setup: int, camera: int, performer: int, action: int) -> None:
    name = NTUName(setup, camera, performer, 1, action)
    in_ntu60 = action <= 60 and setup <= 17
    assert (ntu_split(name, "ntu60-xsub") is None) == (not in_ntu60)
    if in_ntu60:
        assert (ntu_split(name, "ntu60-xsub") == "train") == (performer in NTU60_TRAINING_SUBJECTS)
        assert (ntu_split(name, "ntu60-xview") == "train") == (camera != 1)
    assert (ntu_split(name, "ntu120-xsub") == "train") == (performer in NTU120_TRAINING_SUBJECTS)
    assert (ntu_split(name, "ntu120-xset") == "train") == (setup % 2 == 0)


def test_unknown_benchmark_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"benchmark must be one of .* got 'ntu60-xset'"):
        ntu_split(parse_ntu_name("S001C001P001R001A001"), "ntu60-xset")


# --- load_ntu -----------------------------------------------------------------------------------

NAMES = {
    "S001C001P001R001A001": 12,  # ntu60: xsub train, xview test; ntu120 xset test
    "S002C002P003R002A002": 15,  # xsub test, xview train, xset train
    "S018C003P045R001A061": 14,  # NTU-120 only
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "skeletons"
    for seed, (name, frames) in enumerate(NAMES.items()):
        write_skeleton(folder / f"part{seed % 2}", name, single(person(frames, seed=seed)))
    return folder


def test_load_ntu_splits_labels_pads_and_names(root: Path) -> None:
    splits, report = load_ntu(root, benchmark="ntu60-xsub", max_frames=20, max_bodies=1)
    assert (report.read, report.kept, report.rejected, report.cleaned) == (2, 2, [], [])
    assert splits["train"].names == ["S001C001P001R001A001"]
    assert splits["test"].names == ["S002C002P003R002A002"]
    assert splits["train"].data.shape == (1, 3, 20, 25, 1)
    assert splits["test"].labels.tolist() == [1]
    assert splits["test"].lengths.tolist() == [15]
    assert splits["train"].num_classes == 60
    expected = person(15, seed=1)
    expected = (expected - expected[0, SPINE_MID]).transpose(2, 0, 1)
    np.testing.assert_allclose(splits["test"].data[0, :, :15, :, 0], expected, atol=1e-5)
    assert not splits["test"].data[0, :, 15:].any()

    splits, report = load_ntu(root, benchmark="ntu120-xset", max_frames=20)
    assert report.read == 3
    assert splits["train"].names == ["S002C002P003R002A002", "S018C003P045R001A061"]
    assert splits["train"].labels.tolist() == [1, 60]
    assert splits["train"].num_classes == 120
    assert splits["test"].names == ["S001C001P001R001A001"]


def test_long_sequences_are_resampled_uniformly(root: Path) -> None:
    splits, report = load_ntu(root, benchmark="ntu60-xview", max_frames=6)
    assert report.cleaned == [
        "S001C001P001R001A001: resampled 12 frames uniformly to 6",
        "S002C002P003R002A002: resampled 15 frames uniformly to 6",
    ]
    assert splits["test"].lengths.tolist() == [6]
    joints = person(12, seed=0)
    index = np.round(np.linspace(0, 11, 6)).astype(int)  # [0, 2, 4, 7, 9, 11]
    expected = (joints - joints[0, SPINE_MID])[index].transpose(2, 0, 1)
    np.testing.assert_allclose(splits["test"].data[0, :, :, :, 0], expected, atol=1e-5)


def test_empty_split_is_allowed(root: Path) -> None:
    splits, _ = load_ntu(root / "part0", benchmark="ntu60-xview")
    assert len(splits["train"]) == 0
    assert splits["train"].data.shape == (0, 3, 300, 25, 2)
    assert splits["test"].names == ["S001C001P001R001A001"]


def test_bad_files_are_skipped_or_raised(root: Path) -> None:
    bad = write_text(root, "S003C001P002R001A005", replace(good_lines(), 9, "1 2 3"))
    empty = write_skeleton(root, "S003C001P002R001A006", [[], []])
    misnamed = write_skeleton(root, "drink_water", single(person(12, seed=0)))
    splits, report = load_ntu(root, benchmark="ntu60-xsub")
    assert (report.read, report.kept) == (5, 2)
    # File names are checked before any file is read.
    assert report.rejected == [
        f"{misnamed}: file name is not of the form SsssCcccPpppRrrrAaaa",
        f"{bad}:9: joint line has 3 values; expected 12",
        f"{empty}: no skeleton: none of its 2 frames holds a body",
    ]
    assert splits["test"].names == ["S002C002P003R002A002"]
    misnamed.unlink()
    with pytest.raises(SkeletonFileError, match=rf"^{re.escape(str(bad))}:9: joint line has 3"):
        load_ntu(root, benchmark="ntu60-xsub", on_error="raise")


def test_misnamed_file_raises_with_on_error_raise(tmp_path: Path) -> None:
    path = write_skeleton(tmp_path, "S001C001P001R001", single(person(12, seed=0)))
    with pytest.raises(SkeletonFileError, match="file name is not of the form"):
        load_ntu(tmp_path, benchmark="ntu120-xsub", on_error="raise")
    assert path.exists()


def test_duplicate_sample_names_are_rejected(root: Path) -> None:
    copy = write_skeleton(root / "zz", "S001C001P001R001A001", single(person(12, seed=0)))
    splits, report = load_ntu(root, benchmark="ntu60-xsub")
    assert splits["train"].names == ["S001C001P001R001A001"]
    assert len(report.rejected) == 1
    assert report.rejected[0].startswith(f"{copy}: duplicate sample S001C001P001R001A001")


def test_missing_skeleton_lists(root: Path, tmp_path: Path) -> None:
    listed = "S001C002P005R002A008"  # first entry of the dataset authors' list
    path = write_skeleton(root, listed, single(person(12, seed=5)))
    splits, report = load_ntu(root, benchmark="ntu60-xview", missing="builtin")
    assert listed not in splits["train"].names + splits["test"].names
    assert report.rejected == [f"{path}: listed as a sample with missing skeletons"]
    assert (report.read, report.kept) == (3, 2)

    splits, report = load_ntu(root, benchmark="ntu60-xview")
    assert listed in splits["train"].names
    assert report.rejected == []

    names_file = tmp_path / "missing.txt"
    names_file.write_text("# mine\n\nS002C002P003R002A002.skeleton\r\n")
    for missing in (names_file, str(names_file), ["S002C002P003R002A002"]):
        splits, report = load_ntu(root, benchmark="ntu60-xview", missing=missing)
        assert splits["train"].names == [listed]
        assert len(report.rejected) == 1

    with pytest.raises(ValueError, match="is not a file"):
        load_ntu(root, benchmark="ntu60-xview", missing=str(tmp_path / "nope.txt"))
    with pytest.raises(ValueError, match="not NTU sample names: \\['drink'\\]"):
        load_ntu(root, benchmark="ntu60-xview", missing=["drink"])


def test_builtin_missing_list_is_the_published_one() -> None:
    from importlib import resources

    text = resources.files("skelmask.data").joinpath("ntu_missing_skeletons.txt").read_text()
    names = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(names) == len(set(names)) == 535
    assert sum(parse_ntu_name(name).setup <= 17 for name in names) == 302
    assert names[0] == "S001C002P005R002A008"
    assert names[-1] == "S032C003P067R002A077"


def test_workers_give_identical_arrays(root: Path) -> None:
    serial, serial_report = load_ntu(root, benchmark="ntu120-xsub", max_frames=16)
    parallel, parallel_report = load_ntu(root, benchmark="ntu120-xsub", max_frames=16, workers=2)
    assert serial_report == parallel_report
    for split in ("train", "test"):
        np.testing.assert_array_equal(serial[split].data, parallel[split].data)
        assert serial[split].names == parallel[split].names
        np.testing.assert_array_equal(serial[split].lengths, parallel[split].lengths)


def test_round_trip_to_skeleton_dataset(root: Path) -> None:
    splits, _ = load_ntu(root, benchmark="ntu120-xsub", max_frames=32)
    x, y = SkeletonDataset(splits["train"], window=8, seed=0)[0]
    assert x.shape == (3, 8, 25, 2)
    assert int(y) == splits["train"].labels[0]
    x, _ = SkeletonDataset(splits["train"], window=8, train=False)[0]
    assert x.shape == (3, 8, 25, 2)
    assert not x[..., 1].any()


def test_invalid_arguments(tmp_path: Path, root: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no skeletons here")
    with pytest.raises(FileNotFoundError, match=r"no \*\.skeleton files under"):
        load_ntu(empty, benchmark="ntu60-xsub")
    with pytest.raises(FileNotFoundError, match="folder not found"):
        load_ntu(tmp_path / "nope", benchmark="ntu60-xsub")
    with pytest.raises(ValueError, match="benchmark must be one of"):
        load_ntu(root, benchmark="ntu60")
    with pytest.raises(ValueError, match="max_frames must be an int >= 1, got 0"):
        load_ntu(root, benchmark="ntu60-xsub", max_frames=0)
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip'"):
        load_ntu(root, benchmark="ntu60-xsub", on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="workers must be an int >= 1"):
        load_ntu(root, benchmark="ntu60-xsub", workers=0)


def test_coordinates_that_overflow_float32_when_centred_are_rejected(root: Path) -> None:
    # Each value fits float32, but centring subtracts -3e38 from 3e38.
    joints = person(12, seed=5)
    joints[:, SPINE_MID, 0] = -3e38
    joints[:, 0, 0] = 3e38
    lines = skeleton_lines(single(joints))
    lines = [
        line.replace("-300000000000000000000000000000000000000.000000", "-3e38") for line in lines
    ]
    path = write_text(root, "S003C001P002R001A005", lines)
    splits, report = load_ntu(root, benchmark="ntu60-xsub")
    assert (report.read, report.kept) == (3, 2)
    assert report.rejected == [f"{path}: centred coordinates are {BEYOND_FLOAT32}"]
    assert all(np.isfinite(arrays.data).all() for arrays in splits.values())
    with pytest.raises(SkeletonFileError, match=re.escape(f"{path}: centred coordinates")):
        load_ntu(root, benchmark="ntu60-xsub", on_error="raise")


# --- folders reached through symbolic links -----------------------------------------------------

posix_links = pytest.mark.skipif(os.name != "posix", reason="symbolic links need POSIX here")


@posix_links
def test_symlinked_folders_are_followed_once(root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "nturgb+d_skeletons_s018_to_s032"
    write_skeleton(elsewhere, "S003C001P002R001A005", single(person(12, seed=7)))
    (root / "second_archive").symlink_to(elsewhere, target_is_directory=True)
    (root / "part0" / "loop").symlink_to(root, target_is_directory=True)  # a link loop
    (root / "alias").symlink_to(root / "part1", target_is_directory=True)  # the same folder twice
    splits, report = load_ntu(root, benchmark="ntu60-xsub")
    assert (report.read, report.kept, report.rejected) == (3, 3, [])
    assert splits["train"].names == ["S001C001P001R001A001", "S003C001P002R001A005"]
    assert splits["test"].names == ["S002C002P003R002A002"]


@posix_links
def test_entries_that_are_not_skeleton_files_are_reported(root: Path, tmp_path: Path) -> None:
    broken = root / "S003C001P002R001A005.skeleton"
    broken.symlink_to(tmp_path / "unmounted" / "S003C001P002R001A005.skeleton")
    folder = root / "S003C001P002R001A006.skeleton"
    folder.mkdir()
    _, report = load_ntu(root, benchmark="ntu60-xsub")
    assert (report.read, report.kept) == (4, 2)
    assert report.rejected == [
        f"{broken}: a broken symbolic link to {tmp_path / 'unmounted' / broken.name}",
        f"{folder}: a folder, not a skeleton file",
    ]
    with pytest.raises(SkeletonFileError, match="a broken symbolic link"):
        load_ntu(root, benchmark="ntu60-xsub", on_error="raise")


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions, not root"
)
def test_a_folder_that_cannot_be_listed_is_reported(root: Path) -> None:
    locked = root / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        _, report = load_ntu(root, benchmark="ntu60-xsub")
    finally:
        locked.chmod(0o755)
    assert report.rejected == [f"{locked}: cannot list the folder (Permission denied)"]
