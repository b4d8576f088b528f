from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skelmask.data.arrays import SkeletonArrays
from skelmask.data.errors import SkeletonFileError
from skelmask.data.prepared import (
    PREPARED_FORMAT,
    load_prepared,
    read_prepared_metadata,
    save_prepared,
)
from skelmask.data.synthetic import generate_synthetic_actions

NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=8,
)


@pytest.fixture(scope="module")
def arrays() -> SkeletonArrays:
    return generate_synthetic_actions(6, num_classes=3, max_frames=20, num_persons=2, seed=1)


def assert_same(loaded: SkeletonArrays, expected: SkeletonArrays) -> None:
    np.testing.assert_array_equal(np.asarray(loaded.data), expected.data)
    np.testing.assert_array_equal(loaded.labels, expected.labels)
    np.testing.assert_array_equal(loaded.lengths, expected.lengths)
    assert loaded.names == expected.names
    assert loaded.layout == expected.layout
    assert loaded.num_classes == expected.num_classes
    assert loaded.data.dtype == np.float32
    assert loaded.labels.dtype == np.int64


@st.composite
def small_arrays(draw: st.DrawFn) -> SkeletonArrays:
    num_samples = draw(st.integers(0, 3))
    channels = draw(st.integers(1, 3))
    frames = draw(st.integers(1, 5))
    persons = draw(st.integers(1, 2))
    num_classes = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    return SkeletonArrays(
        data=rng.normal(size=(num_samples, channels, frames, 17, persons)),
        labels=rng.integers(0, num_classes, size=num_samples),
        lengths=rng.integers(1, frames + 1, size=num_samples),
        layout="coco",
        num_classes=num_classes,
        names=draw(st.lists(NAMES, min_size=num_samples, max_size=num_samples)),
    )


@settings(max_examples=30, deadline=None)
@given(small_arrays(), st.dictionaries(NAMES, NAMES | st.integers(), max_size=3))
def test_round_trip_with_and_without_mmap(
    expected: SkeletonArrays, metadata: dict[str, object]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = save_prepared(Path(folder) / "split.npz", expected, metadata=metadata)
        for mmap in (True, False):
            assert_same(load_prepared(path, mmap=mmap), expected)
        header = read_prepared_metadata(path)
        assert header["metadata"] == metadata
        assert header["shape"] == list(expected.data.shape)
        assert header["layout"] == "coco"
        assert header["num_classes"] == expected.num_classes
        assert header["format"] == PREPARED_FORMAT


def test_mmap_maps_the_stored_member_read_only(tmp_path: Path, arrays: SkeletonArrays) -> None:
    path = save_prepared(tmp_path / "train.npz", arrays)
    loaded = load_prepared(path)
    mapped = loaded.data.base
    # SkeletonArrays keeps a view of the mapping: np.asarray(..., dtype=float32) did not copy.
    assert isinstance(mapped, np.memmap)
    assert Path(str(mapped.filename)) == path.resolve()
    assert mapped.offset % 64 == 0
    assert not loaded.data.flags.writeable
    np.testing.assert_array_equal(loaded.data, arrays.data)
    in_memory = load_prepared(path, mmap=False)
    assert not isinstance(in_memory.data.base, np.memmap)
    assert in_memory.data.flags.writeable


def test_every_member_is_stored_uncompressed(tmp_path: Path, arrays: SkeletonArrays) -> None:
    path = save_prepared(tmp_path / "train.npz", arrays)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == [
        "data.npy",
        "labels.npy",
        "lengths.npy",
        "names.npy",
        "header.npy",
    ]
    assert {info.compress_type for info in infos} == {zipfile.ZIP_STORED}


def test_plain_np_load_reads_the_file(tmp_path: Path, arrays: SkeletonArrays) -> None:
    arrays.names[0] = "名前-ü"
    path = save_prepared(tmp_path / "train.npz", arrays, metadata={"split": "train"})
    with np.load(path, allow_pickle=False) as archive:
        np.testing.assert_array_equal(archive["data"], arrays.data)
        np.testing.assert_array_equal(archive["labels"], arrays.labels)
        np.testing.assert_array_equal(archive["lengths"], arrays.lengths)
        assert archive["names"].tolist() == arrays.names
        header = json.loads(str(archive["header"]))
    assert header["metadata"] == {"split": "train"}
    assert header["layout"] == arrays.layout


def test_failed_write_leaves_no_file_and_keeps_the_old_one(
    tmp_path: Path, arrays: SkeletonArrays, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail_half_way(handle: IO[bytes], members: dict[str, Any]) -> None:
        handle.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    fresh = tmp_path / "fresh.npz"
    existing = save_prepared(tmp_path / "existing.npz", arrays.subset([0, 1]))
    before = existing.read_bytes()
    monkeypatch.setattr("skelmask.data.prepared._write_archive", fail_half_way)
    for path in (fresh, existing):
        with pytest.raises(OSError, match="disk full"):
            save_prepared(path, arrays)
    assert not fresh.exists()
    assert existing.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.npz"]
    monkeypatch.undo()
    assert len(load_prepared(existing)) == 2


def test_overwrite_replaces_the_file(tmp_path: Path, arrays: SkeletonArrays) -> None:
    path = save_prepared(tmp_path / "train.npz", arrays)
    save_prepared(path, arrays.subset([4]))
    assert load_prepared(path).names == [arrays.names[4]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.npz"]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.npz"
    with pytest.raises(FileNotFoundError, match=r"prepared file not found: .*absent\.npz"):
        load_prepared(path)
    with pytest.raises(FileNotFoundError, match=r"absent\.npz"):
        read_prepared_metadata(path)


def test_a_text_file_is_not_a_prepared_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.npz"
    path.write_text("hello")
    with pytest.raises(SkeletonFileError, match=r"notes\.npz: not a prepared skelmask file"):
        load_prepared(path)


@pytest.mark.parametrize("mmap", [True, False])
def test_truncated_file(tmp_path: Path, arrays: SkeletonArrays, mmap: bool) -> None:
    path = save_prepared(tmp_path / "train.npz", arrays)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SkeletonFileError, match=r"train\.npz: truncated or corrupt"):
        load_prepared(path, mmap=mmap)


def write_zip(
    path: Path, members: dict[str, np.ndarray[Any, Any] | bytes], compression: int
) -> None:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, value in members.items():
            with archive.open(f"{name}.npy", "w") as member:
                if isinstance(value, bytes):
                    member.write(value)
                else:
                    np.lib.format.write_array(member, value)


def members_of(arrays: SkeletonArrays, **header: object) -> dict[str, Any]:
    content = {
        "format": PREPARED_FORMAT,
        "format_version": 1,
        "layout": arrays.layout,
        "num_classes": arrays.num_classes,
        "metadata": {},
        **header,
    }
    return {
        "data": arrays.data,
        "labels": arrays.labels,
        "lengths": arrays.lengths,
        "names": np.array(arrays.names),
        "header": np.array(json.dumps(content)),
    }


def test_compressed_data_cannot_be_mapped(tmp_path: Path, arrays: SkeletonArrays) -> None:
    path = tmp_path / "packed.npz"
    write_zip(path, members_of(arrays), zipfile.ZIP_DEFLATED)
    with pytest.raises(
        SkeletonFileError, match=r"packed\.npz: data\.npy is compressed and cannot be memory-mapped"
    ):
        load_prepared(path)
    assert_same(load_prepared(path, mmap=False), arrays)


@pytest.mark.parametrize("mmap", [True, False])
def test_data_member_shorter_than_its_header(
    tmp_path: Path, arrays: SkeletonArrays, mmap: bool
) -> None:
    members = members_of(arrays)
    header = np.lib.format.header_data_from_array_1_0(arrays.data)
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, header)
    members["data"] = stream.getvalue() + arrays.data.tobytes()[:100]
    path = tmp_path / "short.npz"
    write_zip(path, members, zipfile.ZIP_STORED)
    match = r"short\.npz: truncated prepared file" if mmap else r"short\.npz: cannot read member"
    with pytest.raises(SkeletonFileError, match=match):
        load_prepared(path, mmap=mmap)


def test_an_ordinary_npz_is_not_a_prepared_file(tmp_path: Path, arrays: SkeletonArrays) -> None:
    path = tmp_path / "plain.npz"
    np.savez(path, data=arrays.data, labels=arrays.labels)
    with pytest.raises(
        SkeletonFileError, match=r"plain\.npz: not a prepared skelmask file: members"
    ):
        load_prepared(path)


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ({"format": "other"}, "not a prepared skelmask file: format is not 'skelmask-prepared'"),
        ({"format_version": 99}, "prepared format version 99 is newer"),
        ({"num_classes": "3"}, "header field 'num_classes' must be an int"),
        ({"layout": "no-such-layout"}, "inconsistent prepared file"),
        ({"num_classes": 1}, r"inconsistent prepared file: labels must lie in \[0, num_classes\)"),
    ],
)
def test_bad_header(
    tmp_path: Path, arrays: SkeletonArrays, header: dict[str, object], match: str
) -> None:
    path = tmp_path / "bad.npz"
    write_zip(path, members_of(arrays, **header), zipfile.ZIP_STORED)
    with pytest.raises(SkeletonFileError, match=match):
        load_prepared(path)


def test_header_that_is_not_json(tmp_path: Path, arrays: SkeletonArrays) -> None:
    members = members_of(arrays)
    members["header"] = np.array("{not json")
    path = tmp_path / "bad.npz"
    write_zip(path, members, zipfile.ZIP_STORED)
    with pytest.raises(SkeletonFileError, match=r"bad\.npz: header\.npy is not a JSON object"):
        read_prepared_metadata(path)


@pytest.mark.parametrize("mmap", [True, False])
def test_data_of_the_wrong_dtype(tmp_path: Path, arrays: SkeletonArrays, mmap: bool) -> None:
    members = members_of(arrays)
    members["data"] = arrays.data.astype(np.float64)
    path = tmp_path / "wide.npz"
    write_zip(path, members, zipfile.ZIP_STORED)
    with pytest.raises(SkeletonFileError, match=r"data\.npy must be float32 \(N, C, T, V, M\)"):
        load_prepared(path, mmap=mmap)


def test_metadata_must_be_json(tmp_path: Path, arrays: SkeletonArrays) -> None:
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        save_prepared(tmp_path / "x.npz", arrays, metadata={"when": object()})
    with pytest.raises(TypeError, match="metadata must be a dict or None, got list"):
        save_prepared(tmp_path / "x.npz", arrays, metadata=["split"])  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("mmap", "match"),
    [
        (True, r"data\.npy has no valid \.npy header"),
        (False, r"data\.npy has no valid \.npy header"),
    ],
)
def test_data_member_that_is_not_npy(
    tmp_path: Path, arrays: SkeletonArrays, mmap: bool, match: str
) -> None:
    members = members_of(arrays)
    members["data"] = b"this is not an npy file at all"
    path = tmp_path / "garbage.npz"
    write_zip(path, members, zipfile.ZIP_STORED)
    with pytest.raises(SkeletonFileError, match=rf"garbage\.npz: {match}"):
        load_prepared(path, mmap=mmap)
