from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skelmask.data.dataset import SkeletonDataset
from skelmask.data.errors import SkeletonFileError
from skelmask.data.formats import load_npz, load_pyskl

# --- MAMP / CTR-GCN npz ----------------------------------------------------------------------


def to_mamp(data: np.ndarray) -> np.ndarray:
    """``(N, 3, T, V, M)`` → MAMP's ``(N, T, M·V·3)``, written independently of the reader."""
    n, c, t, v, m = data.shape
    x = np.zeros((n, t, m * v * c), dtype=data.dtype)
    for person in range(m):
        for joint in range(v):
            for channel in range(c):
                x[:, :, (person * v + joint) * c + channel] = data[:, channel, :, joint, person]
    return x


def random_samples(
    rng: np.random.Generator, n: int, t: int, v: int, m: int
) -> tuple[np.ndarray, np.ndarray]:
    lengths = rng.integers(1, t + 1, size=n)
    data = rng.uniform(-1.0, 1.0, size=(n, 3, t, v, m)).astype(np.float32)
    data *= np.arange(t)[None, None, :, None, None] < lengths[:, None, None, None, None]
    return data, lengths


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 4),
    t=st.integers(1, 12),
    persons=st.integers(1, 2),
    layout=st.sampled_from(["nturgb+d", "coco", "nw-ucla"]),
    seed=st.integers(0, 2**16),
)
def test_npz_round_trip(
    tmp_path: Path, n: int, t: int, persons: int, layout: str, seed: int
) -> None:
    joints = {"nturgb+d": 25, "coco": 17, "nw-ucla": 20}[layout]
    rng = np.random.default_rng(seed)
    data, lengths = random_samples(rng, n, t, joints, persons)
    test_data, test_lengths = random_samples(rng, 2, t, joints, persons)
    labels = rng.integers(0, 7, size=n)
    path = tmp_path / f"rt_{seed}.npz"
    np.savez(
        path,
        x_train=to_mamp(data),
        y_train=np.eye(7)[labels],
        x_test=to_mamp(test_data),
        y_test=np.eye(7)[[6, 0]],
    )
    splits, report = load_npz(path, layout=layout)
    train = splits["train"]
    np.testing.assert_array_equal(train.data, data)
    assert train.data.dtype == np.float32
    np.testing.assert_array_equal(train.labels, labels)
    np.testing.assert_array_equal(train.lengths, lengths)
    assert (train.num_classes, train.layout) == (7, layout)
    assert train.names == [f"train_{i}" for i in range(n)]
    np.testing.assert_array_equal(splits["test"].data, test_data)
    np.testing.assert_array_equal(splits["test"].lengths, test_lengths)
    assert splits["test"].labels.tolist() == [6, 0]
    assert (report.read, report.kept, report.rejected) == (n + 2, n + 2, [])


def test_npz_lengths_count_inner_zero_frames(tmp_path: Path) -> None:
    x = np.zeros((1, 10, 150), dtype=np.float32)
    x[0, 2] = 1.0
    x[0, 6, 149] = -3.0  # frames 0, 1, 3-5 are all zeros but 6 is the last used
    path = tmp_path / "a.npz"
    np.savez(path, x_train=x, y_train=np.eye(3)[[1]])
    splits, _ = load_npz(path)
    assert set(splits) == {"train"}
    assert splits["train"].lengths.tolist() == [7]
    assert splits["train"].data[0, 2, 6, 24, 1] == -3.0


def bad_npz(tmp_path: Path) -> Path:
    x = np.ones((4, 5, 150), dtype=np.float32)
    x[1, 3, 7] = np.nan
    x[3] = 0.0
    y = np.eye(5)[[0, 1, 2, 3]]
    y[2] = [0.0, 1.0, 1.0, 0.0, 0.0]
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=x, y_train=y)
    return path


def test_npz_bad_samples_skip(tmp_path: Path) -> None:
    path = bad_npz(tmp_path)
    splits, report = load_npz(path, on_error="skip")
    assert splits["train"].names == ["train_0"]
    assert report.read == 4
    assert report.kept == 1
    assert report.rejected == [
        f"{path}: x_train[1]: non-finite value (NaN, inf, or beyond the float32 range)",
        f"{path}: y_train[2]: row is not one-hot: [0.0, 1.0, 1.0, 0.0, 0.0]",
        f"{path}: x_train[3]: sample is all zeros",
    ]


def test_npz_bad_sample_raise(tmp_path: Path) -> None:
    path = bad_npz(tmp_path)
    with pytest.raises(SkeletonFileError, match=r"x_train\[1\]: non-finite") as info:
        load_npz(path)
    assert info.value.path == str(path)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"x_train": np.ones((2, 5, 150))}, "y_train is missing"),
        ({"x_train": np.ones((2, 5, 150)), "y_train": np.eye(3)[:3]}, r"y_train must have shape"),
        ({"x_train": np.ones((2, 150)), "y_train": np.eye(3)[:2]}, r"x_train must have shape"),
        ({"x_train": np.ones((2, 5, 120)), "y_train": np.eye(3)[:2]}, "120 values per frame"),
        (
            {
                "x_train": np.ones((2, 5, 150)),
                "y_train": np.eye(3)[:2],
                "x_test": np.ones((1, 5, 150)),
                "y_test": np.eye(4)[:1],
            },
            "y_test has 4 classes but the other split has 3",
        ),
        (
            {"data": np.ones(3)},
            r"no x_train/y_train or x_test/y_test arrays; found keys \['data'\]",
        ),
    ],
)
def test_npz_bad_files_always_raise(
    tmp_path: Path, arrays: dict[str, np.ndarray], match: str
) -> None:
    path = tmp_path / "f.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    with pytest.raises(SkeletonFileError, match=match):
        load_npz(path, on_error="skip")


def test_npz_layout_must_agree(tmp_path: Path) -> None:
    path = tmp_path / "f.npz"
    np.savez(path, x_train=np.ones((1, 4, 150)), y_train=np.eye(2)[:1])
    with pytest.raises(SkeletonFileError, match="layout 'coco' with V = 17 joints"):
        load_npz(path, layout="coco")
    # 150 = 1 person × 50 joints would need a 50-joint layout; 20 joints × 3 × M never fits.
    with pytest.raises(SkeletonFileError, match="V = 20 joints"):
        load_npz(path, layout="nw-ucla")


def test_npz_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "f.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(SkeletonFileError, match=r"cannot read the \.npz file"):
        load_npz(path)


def test_npz_into_skeleton_dataset(tmp_path: Path) -> None:
    x = np.zeros((3, 40, 150), dtype=np.float32)
    x[:, :30] = np.random.default_rng(0).normal(size=(3, 30, 150))
    path = tmp_path / "f.npz"
    np.savez(path, x_train=x, y_train=np.eye(60)[[5, 6, 7]])
    arrays = load_npz(path)[0]["train"]
    clip, label = SkeletonDataset(arrays, window=16, seed=0)[1]
    assert clip.shape == (3, 16, 25, 2)
    assert int(label) == 6


# --- pyskl pickles ---------------------------------------------------------------------------


def annotation(
    frame_dir: str, label: int, keypoint: np.ndarray, score: np.ndarray | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "frame_dir": frame_dir,
        "label": label,
        "total_frames": keypoint.shape[1],
        "keypoint": keypoint,
    }
    if score is not None:
        result["keypoint_score"] = score
        result["img_shape"] = (1080, 1920)
    return result


def write_pickle(path: Path, content: object, protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    path.write_bytes(pickle.dumps(content, protocol=protocol))
    return path


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    persons=st.lists(st.integers(1, 3), min_size=1, max_size=4),
    frames=st.lists(st.integers(1, 9), min_size=4, max_size=4),
    protocol=st.integers(0, pickle.HIGHEST_PROTOCOL),
    dtype=st.sampled_from([np.float16, np.float32]),
    seed=st.integers(0, 2**16),
)
def test_pyskl_3d_round_trip(
    tmp_path: Path,
    persons: list[int],
    frames: list[int],
    protocol: int,
    dtype: type[np.floating[Any]],
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    keypoints = [
        rng.uniform(-2, 2, size=(m, t, 25, 3)).astype(dtype)
        for m, t in zip(persons, frames, strict=False)
    ]
    labels = rng.integers(0, 5, size=len(keypoints))
    ids = [f"S001C001P00{i}R001A001" for i in range(len(keypoints))]
    content = {
        "split": {"xsub_train": ids[::-1], "xsub_val": ids[:1]},
        "annotations": [
            annotation(i, int(label), kp)
            for i, label, kp in zip(ids, labels, keypoints, strict=True)
        ],
    }
    path = write_pickle(tmp_path / f"rt_{seed}.pkl", content, protocol)
    splits, report = load_pyskl(path, num_classes=5)
    assert set(splits) == {"xsub_train", "xsub_val"}
    train = splits["xsub_train"]
    assert train.names == ids[::-1]
    assert train.layout == "nturgb+d"
    assert train.num_classes == 5
    assert train.data.dtype == np.float32
    assert train.data.shape == (len(ids), 3, max(frames[: len(ids)]), 25, max(persons))
    for n, keypoint in enumerate(keypoints[::-1]):
        m, t = keypoint.shape[:2]
        np.testing.assert_array_equal(
            train.data[n, :, :t, :, :m], keypoint.astype(np.float32).transpose(3, 1, 2, 0)
        )
        assert not train.data[n, :, t:].any()
        assert not train.data[n, :, :, :, m:].any()
        assert train.lengths[n] == t
        assert train.labels[n] == labels[len(ids) - 1 - n]
    assert splits["xsub_val"].names == ids[:1]
    assert (report.read, report.kept, report.rejected) == (len(ids), len(ids) + 1, [])


@pytest.mark.parametrize(("joints", "layout"), [(17, "coco"), (18, "openpose")])
def test_pyskl_2d_with_scores(tmp_path: Path, joints: int, layout: str) -> None:
    rng = np.random.default_rng(1)
    keypoint = rng.uniform(0, 1000, size=(2, 6, joints, 2)).astype(np.float16)
    score = rng.uniform(0, 1, size=(2, 6, joints)).astype(np.float16)
    content = {"split": {"train": ["a"]}, "annotations": [annotation("a", 3, keypoint, score)]}
    splits, _ = load_pyskl(write_pickle(tmp_path / "2d.pkl", content), num_classes=4)
    arrays = splits["train"]
    assert arrays.layout == layout
    assert arrays.data.shape == (1, 3, 6, joints, 2)
    np.testing.assert_array_equal(
        arrays.data[0, :2], keypoint.astype(np.float32).transpose(3, 1, 2, 0)
    )
    np.testing.assert_array_equal(arrays.data[0, 2], score.astype(np.float32).transpose(1, 2, 0))
    assert arrays.num_classes == 4


def test_pyskl_explicit_layout_and_unknown_joint_count(tmp_path: Path) -> None:
    content = {
        "split": {"train": ["a"]},
        "annotations": [annotation("a", 0, np.ones((1, 4, 20, 3), np.float32))],
    }
    path = write_pickle(tmp_path / "v20.pkl", content)
    with pytest.raises(SkeletonFileError, match="cannot infer the layout of V = 20"):
        load_pyskl(path)
    assert load_pyskl(path, layout="nw-ucla")[0]["train"].layout == "nw-ucla"
    with pytest.raises(SkeletonFileError, match="'a': keypoint has V = 20 joints, expected 25"):
        load_pyskl(path, layout="nturgb+d")


def good(frame_dir: str, frames: int = 4) -> dict[str, Any]:
    return annotation(frame_dir, 0, np.ones((1, frames, 25, 3), np.float32))


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({**good("b"), "total_frames": 7}, "'b': keypoint has T = 4 frames but total_frames = 7"),
        ({**good("b"), "label": -1}, "'b': label must be an integer >= 0, got -1"),
        ({**good("b"), "label": "walk"}, "'b': label must be an integer"),
        ({**good("b"), "label": True}, "'b': label must be an integer"),
        ({k: v for k, v in good("b").items() if k != "label"}, "'b': missing label"),
        ({**good("b"), "keypoint": np.ones((4, 25, 3))}, r"'b': keypoint must be an array \(M, T"),
        (
            {**good("b"), "keypoint": np.full((1, 4, 25, 3), np.nan, np.float16)},
            "'b': keypoint or keypoint_score holds a non-finite value",
        ),
        (
            {**good("b"), "keypoint_score": np.ones((1, 4, 25))},
            "'b': keypoint_score given for keypoints with C = 3",
        ),
        (
            annotation("b", 0, np.ones((1, 4, 25, 2)), np.ones((1, 3, 25))),
            r"'b': keypoint_score must have shape \(M, T, V\) = \(1, 4, 25\)",
        ),
        (annotation("b", 0, np.ones((1, 4, 25, 2))), "'b': 2 channels C, but 'a' has 3"),
        (good("a"), "'a': frame_dir appears twice"),
        (None, r"annotations\[1\]: expected a dict, got NoneType"),
        ({**good("b"), "frame_dir": 5}, r"annotations\[1\]: frame_dir must be a string"),
    ],
)
def test_pyskl_bad_annotation_skip_and_raise(tmp_path: Path, bad: object, match: str) -> None:
    content = {"split": {"xsub_train": ["a", "c"]}, "annotations": [good("a"), bad, good("c")]}
    path = write_pickle(tmp_path / "bad.pkl", content)
    with pytest.raises(SkeletonFileError, match=match) as info:
        load_pyskl(path)
    assert info.value.path == str(path)
    splits, report = load_pyskl(path, on_error="skip")
    assert splits["xsub_train"].names == ["a", "c"]
    assert report.read == 3
    assert report.kept == 2
    assert len(report.rejected) == 1
    assert report.rejected[0].startswith(f"{path}: ")


def test_pyskl_listed_but_absent_and_unlisted(tmp_path: Path) -> None:
    content = {
        "split": {"xsub_train": ["a", "ghost"], "xsub_val": ["bad"]},
        "annotations": [good("a"), {**good("bad"), "label": -2}, good("spare")],
    }
    path = write_pickle(tmp_path / "absent.pkl", content)
    with pytest.raises(SkeletonFileError, match="'bad': label must be"):
        load_pyskl(path)
    splits, report = load_pyskl(path, on_error="skip")
    assert splits["xsub_train"].names == ["a"]
    assert len(splits["xsub_val"]) == 0
    assert splits["xsub_val"].data.shape[1:] == (3, 4, 25, 1)
    assert report.rejected == [
        f"{path}: 'bad': label must be an integer >= 0, got -2",
        f"{path}: 'ghost': listed in split 'xsub_train' but has no annotation",
        "spare: listed in no split; not used",
    ]
    del content["annotations"][1]
    path = write_pickle(tmp_path / "absent.pkl", content)
    with pytest.raises(SkeletonFileError, match="'ghost': listed in split 'xsub_train'"):
        load_pyskl(path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ([1, 2], "expected a dict with 'split' and 'annotations', got list"),
        ({"split": {}}, r"got dict with keys \['split'\]"),
        ({"split": {"a": "xyz"}, "annotations": []}, "'split' must map split names to lists"),
        ({"split": {}, "annotations": {"a": 1}}, "'annotations' must be a list"),
    ],
)
def test_pyskl_bad_structure(tmp_path: Path, content: object, match: str) -> None:
    path = write_pickle(tmp_path / "s.pkl", content)
    with pytest.raises(SkeletonFileError, match=match):
        load_pyskl(path, on_error="skip")


class _Exploit:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, ("touch pwned",))


def test_pyskl_refuses_code_execution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_pickle(tmp_path / "evil.pkl", {"split": {}, "annotations": [_Exploit()]})
    with pytest.raises(SkeletonFileError, match=r"global (posix|os)\.system is not allowed"):
        load_pyskl(path)
    assert not (tmp_path / "pwned").exists()


def test_pyskl_reads_numpy_1_pickles(tmp_path: Path) -> None:
    content = {"split": {"train": ["a"]}, "annotations": [good("a")]}
    data = pickle.dumps(content, protocol=2)
    assert b"numpy._core.multiarray" in data
    # numpy 1 wrote "numpy.core"; numpy 2 moved it to "numpy._core".
    path = tmp_path / "old.pkl"
    path.write_bytes(data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    arrays = load_pyskl(path)[0]["train"]
    np.testing.assert_array_equal(arrays.data, np.ones((1, 3, 4, 25, 1), np.float32))


def test_pyskl_truncated_file(tmp_path: Path) -> None:
    data = pickle.dumps({"split": {}, "annotations": [good("a")]})
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SkeletonFileError, match=r"not a valid pickle|cannot unpickle"):
        load_pyskl(path)


def test_pyskl_into_skeleton_dataset(tmp_path: Path) -> None:
    keypoint = np.random.default_rng(2).normal(size=(2, 30, 25, 3)).astype(np.float16)
    content = {"split": {"xsub_train": ["a"]}, "annotations": [annotation("a", 4, keypoint)]}
    arrays = load_pyskl(write_pickle(tmp_path / "d.pkl", content), num_classes=5)[0]["xsub_train"]
    clip, label = SkeletonDataset(arrays, window=16, seed=0)[0]
    assert clip.shape == (3, 16, 25, 2)
    assert int(label) == 4


# --- pyskl: labels, dtypes, frames ------------------------------------------------------------


def labelled(labels: list[int]) -> dict[str, Any]:
    names = [f"s{index}" for index in range(len(labels))]
    return {
        "split": {"train": names},
        "annotations": [
            annotation(name, label, np.full((1, 4, 25, 3), index, np.float32))
            for index, (name, label) in enumerate(zip(names, labels, strict=True))
        ],
    }


def test_pyskl_an_outlier_label_is_refused_with_the_range(tmp_path: Path) -> None:
    path = write_pickle(tmp_path / "outlier.pkl", labelled([0, 1, 2, 10**12, 1]))
    for on_error in ("raise", "skip"):
        with pytest.raises(SkeletonFileError) as info:
            load_pyskl(path, on_error=on_error)  # type: ignore[arg-type]
        assert str(info.value) == (
            f"{path}: labels must cover 0..1000000000000 without a gap when num_classes is not "
            "given (pyskl stores no class count, so it would be 1000000000001); the file holds "
            "4 distinct labels: 0-2, 1000000000000. Pass num_classes (skelmask prepare pyskl "
            "--num-classes) if it holds a subset of its classes"
        )
    splits, report = load_pyskl(path, num_classes=3, on_error="skip")
    assert splits["train"].names == ["s0", "s1", "s2", "s4"]
    assert splits["train"].num_classes == 3
    assert report.rejected == [
        f"{path}: 's3': label 1000000000000 is outside [0, num_classes) = [0, 3)"
    ]
    with pytest.raises(SkeletonFileError, match=r"'s3': label 1000000000000 is outside"):
        load_pyskl(path, num_classes=3)


def test_pyskl_labels_with_a_gap_need_num_classes(tmp_path: Path) -> None:
    path = write_pickle(tmp_path / "gap.pkl", labelled([0, 2, 5, 6]))
    with pytest.raises(SkeletonFileError, match=r"4 distinct labels: 0, 2, 5-6\. Pass num_classes"):
        load_pyskl(path)
    splits, _ = load_pyskl(path, num_classes=60)
    assert splits["train"].labels.tolist() == [0, 2, 5, 6]
    assert splits["train"].num_classes == 60
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="num_classes must be None or an int >= 1"):
            load_pyskl(path, num_classes=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("keypoint", "score", "dtype"),
    [
        (np.ones((1, 4, 25, 3), np.complex64), None, "complex64"),
        (np.full((1, 4, 25, 3), "1.0"), None, "<U3"),
        (np.full((1, 4, 25, 3), b"1"), None, "|S1"),
        (np.full((1, 4, 25, 3), 1.0, dtype=object), None, "object"),
        (np.ones((1, 4, 25, 3), bool), None, "bool"),
        (np.ones((1, 4, 25, 2), np.float16), np.ones((1, 4, 25), np.complex128), "complex128"),
    ],
)
def test_pyskl_keypoints_that_are_not_real_numbers_are_reported_per_sample(
    tmp_path: Path, keypoint: np.ndarray, score: np.ndarray | None, dtype: str
) -> None:
    bad = annotation("b", 0, keypoint, score)
    others = [
        annotation(name, 0, np.ones((1, 4, 25, keypoint.shape[3]), np.float32)) for name in "ac"
    ]
    if score is not None:
        for other in others:
            other["keypoint_score"] = np.ones((1, 4, 25), np.float32)
    content = {"split": {"train": ["a", "b", "c"]}, "annotations": [others[0], bad, others[1]]}
    path = write_pickle(tmp_path / "dtype.pkl", content)
    key = "keypoint" if score is None else "keypoint_score"
    message = f"{path}: 'b': {key} must hold real numbers, got dtype {dtype}"
    with pytest.raises(SkeletonFileError) as info:
        load_pyskl(path)
    assert str(info.value) == message
    splits, report = load_pyskl(path, on_error="skip")
    assert splits["train"].names == ["a", "c"]
    assert report.rejected == [message]


def test_pyskl_keypoints_beyond_float32_are_reported(tmp_path: Path) -> None:
    keypoint = np.ones((1, 4, 25, 3))
    keypoint[0, 2, 3, 1] = 1e39
    content = {
        "split": {"train": ["a", "b"]},
        "annotations": [good("a"), annotation("b", 0, keypoint)],
    }
    path = write_pickle(tmp_path / "big.pkl", content)
    splits, report = load_pyskl(path, on_error="skip")
    assert splits["train"].names == ["a"]
    expected = (
        f"{path}: 'b': keypoint or keypoint_score holds a non-finite value (NaN, inf, or beyond "
        "the float32 range)"
    )
    assert report.rejected == [expected]


def test_pyskl_max_frames_resamples_and_unlisted_samples_do_not_pad(tmp_path: Path) -> None:
    short = np.arange(4 * 25 * 3, dtype=np.float32).reshape(1, 4, 25, 3)
    long = np.arange(10, dtype=np.float16)[None, :, None, None] * np.ones(
        (1, 10, 25, 3), np.float16
    )
    spare = np.ones((1, 500, 25, 3), np.float16)  # in no split: must not set T
    content = {
        "split": {"train": ["a", "b"]},
        "annotations": [
            annotation("a", 0, short),
            annotation("b", 1, long),
            annotation("x", 0, spare),
        ],
    }
    path = write_pickle(tmp_path / "frames.pkl", content)
    splits, report = load_pyskl(path)
    assert splits["train"].data.shape == (2, 3, 10, 25, 1)
    splits, report = load_pyskl(path, max_frames=5)
    train = splits["train"]
    assert train.data.shape == (2, 3, 5, 25, 1)
    assert train.lengths.tolist() == [4, 5]
    np.testing.assert_array_equal(train.data[0, :, :4, :, 0], short[0].transpose(2, 0, 1))
    assert not train.data[0, :, 4:].any()
    # linspace(0, 9, 5) = 0, 2.25, 4.5, 6.75, 9 rounds to frames 0, 2, 4, 7, 9.
    np.testing.assert_array_equal(train.data[1, 0, :, 0, 0], [0, 2, 4, 7, 9])
    assert report.cleaned == ["b: resampled 10 frames to 5"]
    with pytest.raises(ValueError, match="max_frames must be None or an int >= 1, got 0"):
        load_pyskl(path, max_frames=0)


# --- damaged pickles found by fuzzing (tests/data/test_fuzz_readers.py) --------------------------


@pytest.mark.parametrize(
    ("data", "match"),
    [
        # A FRAME opcode claiming 2**64 - 1 bytes: OverflowError inside pickle.
        (b"\x80\x04\x95" + (2**64 - 1).to_bytes(8, "little") + b".", "FRAME length exceeds"),
        # _codecs.encode asked for an unknown codec: LookupError.
        (
            pickle.dumps({"split": {}, "annotations": [b"abc"]}, protocol=2).replace(
                b"latin1", b"matin1"
            ),
            r"not a valid pickle \(unknown encoding: matin1\)",
        ),
        # A persistent id: pickle's message spans two lines.
        (b"Pfoo\n.", "cannot unpickle: A load persistent id instruction"),
    ],
)
def test_pyskl_damaged_pickles_are_file_errors(tmp_path: Path, data: bytes, match: str) -> None:
    path = tmp_path / "damaged.pkl"
    path.write_bytes(data)
    with pytest.raises(SkeletonFileError, match=match) as info:
        load_pyskl(path, on_error="skip")
    assert info.value.path == str(path)
