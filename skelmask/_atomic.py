"""Atomic file replacement, shared by every writer of prepared files and checkpoints.

``atomic_write(path)`` yields a temporary file ``.<name>.<8 characters>.tmp`` in the destination's
folder; when the ``with`` block ends without an error the bytes are flushed and fsynced and the
file replaces ``path`` with ``os.replace`` (atomic on POSIX and Windows), so a crash at any point
leaves either the previous file or the new one. Two more guarantees:

* **Permissions follow the umask.** The temporary file is created with mode ``0o666`` and the
  process umask applies, as for any ``open(path, "w")`` (``tempfile.mkstemp`` would make it
  ``0o600`` whatever the umask, and the rename would keep that).
* **Stale temporary files are removed.** A writer killed with ``SIGKILL`` cannot remove its
  temporary file. Every write first deletes the temporary files of the same destination that no
  live writer holds: a writer holds an exclusive ``flock`` on its file from creation to rename,
  the kernel releases it when the process dies, so a file whose lock can be taken is stale. Only
  names of exactly this form next to the destination are considered. Where ``flock`` does not
  exist (Windows) deletion is simply attempted: Windows refuses to delete a file another process
  has open.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

if sys.platform != "win32":
    import fcntl

__all__ = ["atomic_write", "fsync_folder", "remove_stale_temporaries"]

# The random part: 8 characters of tempfile.mkstemp's alphabet (which earlier skelmask versions
# used), so their leftovers are recognised too; new names use hex digits, a subset of it.
_TEMPORARY = r"\.{name}\.[a-z0-9_]{{8}}\.tmp"
_CREATE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_ATTEMPTS = 100
# flock exists on POSIX; Windows has no advisory locks but refuses to delete or rename open files.
_FLOCK: bool = sys.platform != "win32"


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[IO[bytes]]:
    """Writes ``path`` atomically through a temporary file that the ``with`` block fills.

    See the module docstring for the guarantees. The parent folders are created. When the block
    raises, the temporary file is removed and ``path`` is left as it was.

    Args:
        path: Destination file.

    Yields:
        The temporary file, open for binary reading and writing (seekable).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with atomic_write(Path(folder) / "out.bin") as handle:
        ...         _ = handle.write(b"complete")
        ...     sorted(p.name for p in Path(folder).iterdir())
        ['out.bin']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    handle, temporary = _create_locked_temporary(path)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            if _FLOCK:
                # Renamed while the lock is held, so no cleaner can take it for a stale file.
                os.replace(temporary, path)
        if not _FLOCK:  # Windows cannot rename a file that is open
            os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_folder(path.parent)


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Deletes the temporary files of ``path`` left by writers that died (see the module docstring).

    Args:
        path: A destination file; only ``.<its name>.<8 characters>.tmp`` in its folder are
            considered.

    Returns:
        The files deleted.
    """
    path = Path(path)
    pattern = re.compile(_TEMPORARY.format(name=re.escape(path.name)))
    try:
        candidates = [entry for entry in path.parent.iterdir() if pattern.fullmatch(entry.name)]
    except FileNotFoundError:
        return []
    return [candidate for candidate in candidates if _remove_if_unlocked(candidate)]


def fsync_folder(folder: Path) -> None:
    """Persists a rename inside ``folder``; folders cannot be opened for fsync on Windows, so skip."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _create_locked_temporary(path: Path) -> tuple[IO[bytes], Path]:
    """A new temporary file for ``path``, created ``0o666 & ~umask`` and exclusively locked."""
    for _ in range(_ATTEMPTS):
        temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            descriptor = os.open(temporary, _CREATE_FLAGS, 0o666)
        except FileExistsError:
            continue
        handle = os.fdopen(descriptor, "w+b")
        if not _FLOCK:
            return handle, temporary
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        # A cleaner may have taken the file for stale between its creation and the lock; then
        # the name no longer leads to this file, and a fresh one is made.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(temporary).st_ino == os.fstat(descriptor).st_ino:
                return handle, temporary
        handle.close()
    raise FileExistsError(f"could not create a temporary file for {path} in {_ATTEMPTS} attempts")


def _remove_if_unlocked(candidate: Path) -> bool:
    """Deletes ``candidate`` unless a live writer holds it; True when it was deleted."""
    if not _FLOCK:
        try:
            os.unlink(candidate)  # refused while its writer has it open
        except OSError:
            return False
        return True
    try:
        descriptor = os.open(candidate, os.O_RDONLY)
    except OSError:  # gone already, or not ours to open
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(candidate).st_ino != os.fstat(descriptor).st_ino:
            return False  # renamed and replaced meanwhile: not the file we locked
        os.unlink(candidate)
    except OSError:  # held by a live writer, renamed meanwhile, or not ours to delete
        return False
    finally:
        os.close(descriptor)
    return True
