"""Reading ``.npy`` members of ``.npz`` (zip) archives without trusting what they claim.

``numpy.load`` allocates whatever shape a member's header claims (a crafted 200-byte file can ask
for exabytes: ``MemoryError``, or ``OverflowError`` for a negative shape), falls back to
unpickling for bytes that are not a zip archive, and answers both object arrays and random
bytes with advice to pass ``allow_pickle=True``. Here every header is parsed first and checked
against the bytes the archive actually stores (and, for deflated members, against what deflate
can expand them to), object dtypes are refused, the array is allocated only then and filled in
bounded chunks, so a bad file is a ``SkeletonFileError`` naming the file and the member.
"""

from __future__ import annotations

import contextlib
import math
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from skelmask.data.errors import SkeletonFileError

__all__ = [
    "ZIP_ERRORS",
    "NpyHeader",
    "npy_member",
    "open_archive",
    "read_array",
    "read_npy_header",
    "read_rows",
]

# zlib's deflate expands at most 1032:1 (its technical limit); a larger claim is a lie.
_DEFLATE_MAX_RATIO = 1032
_SLACK = 1 << 16
_READ_CHUNK = 1 << 24  # bytes per readinto call: ZipExtFile reads through a temporary bytes
# What zipfile raises on damaged archives: RuntimeError for a member flagged as encrypted,
# NotImplementedError for an unknown compression method.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    RuntimeError,
    NotImplementedError,
)
_HEADER_ERRORS = (
    ValueError,
    SyntaxError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    RecursionError,
    tokenize.TokenError,
)


class NpyHeader(NamedTuple):
    """What a ``.npy`` header claims, after ``read_npy_header`` checked it."""

    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype[Any]

    @property
    def nbytes(self) -> int:
        """Bytes of the array, in exact integer arithmetic."""
        return math.prod(self.shape) * self.dtype.itemsize


def open_archive(path: str | Path) -> zipfile.ZipFile:
    """Opens a zip archive; ``SkeletonFileError`` when it is not one or cannot be read."""
    try:
        return zipfile.ZipFile(path)
    except (ValueError, *ZIP_ERRORS) as error:
        raise SkeletonFileError(path, f"cannot read the .npz file: {error}") from error


def read_npy_header(path: str | Path, name: str, stream: IO[bytes]) -> NpyHeader:
    """Parses the ``.npy`` header at the start of ``stream``, leaving it at the array's bytes.

    Raises:
        SkeletonFileError: Naming ``path`` and ``name``, if the header is malformed, claims a
            negative dimension or a dtype holding Python objects (which only unpickling reads).
    """
    readers = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }
    try:
        version = np.lib.format.read_magic(stream)
        if version not in readers:
            raise ValueError(f".npy format version {version} is not 1.0 or 2.0")
        shape, fortran_order, dtype = readers[version](stream)
    # numpy parses the header with tokenize and ast.literal_eval: garbage raises any of these.
    except (*_HEADER_ERRORS, *ZIP_ERRORS) as error:
        raise SkeletonFileError(path, f"{name} has no valid .npy header: {error}") from error
    if dtype.hasobject:
        raise SkeletonFileError(
            path, f"{name} holds Python objects (dtype {dtype}), which skelmask never unpickles"
        )
    if any(dimension < 0 for dimension in shape):
        raise SkeletonFileError(path, f"{name} has no valid .npy header: negative shape {shape}")
    return NpyHeader(tuple(shape), bool(fortran_order), dtype)


@contextlib.contextmanager
def npy_member(
    path: str | Path, archive: zipfile.ZipFile, name: str
) -> Iterator[tuple[NpyHeader, IO[bytes]]]:
    """The checked header of member ``name`` and a stream at its first array byte.

    Errors while the ``with`` block reads the stream (corrupt deflate data, a CRC mismatch, a
    truncated archive) become ``SkeletonFileError`` naming the member.

    Raises:
        SkeletonFileError: If the member's sizes are inconsistent with the archive or with each
            other, its header is invalid (see ``read_npy_header``), or it holds fewer bytes
            than its header claims.
    """
    info = archive.getinfo(name)
    _check_sizes(path, archive, info)
    try:
        with archive.open(info) as stream:
            header = read_npy_header(path, name, stream)
            stored = info.file_size - stream.tell()
            if header.nbytes > stored:
                raise SkeletonFileError(
                    path,
                    f"cannot read member {name}: truncated or corrupt: its header claims shape "
                    f"{header.shape} of {header.dtype} ({header.nbytes} bytes), but only "
                    f"{max(stored, 0)} bytes are stored",
                )
            yield header, stream
    except ZIP_ERRORS as error:
        raise SkeletonFileError(path, f"cannot read member {name}: {error}") from error


def read_rows(
    path: str | Path, name: str, header: NpyHeader, stream: IO[bytes], rows: int
) -> npt.NDArray[Any]:
    """The next ``rows`` entries along axis 0 of a C-order member (all of it for 0-d arrays).

    Raises:
        MemoryError: Naming the member and the size, if the rows cannot be allocated.
        SkeletonFileError: If the stream ends early.
    """
    row_shape = header.shape[1:]
    shape = (rows, *row_shape) if header.shape else ()
    try:
        array = np.empty(shape, dtype=header.dtype)
    except MemoryError as error:
        size = math.prod(shape) * header.dtype.itemsize
        raise MemoryError(
            f"{path}: {name} of shape {header.shape} needs {size / 2**30:.1f} GiB for {rows} "
            "rows, more than is available"
        ) from error
    if array.nbytes:
        _fill(path, name, stream, array.reshape(-1).view(np.uint8))
    return array


def read_array(
    path: str | Path, name: str, header: NpyHeader, stream: IO[bytes]
) -> npt.NDArray[Any]:
    """The whole member, in its stored order (C or Fortran)."""
    if not header.fortran_order:
        return read_rows(path, name, header, stream, header.shape[0] if header.shape else 1)
    flat = NpyHeader((math.prod(header.shape),), False, header.dtype)
    return read_rows(path, name, flat, stream, flat.shape[0]).reshape(header.shape, order="F")


def _fill(path: str | Path, name: str, stream: IO[bytes], buffer: npt.NDArray[np.uint8]) -> None:
    view = memoryview(buffer)  # type: ignore[arg-type]
    filled = 0
    while filled < len(view):
        count = stream.readinto(view[filled : filled + _READ_CHUNK])  # type: ignore[attr-defined]
        if not count:
            raise SkeletonFileError(
                path, f"cannot read member {name}: it ends after {filled} of {len(view)} bytes"
            )
        filled += count


def _check_sizes(path: str | Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Refuses sizes that the archive's own bytes cannot back, before anything is allocated."""
    archive_size = Path(str(archive.filename)).stat().st_size if archive.filename else None
    if archive_size is not None and info.header_offset + info.compress_size > archive_size:
        raise SkeletonFileError(
            path,
            f"cannot read member {info.filename}: truncated or corrupt: it would end at byte "
            f"{info.header_offset + info.compress_size} of a {archive_size}-byte file",
        )
    if info.compress_type == zipfile.ZIP_STORED:
        limit = info.compress_size
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        limit = info.compress_size * _DEFLATE_MAX_RATIO + _SLACK
    else:
        return
    if info.file_size > limit:
        raise SkeletonFileError(
            path,
            f"cannot read member {info.filename}: corrupt: it claims {info.file_size} bytes "
            f"from {info.compress_size} stored ones",
        )
