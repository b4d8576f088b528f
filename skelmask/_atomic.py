"""Durable renames, shared by every writer that replaces a file atomically."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_folder"]


def fsync_folder(folder: Path) -> None:
    """Persists a rename inside ``folder``; folders cannot be opened for fsync on Windows, so skip."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
