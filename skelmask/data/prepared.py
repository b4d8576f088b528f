"""Prepared files: one split of a dataset in one uncompressed ``.npz``, memory-mappable.

A prepared file is a zip archive with every member stored uncompressed (``ZIP_STORED``), so it is
also an ordinary ``.npz`` that ``np.load`` reads. Its members:

* ``data.npy``: float32 ``(N, C, T, V, M)`` coordinates, written first and 64-byte aligned in the
  file, so ``load_prepared`` can map it with ``numpy.memmap`` instead of reading it;
* ``labels.npy``: int64 ``(N,)``; ``lengths.npy``: int64 ``(N,)`` valid frames per sample;
* ``names.npy``: unicode ``(N,)`` sample identifiers;
* ``header.npy``: a 0-d unicode array holding a JSON object (see ``read_prepared_metadata``).

Files are written atomically: the archive goes to a temporary file in the destination folder, is
flushed and fsynced, and then replaces the destination with ``os.replace``, so a crash leaves
either the previous file or the new one, never a partial file. The file's permissions follow the
umask, and temporary files left by a killed writer are removed by the next write of the same
file.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import zipfile
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from skelmask._atomic import atomic_write
from skelmask._checks import check_flags
from skelmask.data._npy import ZIP_ERRORS, npy_member, read_array, read_npy_header
from skelmask.data.arrays import SkeletonArrays
from skelmask.data.errors import SkeletonFileError

__all__ = ["PREPARED_FORMAT", "load_prepared", "read_prepared_metadata", "save_prepared"]

PREPARED_FORMAT = "skelmask-prepared"
_FORMAT_VERSION = 1
_MEMBERS = ("data", "labels", "lengths", "names", "header")
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
# Extra-field id of Android's zipalign padding record: readers skip unknown ids, and this one says
# what the bytes are for.
_ALIGNMENT_EXTRA_ID = 0xD935
_ZIP64_LOCAL_EXTRA_SIZE = 20
_ALIGNMENT = 64


def save_prepared(
    path: str | Path, arrays: SkeletonArrays, *, metadata: dict[str, object] | None = None
) -> Path:
    """Writes ``arrays`` to one prepared file, atomically.

    Args:
        path: Destination, usually ending in ``.npz``; its parent folders are created and an
            existing file is replaced only once the new one is complete.
        arrays: The samples; ``data`` float32 ``(N, C, T, V, M)``.
        metadata: JSON-serialisable facts to keep with the data (dataset, benchmark, split, the
            reader's report), returned by ``read_prepared_metadata`` under ``"metadata"``.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        TypeError: If ``metadata`` is not a dict or is not JSON-serialisable.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from skelmask.data.prepared import load_prepared, save_prepared
        >>> from skelmask.data.synthetic import generate_synthetic_actions
        >>> arrays = generate_synthetic_actions(3, num_classes=2, max_frames=10)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = save_prepared(
        ...         Path(folder) / "train.npz", arrays, metadata={"split": "train"}
        ...     )
        ...     loaded = load_prepared(path)
        ...     loaded.data.shape, bool((loaded.data == arrays.data).all())
        ((3, 3, 10, 25, 1), True)
    """
    path = Path(path)
    header = _header_json(arrays, metadata)
    members: dict[str, npt.NDArray[Any]] = {
        "data": np.ascontiguousarray(arrays.data, dtype=np.float32),
        "labels": np.asarray(arrays.labels, dtype=np.int64),
        "lengths": np.asarray(arrays.lengths, dtype=np.int64),
        "names": np.array(arrays.names, dtype=np.str_).reshape(len(arrays)),
        "header": np.array(header, dtype=np.str_),
    }
    with atomic_write(path) as handle:
        _write_archive(handle, members)
    return path


def load_prepared(
    path: str | Path, *, mmap: bool = True, check_finite: bool = True
) -> SkeletonArrays:
    """Reads a prepared file, mapping its coordinates from disk by default.

    The file's size, modification time and inode are recorded when it is opened; a
    ``SkeletonDataset`` over the mapped arrays checks them whenever a ``DataLoader`` worker
    started with ``spawn`` or ``forkserver`` re-opens the file, so a file rewritten during a run
    is an error there instead of new coordinates read with the old labels.

    Args:
        path: A file written by ``save_prepared``.
        mmap: Map ``data.npy`` read-only with ``numpy.memmap``, so that only the frames a
            dataset indexes are ever read (NTU-120 need not fit in memory); ``False`` reads
            everything into memory.
        check_finite: Scan the coordinates once for NaN and inf (``SkeletonArrays.check_finite``,
            vectorised in chunks; it reads a mapped file through once). ``False`` skips the scan
            here; ``SkeletonDataset`` then runs it when it is built.

    Returns:
        The samples. With ``mmap``, ``arrays.data`` is a read-only float32 ``(N, C, T, V, M)``
        view whose ``base`` is the ``numpy.memmap``; labels, lengths and names are in
        memory.

    Raises:
        TypeError: If ``mmap`` or ``check_finite`` is not a bool.
        FileNotFoundError: If ``path`` does not exist.
        SkeletonFileError: Naming the file, if it is not a zip archive (or is truncated), lacks a
            member or the header, was written by a newer format version, holds arrays of the
            wrong dtype or shape, a member whose ``.npy`` header is invalid, claims more bytes
            than are stored or holds Python objects, (with ``mmap``) stores ``data.npy``
            compressed, changed while it was being read, or (with ``check_finite``) holds NaN
            or inf, naming the samples by index and name.

    Examples:
        >>> from skelmask.data.prepared import load_prepared
        >>> load_prepared("no/such/train.npz")
        Traceback (most recent call last):
        ...
        FileNotFoundError: prepared file not found: no/such/train.npz
    """
    check_flags(mmap=mmap, check_finite=check_finite)
    path = Path(path)
    small = ("labels", "lengths", "names")
    if not path.is_file():
        raise FileNotFoundError(f"prepared file not found: {path}")
    identity = FileIdentity.of(path.stat())
    header, archive_members = _read_archive(path, small if mmap else ("data", *small))
    data = _map_data(path, identity) if mmap else archive_members["data"]
    try:
        arrays = SkeletonArrays(
            data=data,
            labels=archive_members["labels"],
            lengths=archive_members["lengths"],
            layout=str(header["layout"]),
            num_classes=_header_int(path, header, "num_classes"),
            names=archive_members["names"].tolist(),
        )
    except (ValueError, TypeError, KeyError) as error:
        raise SkeletonFileError(path, f"inconsistent prepared file: {error}") from error
    if check_finite:
        try:
            arrays.check_finite()
        except ValueError as error:
            raise SkeletonFileError(path, str(error)) from error
    return arrays


class FileIdentity(NamedTuple):
    """What tells a file from a rewritten one: size, modification time (ns) and inode."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, status: os.stat_result) -> FileIdentity:
        return cls(status.st_size, status.st_mtime_ns, status.st_ino)


class PreparedMap(np.memmap):
    """A ``numpy.memmap`` of ``data.npy`` that remembers the identity of the file it maps."""

    identity: FileIdentity | None = None


def map_prepared_data(
    filename: str | Path,
    *,
    offset: int,
    shape: tuple[int, ...],
    dtype: np.dtype[Any] | str,
    fortran_order: bool,
    identity: FileIdentity | None,
) -> PreparedMap:
    """Maps ``data.npy`` of a prepared file read-only, refusing a file that has changed.

    Args:
        filename: The prepared file.
        offset: Byte offset of the array in the file.
        shape: ``(N, C, T, V, M)``.
        dtype: float32.
        fortran_order: The member's memory order.
        identity: The file as it was when its labels were read, or ``None`` to accept any.

    Raises:
        SkeletonFileError: If the file's size, modification time or inode differ from
            ``identity``.
    """
    with open(filename, "rb") as handle:  # np.memmap maps this very handle
        current = FileIdentity.of(os.fstat(handle.fileno()))
        if identity is not None and current != identity:
            raise SkeletonFileError(
                filename,
                f"changed since it was loaded (size {identity.size} -> {current.size} bytes, "
                f"modified {identity.mtime_ns} -> {current.mtime_ns} ns, inode {identity.inode} "
                f"-> {current.inode}): it was rewritten while it was being read, so its "
                "coordinates no longer match the labels already loaded. Reload it (restart the "
                "run), and write new prepared files under new names while a run reads them",
            )
        mapping = PreparedMap(
            handle,
            dtype=np.dtype(dtype),
            mode="r",
            offset=offset,
            shape=shape,
            order="F" if fortran_order else "C",
        )
    mapping.identity = current
    return mapping


def read_prepared_metadata(path: str | Path) -> dict[str, object]:
    """The header of a prepared file, without reading its arrays.

    Args:
        path: A file written by ``save_prepared``.

    Returns:
        A dict with ``"format"`` (``"skelmask-prepared"``), ``"format_version"``,
        ``"skelmask_version"`` (of the writer), ``"layout"``, ``"num_classes"``, ``"shape"``
        (``[N, C, T, V, M]``) and ``"metadata"`` (what was passed to ``save_prepared``, or
        ``{}``).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        SkeletonFileError: If it is not a prepared file (see ``load_prepared``).
    """
    header, _ = _read_archive(Path(path), ())
    return header


def _header_json(arrays: SkeletonArrays, metadata: dict[str, object] | None) -> str:
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    header = {
        "format": PREPARED_FORMAT,
        "format_version": _FORMAT_VERSION,
        # Imported when called: the package root imports this module while it initialises.
        "skelmask_version": str(importlib.import_module("skelmask").__version__),
        "layout": arrays.layout,
        "num_classes": arrays.num_classes,
        "shape": list(arrays.data.shape),
        "metadata": metadata,
    }
    try:
        return json.dumps(header, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"metadata must be JSON-serialisable: {error}") from error


def _write_archive(handle: IO[bytes], members: dict[str, npt.NDArray[Any]]) -> None:
    """Writes ``members`` as stored ``.npy`` files, with ``data``'s array 64-byte aligned."""
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in members.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            if name == "data":
                info.extra = _alignment_extra(handle.tell(), len(info.filename))
            # force_zip64 keeps the local header's size the same before and after the sizes are
            # known, which the alignment above relies on; np.savez does the same.
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _alignment_extra(header_offset: int, name_length: int) -> bytes:
    """An extra field that puts the member's bytes (an aligned ``.npy``) on a 64-byte boundary."""
    start = header_offset + _LOCAL_HEADER.size + name_length + _ZIP64_LOCAL_EXTRA_SIZE
    padding = -start % _ALIGNMENT
    if padding == 0:
        return b""
    if padding < 4:  # an extra record needs 4 bytes for its id and size
        padding += _ALIGNMENT
    return struct.pack("<HH", _ALIGNMENT_EXTRA_ID, padding - 4) + bytes(padding - 4)


def _read_archive(
    path: Path, wanted: tuple[str, ...]
) -> tuple[dict[str, object], dict[str, npt.NDArray[Any]]]:
    """The parsed header and the ``wanted`` members, after checking that every member exists."""
    if not path.is_file():
        raise FileNotFoundError(f"prepared file not found: {path}")
    try:
        archive = zipfile.ZipFile(path)
    except (ValueError, *ZIP_ERRORS) as error:
        raise SkeletonFileError(path, _not_a_zip_reason(path, error)) from error
    with archive:
        present = set(archive.namelist())
        missing = [f"{name}.npy" for name in _MEMBERS if f"{name}.npy" not in present]
        if missing:
            raise SkeletonFileError(
                path, f"not a prepared skelmask file: members {missing} are missing"
            )
        header = _parse_header(path, _read_member(path, archive, "header"))
        members = {name: _read_member(path, archive, name) for name in wanted}
    return header, members


def _read_member(path: Path, archive: zipfile.ZipFile, name: str) -> npt.NDArray[Any]:
    """One member, its header checked before anything is allocated (``data`` also for dtype)."""
    member = f"{name}.npy"
    with npy_member(path, archive, member) as (header, stream):
        if name == "data":
            _check_data(path, header.dtype, header.shape)
        return read_array(path, member, header, stream)


def _not_a_zip_reason(path: Path, error: Exception) -> str:
    with path.open("rb") as handle:
        starts_like_zip = handle.read(4) == _LOCAL_HEADER_SIGNATURE
    if starts_like_zip:
        return f"truncated or corrupt prepared file: the zip archive cannot be read ({error})"
    return f"not a prepared skelmask file: not a zip archive ({error})"


def _parse_header(path: Path, array: npt.NDArray[Any]) -> dict[str, object]:
    try:
        header = json.loads(str(array.item()))
    except (ValueError, TypeError) as error:
        raise SkeletonFileError(path, f"header.npy is not a JSON object: {error}") from error
    if not isinstance(header, dict) or header.get("format") != PREPARED_FORMAT:
        raise SkeletonFileError(
            path, f"not a prepared skelmask file: format is not {PREPARED_FORMAT!r}"
        )
    version = header.get("format_version")
    if not isinstance(version, int) or version > _FORMAT_VERSION:
        raise SkeletonFileError(
            path,
            f"prepared format version {version!r} is newer than this skelmask reads "
            f"({_FORMAT_VERSION}); upgrade skelmask",
        )
    return header


def _header_int(path: Path, header: dict[str, object], key: str) -> int:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SkeletonFileError(path, f"header field {key!r} must be an int, got {value!r}")
    return value


def _check_data(path: Path, dtype: np.dtype[Any], shape: tuple[int, ...]) -> None:
    if dtype != np.dtype("<f4") or len(shape) != 5:
        raise SkeletonFileError(
            path, f"data.npy must be float32 (N, C, T, V, M), got {dtype} of shape {shape}"
        )


def _map_data(path: Path, identity: FileIdentity) -> npt.NDArray[np.float32]:
    """Maps the stored ``data.npy`` member read-only, after checking it is complete."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("data.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        raise SkeletonFileError(
            path,
            "data.npy is compressed and cannot be memory-mapped; load it with mmap=False or "
            "rewrite the file with save_prepared",
        )
    file_size = path.stat().st_size
    if not 0 <= info.header_offset < file_size:
        raise SkeletonFileError(
            path, f"truncated or corrupt prepared file: data.npy starts at {info.header_offset}"
        )
    with path.open("rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(_LOCAL_HEADER.size)
        if len(local) < _LOCAL_HEADER.size or local[:4] != _LOCAL_HEADER_SIGNATURE:
            raise SkeletonFileError(path, "truncated or corrupt prepared file: bad zip header")
        name_length, extra_length = _LOCAL_HEADER.unpack(local)[-2:]
        member_start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        handle.seek(member_start)
        header = read_npy_header(path, "data.npy", handle)
        data_start = handle.tell()
    _check_data(path, header.dtype, header.shape)
    needed = data_start + header.nbytes
    available = min(member_start + info.file_size, file_size)
    if needed > available:
        raise SkeletonFileError(
            path,
            f"truncated prepared file: data.npy needs {header.nbytes} bytes for shape "
            f"{header.shape}, only {max(available - data_start, 0)} are stored",
        )
    if needed == data_start:  # an empty array: nothing to map, and mmap rejects length 0
        return np.zeros(header.shape, dtype=np.float32)
    return map_prepared_data(
        path,
        offset=data_start,
        shape=header.shape,
        dtype=header.dtype,
        fortran_order=header.fortran_order,
        identity=identity,
    )
