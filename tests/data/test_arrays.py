from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from skelmask.data import SkeletonArrays


def make(**overrides: Any) -> SkeletonArrays:
    fields: dict[str, Any] = {
        "data": np.ones((3, 3, 10, 20, 1)),
        "labels": np.array([0, 1, 2]),
        "lengths": np.array([10, 4, 1]),
        "layout": "msr-action3d",
        "num_classes": 3,
        "names": ["a", "b", "c"],
    }
    fields.update(overrides)
    return SkeletonArrays(**fields)


def test_converts_dtypes() -> None:
    arrays = make(labels=np.array([0, 1, 2], dtype=np.int32), lengths=[10, 4, 1])
    assert arrays.data.dtype == np.float32
    assert arrays.labels.dtype == np.int64
    assert arrays.lengths.dtype == np.int64
    assert len(arrays) == 3


def test_subset_keeps_everything_aligned() -> None:
    arrays = make(data=np.arange(3.0)[:, None, None, None, None] * np.ones((3, 3, 10, 20, 1)))
    part = arrays.subset(np.array([2, 0]))
    assert part.names == ["c", "a"]
    assert part.labels.tolist() == [2, 0]
    assert part.lengths.tolist() == [1, 10]
    assert part.data[:, 0, 0, 0, 0].tolist() == [2.0, 0.0]
    assert part.data.shape[2] == 10


def test_empty_dataset_is_allowed() -> None:
    arrays = make(data=np.zeros((0, 3, 5, 20, 1)), labels=[], lengths=[], names=[])
    assert len(arrays) == 0


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (
            {"data": np.ones((3, 10, 20, 1))},
            r"data must have 5 dimensions \(N, C, T, V, M\), got 4",
        ),
        ({"data": np.ones((3, 3, 0, 20, 1))}, "at least one channel, frame, joint and person"),
        ({"labels": np.array([0, 1])}, r"labels must have shape \(N,\) = \(3,\), got \(2,\)"),
        (
            {"labels": np.array([0, 1, 3])},
            r"labels must lie in \[0, num_classes\) = \[0, 3\), got \[3\]",
        ),
        ({"labels": np.array([-1, 1, 2])}, r"labels must lie in .* got \[-1\]"),
        ({"lengths": np.array([10, 0, 1])}, r"lengths must lie in \[1, T\] = \[1, 10\], got \[0\]"),
        (
            {"lengths": np.array([11, 4, 1])},
            r"lengths must lie in \[1, T\] = \[1, 10\], got \[11\]",
        ),
        ({"lengths": np.array([[10, 4, 1]])}, r"lengths must have shape \(N,\)"),
        ({"num_classes": 0}, "num_classes must be at least 1, got 0"),
        ({"data": np.ones((3, 3, 10, 25, 1))}, "V = 25 joints but layout 'msr-action3d' has 20"),
        ({"names": ["a"]}, "names must have N = 3 entries, got 1"),
    ],
)
def test_rejects_bad_fields(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make(**overrides)


def test_num_classes_takes_numpy_integers_but_not_bools() -> None:
    # np.int64 (e.g. labels.max() + 1) was refused as "not an int"; it is stored as an int.
    arrays = make(num_classes=np.int64(3))
    assert (type(arrays.num_classes), arrays.num_classes) == (int, 3)
    for flag in (True, np.bool_(True)):
        with pytest.raises(TypeError, match="num_classes must be an int, got bool"):
            make(num_classes=flag)


def test_rejects_non_integer_labels() -> None:
    with pytest.raises(TypeError, match="labels must hold integers, got dtype float64"):
        make(labels=np.array([0.0, 1.0, 2.0]))


def test_rejects_unknown_layout() -> None:
    with pytest.raises(KeyError, match="unknown layout 'kinect'"):
        make(layout="kinect")
