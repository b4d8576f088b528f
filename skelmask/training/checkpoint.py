"""Atomic checkpoint writing and verified loading with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from skelmask._atomic import atomic_write

__all__ = ["CheckpointError", "load_checkpoint", "load_weights", "save_checkpoint"]

# What torch.load raises on bad bytes: a truncated zip (RuntimeError), random bytes or a
# forbidden global under weights_only (UnpicklingError), an empty file (EOFError), text
# (KeyError from the legacy-format reader), a damaged legacy file (IndexError, TypeError).
_LOAD_ERRORS = (
    RuntimeError,
    pickle.UnpicklingError,
    EOFError,
    KeyError,
    ValueError,
    OSError,
    IndexError,
    TypeError,
    AttributeError,
)

# Every file torch.save writes (since PyTorch 1.6) is a zip archive with these first bytes.
_ZIP_MAGIC = b"PK\x03\x04"

# Mismatched entries listed in an error before the rest is summarised as a count.
_SHOWN = 5


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, truncated or not a checkpoint; names the file."""


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Writes ``state`` to ``path`` atomically.

    The bytes go to a temporary file in the same folder, are flushed and fsynced, and the file
    then replaces ``path`` with ``os.replace`` (atomic on POSIX and Windows). A crash at any point
    leaves either the previous checkpoint or the new one, never a partial file; the temporary
    file is removed when writing fails, and one left by a killed process is removed by the next
    save to the same path. The file gets the permissions the umask allows.

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
    with atomic_write(path) as handle:
        torch.save(state, handle)


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

    Before anything is unpickled, every entry of the zip archive is checked against its stored
    CRC-32 (``torch.load`` checks none, so a flipped byte in a tensor would otherwise load as a
    wrong weight). This reads the file once more; archives written with PyTorch's CRC
    computation switched off (every CRC zero) cannot be checked and are loaded as they are.

    Raises:
        CheckpointError: Naming ``path``, if the file is missing, unreadable, truncated or
            corrupt (a CRC-32 mismatch included), holds objects that ``weights_only`` refuses (e.g. an ``argparse.Namespace``),
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
    _verify_archive(path)
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


def load_weights(
    model: nn.Module,
    path: Path,
    *,
    model_config: Mapping[str, Any] | None = None,
    map_location: str | torch.device = "cpu",
    required: Iterable[str] = ("model",),
) -> dict[str, Any]:
    """Loads a checkpoint's ``"model"`` entry into ``model`` after checking that it fits.

    Args:
        model: Receives the weights (``load_state_dict``, strict).
        path: Checkpoint written by ``pretrain`` or ``save_checkpoint``.
        model_config: The configuration ``model`` was built from; when given and the
            checkpoint stores a ``"model_config"`` too, every key must agree. A key present on
            one side only agrees when its value is None or False (an option added after the
            checkpoint was written, left at "not given" or switched off).
        map_location: Where tensors are loaded.
        required: Keys the checkpoint must contain (``"model"`` is always required).

    Returns:
        The whole checkpoint dict (``"epoch"``, ``"config"``, … as written).

    Raises:
        CheckpointError: Naming ``path``: if it cannot be loaded (see ``load_checkpoint``), if
            its model configuration differs from ``model_config`` (each differing key with both
            values), or if its weights do not fit ``model`` (missing and unexpected names,
            and every shape mismatch with both shapes).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from skelmask.training import CheckpointError, load_weights, save_checkpoint
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder) / "ckpt.pt"
        ...     save_checkpoint(path, {"model": torch.nn.Linear(2, 3).state_dict()})
        ...     try:
        ...         load_weights(torch.nn.Linear(2, 4), path)
        ...     except CheckpointError as error:
        ...         print(str(error).split(": ", 1)[1])
        weight: checkpoint (3, 2), model (4, 2); bias: checkpoint (3,), model (4,)
    """
    path = Path(path)
    state = load_checkpoint(path, map_location, required=dict.fromkeys(("model", *required)))
    _check_model_config(path, state, model_config)
    _load_model_state(path, model, state["model"])
    return state


def _check_model_config(
    path: Path, state: Mapping[str, Any], expected: Mapping[str, Any] | None
) -> None:
    """Raises ``CheckpointError`` if ``state["model_config"]`` and ``expected`` differ.

    Nothing is compared when either is missing (checkpoints written before the configuration
    was stored still load; their weights' shapes are checked by ``_load_model_state``). A key
    absent on one side agrees with None or False on the other.
    """
    saved = state.get("model_config")
    if saved is None or expected is None:
        return
    differences = [
        f"{key}: checkpoint {_shown(saved, key)}, this run {_shown(expected, key)}"
        for key in model_config_differences(saved, expected)
    ]
    if differences:
        raise CheckpointError(
            f"checkpoint {path} was written for another model configuration: "
            + "; ".join(differences)
        )


def _load_model_state(path: Path, model: nn.Module, saved: Mapping[str, Any]) -> None:
    """``model.load_state_dict(saved)``, with names and shapes checked first.

    Raises:
        CheckpointError: Naming ``path`` and listing the missing and unexpected entries and the
            shape mismatches, instead of ``load_state_dict``'s ``RuntimeError``.
    """
    current = model.state_dict()
    missing = sorted(set(current) - set(saved))
    unexpected = sorted(set(saved) - set(current))
    problems = [
        f"{name}: checkpoint {tuple(saved[name].shape)}, model {tuple(value.shape)}"
        for name, value in current.items()
        if name in saved and tuple(getattr(saved[name], "shape", ())) != tuple(value.shape)
    ]
    if missing:
        problems.append(f"missing from the checkpoint: {_listed(missing)}")
    if unexpected:
        problems.append(f"not in the model: {_listed(unexpected)}")
    if problems:
        raise CheckpointError(
            f"checkpoint {path} does not fit this model (was it written with other options?): "
            + "; ".join(problems)
        )
    model.load_state_dict(saved)


def model_config_differences(saved: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """The keys, sorted, on which two model configurations disagree, by ``load_weights``'s rule.

    A key on both sides must be equal. A key on one side only (an option added after an older
    checkpoint was written) agrees when its value is None or False: the option's "not given"
    or a switch left off, which is what the older checkpoint ran with.

    Args:
        saved: A checkpoint's ``"model_config"``.
        expected: The configuration the model at hand was built from.

    Returns:
        The keys that disagree; empty when the configurations describe the same model.

    Examples:
        >>> from skelmask.training import model_config_differences
        >>> model_config_differences({"depth": 4}, {"depth": 4, "velocity_input": False})
        []
        >>> model_config_differences({"depth": 4}, {"depth": 8, "target": "motion"})
        ['depth', 'target']
    """
    differences = []
    for key in sorted(set(saved) | set(expected)):
        if key in saved and key in expected:
            agree = bool(saved[key] == expected[key])
        else:
            value = saved[key] if key in saved else expected[key]
            agree = value is None or value is False
        if not agree:
            differences.append(key)
    return differences


def _shown(config: Mapping[str, Any], key: str) -> str:
    return repr(config[key]) if key in config else "(absent)"


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown if len(names) <= _SHOWN else f"{shown} and {len(names) - _SHOWN} more"


def _verify_archive(path: Path) -> None:
    """Checks the CRC-32 of every entry of a zip checkpoint (``torch.load`` checks none)."""
    with path.open("rb") as handle:
        if handle.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
            return  # legacy (pre-zip) torch format or not a torch file: torch.load judges it
    try:
        with zipfile.ZipFile(path) as archive:
            if all(entry.CRC == 0 for entry in archive.infolist()):
                return  # written with CRC computation disabled: nothing to verify
            damaged = archive.testzip()
    # A damaged directory makes zipfile raise almost anything (BadZipFile, UnicodeDecodeError,
    # NotImplementedError, EOFError, OSError, ...): every one of them means a corrupt file.
    except Exception as error:
        raise CheckpointError(
            f"checkpoint {path} is corrupt, truncated or not a weights-only torch file: "
            f"its zip archive is damaged ({type(error).__name__}: {error})"
        ) from error
    if damaged is not None:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: the CRC-32 of its entry {damaged!r} does not match "
            "its bytes (a damaged copy or disk)"
        )
