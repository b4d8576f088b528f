"""Peak memory of the container readers: about one copy of the output, not three.

tracemalloc sees numpy's data buffers, so the peak traced while a reader runs is what it
allocated; the bounds below are the output (and, for a pickle, the unpickled file, which no
reader can avoid) plus a few read chunks, far below the earlier 3x.
"""

from __future__ import annotations

import pickle
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import skelmask.data.formats
from skelmask.data.formats import load_npz, load_pyskl

CHUNK = 1 << 16


def traced_peak(read: Callable[[], Any]) -> tuple[int, Any]:
    tracemalloc.start()
    try:
        result = read()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, result


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_npz_peak_is_one_output_plus_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dtype: type[np.floating[Any]]
) -> None:
    monkeypatch.setattr(skelmask.data.formats, "_NPZ_CHUNK_BYTES", CHUNK)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 100, 150)).astype(dtype)
    x[7, 3, 2] = np.nan  # a rejected sample: the output is shrunk in place
    y = np.eye(10)[rng.integers(0, 10, 120)]
    path = tmp_path / "big.npz"
    np.savez(path, x_train=x, y_train=y)
    row = x[0].nbytes
    del x
    peak, (splits, report) = traced_peak(lambda: load_npz(path, on_error="skip"))
    output = splits["train"].data.nbytes
    assert report.kept == 119
    # The output, y, and a handful of chunk-sized temporaries (raw rows, their float32 copy,
    # masks, the kept rows): each at most one chunk plus one row.
    assert peak <= output + y.nbytes + 6 * (CHUNK + row)


def test_pyskl_peak_is_the_file_plus_one_output(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    annotations = [
        {
            "frame_dir": f"s{index}",
            "label": index % 5,
            "total_frames": int(frames),
            "keypoint": rng.normal(size=(2, frames, 25, 3)).astype(np.float16),
        }
        for index, frames in enumerate(rng.integers(40, 80, size=200))
    ]
    names = [annotation["frame_dir"] for annotation in annotations]
    content = {"split": {"train": names}, "annotations": annotations}
    path = tmp_path / "big.pkl"
    path.write_bytes(pickle.dumps(content))
    largest_sample = max(annotation["keypoint"].nbytes for annotation in annotations) * 2
    del annotations, content
    peak, (splits, _) = traced_peak(lambda: load_pyskl(path))
    output = splits["train"].data.nbytes
    # The unpickled file (about its size), the output and one sample's temporaries; the float32
    # copy of every sample that the reader used to hold would add twice the file.
    assert peak <= path.stat().st_size + output + 4 * largest_sample + (1 << 20)
