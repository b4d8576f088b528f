"""Prepared files and npz archives that lie, hold NaN, or change while a run reads them."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

import skelmask.data.arrays
from skelmask.data._npy import npy_member
from skelmask.data.arrays import SkeletonArrays
from skelmask.data.dataset import SkeletonDataset
from skelmask.data.errors import SkeletonFileError
from skelmask.data.formats import load_npz
from skelmask.data.prepared import load_prepared, save_prepared
from skelmask.data.synthetic import generate_synthetic_actions

ADVICE = ("allow_pickle", "weights_only")


def arrays_with(bad: dict[int, float], num_samples: int = 6) -> SkeletonArrays:
    arrays = generate_synthetic_actions(num_samples, num_classes=3, max_frames=12, seed=2)
    data = np.array(arrays.data)
    for index, value in bad.items():
        data[index, 1, 3, 7, 0] = value
    return SkeletonArrays(
        data, arrays.labels, arrays.lengths, arrays.layout, arrays.num_classes, arrays.names
    )


# --- NaN and inf are found when a file is loaded, once ------------------------------------------


@pytest.mark.parametrize("mmap", [True, False])
def test_nan_in_a_prepared_file_is_named_at_load(tmp_path: Path, mmap: bool) -> None:
    arrays = arrays_with({2: np.nan, 4: -np.inf})
    path = save_prepared(tmp_path / "train.npz", arrays)
    with pytest.raises(SkeletonFileError) as info:
        load_prepared(path, mmap=mmap)
    assert str(info.value) == (
        f"{path}: data holds NaN or inf in 2 of 6 samples: index 2 ({arrays.names[2]!r}), "
        f"4 ({arrays.names[4]!r})"
    )
    loaded = load_prepared(path, mmap=mmap, check_finite=False)
    with pytest.raises(ValueError, match=r"data holds NaN or inf in 2 of 6 samples: index 2 "):
        SkeletonDataset(loaded, window=8)
    clean = loaded.subset([0, 1, 3, 5])
    assert len(SkeletonDataset(clean, window=8)) == 4


def test_many_bad_samples_are_counted(tmp_path: Path) -> None:
    arrays = arrays_with(dict.fromkeys(range(13), np.nan), num_samples=14)
    with pytest.raises(ValueError, match=r"in 13 of 14 samples: index 0 .*, 9 \(.*\) and 3 more$"):
        arrays.check_finite()


def test_the_scan_runs_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    scan = skelmask.data.arrays._non_finite_samples

    def counting(data: np.ndarray) -> np.ndarray:
        calls.append(len(data))
        return scan(data)

    monkeypatch.setattr(skelmask.data.arrays, "_non_finite_samples", counting)
    path = save_prepared(tmp_path / "train.npz", arrays_with({}))
    loaded = load_prepared(path)
    SkeletonDataset(loaded, window=8, train=True)
    SkeletonDataset(loaded, window=8, train=False)
    SkeletonDataset(loaded.subset([1, 2]), window=8)
    assert calls == [6]
    in_memory = arrays_with({})
    SkeletonDataset(in_memory, window=8)
    SkeletonDataset(in_memory, window=8)
    assert calls == [6, 6]


@settings(max_examples=25, deadline=None)
@given(
    num_samples=st.integers(0, 9),
    bad=st.dictionaries(st.integers(0, 8), st.sampled_from([np.nan, np.inf, -np.inf]), max_size=4),
    scan_bytes=st.sampled_from([1, 5000, 1 << 26]),
)
def test_the_chunked_scan_finds_exactly_the_bad_samples(
    num_samples: int, bad: dict[int, float], scan_bytes: int
) -> None:
    bad = {index: value for index, value in bad.items() if index < num_samples}
    data = np.zeros((num_samples, 3, 4, 20, 1), dtype=np.float32)
    for index, value in bad.items():
        data[index, 2, 3, 19, 0] = value
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(skelmask.data.arrays, "_SCAN_BYTES", scan_bytes)
        found = skelmask.data.arrays._non_finite_samples(data)
    assert found.tolist() == sorted(bad)


# --- a prepared file rewritten during a run -----------------------------------------------------


def test_a_rewritten_file_is_refused_where_it_is_reopened(tmp_path: Path) -> None:
    path = save_prepared(tmp_path / "train.npz", arrays_with({}))
    dataset = SkeletonDataset(load_prepared(path), window=8, train=False)
    unchanged = pickle.loads(pickle.dumps(dataset))
    torch.testing.assert_close(unchanged[0], dataset[0], rtol=0, atol=0)
    payload = pickle.dumps(dataset)
    # A new version with other coordinates under the same name, as a re-run of prepare writes.
    other = generate_synthetic_actions(6, num_classes=3, max_frames=12, seed=9)
    save_prepared(path, other)
    reopened = pickle.loads(payload)  # as a spawned DataLoader worker does
    with pytest.raises(SkeletonFileError, match=r"train\.npz: changed since it was loaded"):
        reopened[0]
    torch.testing.assert_close(dataset[0], unchanged[0], rtol=0, atol=0)  # the old mapping


def test_a_file_rewritten_in_place_is_refused(tmp_path: Path) -> None:
    path = save_prepared(tmp_path / "train.npz", arrays_with({}))
    payload = pickle.dumps(SkeletonDataset(load_prepared(path), window=8))
    inode = path.stat().st_ino
    with path.open("r+b") as handle:  # same size, same inode, new bytes (e.g. `cp` over it)
        handle.seek(-64, os.SEEK_END)
        handle.write(bytes(64))
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))
    assert path.stat().st_ino == inode
    with pytest.raises(SkeletonFileError, match="changed since it was loaded"):
        pickle.loads(payload)[0]


def test_a_file_replaced_while_it_is_loaded_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_prepared(tmp_path / "train.npz", arrays_with({}))
    read_archive = skelmask.data.prepared._read_archive

    def replace_after_reading_labels(*args: object) -> object:
        result = read_archive(*args)  # type: ignore[arg-type]
        save_prepared(path, generate_synthetic_actions(6, num_classes=3, max_frames=12, seed=9))
        return result

    monkeypatch.setattr(skelmask.data.prepared, "_read_archive", replace_after_reading_labels)
    with pytest.raises(SkeletonFileError, match="changed since it was loaded"):
        load_prepared(path)


def test_spawned_data_loader_workers_report_a_rewritten_file(tmp_path: Path) -> None:
    path = save_prepared(tmp_path / "train.npz", arrays_with({}))
    dataset = SkeletonDataset(load_prepared(path), window=8, train=False)
    loader = DataLoader(dataset, batch_size=2, num_workers=1, multiprocessing_context="spawn")
    save_prepared(path, generate_synthetic_actions(6, num_classes=3, max_frames=12, seed=9))
    with pytest.raises(Exception, match="changed since it was loaded") as info:
        next(iter(loader))
    assert "exited unexpectedly" not in str(info.value)


# --- crafted .npy headers, random bytes, foreign files ------------------------------------------


def npy_bytes(shape: tuple[int, ...], payload: bytes, descr: str = "<f4") -> bytes:
    stream = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(stream, header)
    return stream.getvalue() + payload


def write_members(path: Path, members: dict[str, bytes], compression: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, content in members.items():
            archive.writestr(f"{name}.npy", content)
    return path


def array_bytes(array: np.ndarray) -> bytes:
    stream = io.BytesIO()
    np.lib.format.write_array(stream, array)
    return stream.getvalue()


LYING_SHAPES = {
    "huge": ((10**12, 300, 150), "claims shape (1000000000000, 300, 150) of float32"),
    "huge product": ((2**62, 2**62, 150), "claims shape"),
    "negative": ((-1, 300, 150), "negative shape (-1, 300, 150)"),
}


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("case", list(LYING_SHAPES))
def test_npz_with_a_lying_header_is_a_clear_error(
    tmp_path: Path, case: str, compression: int
) -> None:
    shape, message = LYING_SHAPES[case]
    members = {
        "x_train": npy_bytes(shape, bytes(4 * 150 * 2)),
        "y_train": array_bytes(np.eye(3)[:2]),
    }
    path = write_members(tmp_path / "crafted.npz", members, compression)
    with pytest.raises(SkeletonFileError, match=r"x_train\.npy") as info:
        load_npz(path, on_error="skip")
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("case", list(LYING_SHAPES))
def test_prepared_file_with_a_lying_header_is_a_clear_error(
    tmp_path: Path, case: str, mmap: bool
) -> None:
    arrays = arrays_with({})
    path = save_prepared(tmp_path / "train.npz", arrays)
    with zipfile.ZipFile(path) as archive:
        members = {name.removesuffix(".npy"): archive.read(name) for name in archive.namelist()}
    shape = LYING_SHAPES[case][0]
    members["data"] = npy_bytes((*shape, 25, 1), arrays.data.tobytes())
    write_members(path, members, zipfile.ZIP_STORED)
    with pytest.raises(SkeletonFileError) as info:
        load_prepared(path, mmap=mmap)
    text = str(info.value)
    assert text.startswith(f"{path}: ")
    assert "data.npy" in text
    assert ("negative shape" in text) == (case == "negative")


def test_member_sizes_beyond_what_the_archive_can_hold_are_refused(tmp_path: Path) -> None:
    path = write_members(
        tmp_path / "bomb.npz", {"x_train": npy_bytes((2, 3, 150), bytes(3600))}, zipfile.ZIP_STORED
    )
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("x_train.npy")
        info.file_size = 10**15  # what a crafted central directory may claim
        with (
            pytest.raises(SkeletonFileError, match="corrupt: it claims 1000000000000000 bytes"),
            npy_member(path, archive, "x_train.npy"),
        ):
            pass
        info.file_size, info.compress_size = 3600, 10**15
        with (
            pytest.raises(SkeletonFileError, match="truncated or corrupt: it would end at byte"),
            npy_member(path, archive, "x_train.npy"),
        ):
            pass


def random_bytes(size: int) -> bytes:
    return np.random.default_rng(size).integers(0, 256, size=size, dtype=np.uint8).tobytes()


FOREIGN = {
    "random bytes": lambda path: path.write_bytes(random_bytes(4096)),
    "a pickle": lambda path: path.write_bytes(pickle.dumps({"x_train": [1, 2, 3]})),
    "a torch checkpoint": lambda path: torch.save({"model": torch.ones(3)}, path),
    "object arrays": lambda path: np.savez(
        path,
        x_train=np.array([[[1.0]]], dtype=object),
        y_train=np.array([[1.0]], dtype=object),
        data=np.array([1.0], dtype=object),
        labels=np.array([0], dtype=object),
        lengths=np.array([1], dtype=object),
        names=np.array(["a"], dtype=object),
        header=np.array("{}", dtype=object),
    ),
    "empty": lambda path: path.write_bytes(b""),
}


@pytest.mark.parametrize("case", list(FOREIGN))
def test_foreign_files_are_refused_without_pickle_advice(tmp_path: Path, case: str) -> None:
    path = tmp_path / "file.npz"
    FOREIGN[case](path)
    for read in (lambda: load_npz(path, on_error="skip"), lambda: load_prepared(path)):
        with pytest.raises(SkeletonFileError) as info:
            read()
        text = str(info.value)
        assert text.startswith(f"{path}: ")
        assert not any(advice in text for advice in ADVICE), text
    if case == "object arrays":
        with pytest.raises(SkeletonFileError, match="holds Python objects"):
            load_npz(path)


@pytest.mark.parametrize(
    "header",
    [
        b"{'descr': '<f8', 'fortran_order': False,('shape': (4, 12, 150), }",  # tokenize error
        b"{'descr': [1, 2], 'fortran_order': False, 'shape': (4, 12, 150), }",  # TypeError
        b"{'descr': '<f8', 'fortran_order': False, 'shape': (4, 12, 150)",  # unclosed
    ],
)
def test_npy_headers_that_numpy_cannot_parse_are_file_errors(tmp_path: Path, header: bytes) -> None:
    padded = header + b" " * (-(len(header) + 11) % 64) + b"\n"
    member = b"\x93NUMPY\x01\x00" + len(padded).to_bytes(2, "little") + padded + bytes(64)
    path = write_members(
        tmp_path / "bad.npz",
        {"x_train": member, "y_train": array_bytes(np.eye(3)[:2])},
        zipfile.ZIP_STORED,
    )
    with pytest.raises(SkeletonFileError, match=r"x_train\.npy has no valid \.npy header"):
        load_npz(path, on_error="skip")


def test_a_data_member_offset_outside_the_file_is_a_file_error(tmp_path: Path) -> None:
    path = save_prepared(tmp_path / "train.npz", arrays_with({}))
    data = bytearray(path.read_bytes())
    # The central directory entry of data.npy (the first member) stores its local header offset
    # at byte 42 of the entry; point it past the end of the file.
    entry = data.rfind(b"PK\x01\x02", 0, data.find(b"data.npy", len(data) // 2) + 1)
    data[entry + 42 : entry + 46] = (len(data) + 10).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(SkeletonFileError) as info:
        load_prepared(path)
    assert str(info.value).startswith(f"{path}: ")
