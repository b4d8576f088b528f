"""Atomic checkpoint writing and validated loading with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from skelmask._atomic import fsync_folder

__all__ = ["CheckpointError", "load_checkpoint", "save_checkpoint"]

# What torch.load raises on bad bytes: a truncated zip (RuntimeError), random bytes or a
# forbidden global under weights_only (UnpicklingError), an empty file (EOFError), text
# (KeyError from the legacy-format reader).
_LOAD_ERRORS = (RuntimeError, pickle.UnpicklingError, EOFError, KeyError, ValueError, OSError)


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, truncated or not a checkpoint; names the file."""


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Writes ``state`` to ``path`` atomically.

    The bytes go to a temporary file in the same folder, are flushed and fsynced, and the file
    then replaces ``path`` with ``os.replace`` (atomic on POSIX and Windows). A crash at any point
    leaves either the previous checkpoint or the new one, never a partial file, and the
    temporary file is removed when writing fails.

    Args:
        path: Destination; its parent folders are created.
        state: Tensors, numbers, strings, ``None`` and (nested) lists/tuples/dicts of them, so
            that ``load_checkpoint`` can read it with ``weights_only=True``.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from skelmask.training import load_checkpoint, save_checkpoint
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     save_checkpoint(Path(folder) / "ckpt.pt", {"model": {"w": torch.ones(2)}})
        ...     load_checkpoint(Path(folder) / "ckpt.pt")["model"]["w"]
        tensor([1., 1.])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_folder(path.parent)


def load_checkpoint(
    path: Path,
    map_location: str | torch.device = "cpu",
    *,
    required: Iterable[str] = ("model",),
) -> dict[str, Any]:
    """Loads a checkpoint written by ``save_checkpoint`` with ``weights_only=True``.

    Args:
        path: Checkpoint file.
        map_location: Where tensors are loaded.
        required: Keys the checkpoint dict must contain.

    Returns:
        The checkpoint dict.

    Raises:
        CheckpointError: Naming ``path``, if the file is missing, unreadable, truncated or
            corrupt, holds objects that ``weights_only`` refuses (e.g. an ``argparse.Namespace``),
            is not a dict, or lacks a ``required`` key.

    Examples:
        >>> from pathlib import Path
        >>> from skelmask.training import CheckpointError, load_checkpoint
        >>> try:
        ...     load_checkpoint(Path("no-such-file.pt"))
        ... except CheckpointError as error:
        ...     print(error)
        checkpoint no-such-file.pt does not exist
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except _LOAD_ERRORS as error:
        raise CheckpointError(
            f"checkpoint {path} is corrupt, truncated or not a weights-only torch file: {error}"
        ) from error
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a dict")
    missing = [key for key in required if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks the keys {missing}")
    return state
