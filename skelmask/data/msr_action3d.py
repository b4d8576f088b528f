"""Reader for MSR Action3D skeletons (Li, Zhang and Liu, CVPRW 2010), cross-subject split.

Files ``aAA_sSS_eEE_skeleton3D.txt`` hold 20 rows of ``x y z c`` per frame (Kinect v1, the
dataset's own joint order, layout ``"msr-action3d"``). Action ``AA`` (1–20) becomes label
``AA - 1``; subject ``SS`` decides the split: odd subjects train, even subjects test (the standard
protocol, ``index.csv``'s ``split_xsub_odd_train`` column).

Preprocessing, applied to every sequence:

* **All-zero frames** (every joint at 0, untracked) are dropped and counted; every file that lost
  frames is listed in ``problems``. Dropping closes the gap in time.
* **Centring**: the hip centre (the layout's root, joint 6) of the first kept frame is subtracted
  from all kept frames, so every sequence starts with its hip centre at the origin while its
  translation over time is kept. Only ``x y z`` are kept; the confidence column is dropped.
* Sequences are zero-padded to the longest kept sequence of both splits (so train and test share
  ``T``); ``lengths`` holds the kept frame counts.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from skelmask.data.arrays import SkeletonArrays
from skelmask.data.errors import BEYOND_FLOAT32, to_float32
from skelmask.layouts import get_layout

__all__ = ["load_msr_action3d"]

_LAYOUT = "msr-action3d"
_NUM_CLASSES = 20
_NUM_JOINTS = 20
_FOLDER = "MSRAction3DSkeletonReal3D"
_FILE_NAME = re.compile(r"a(\d+)_s(\d+)_e(\d+)_skeleton3D\.txt")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class _SkippedFile(ValueError):
    """A file that cannot be used; the message is the reason, without the file name."""


def load_msr_action3d(
    root: str | Path, *, on_error: Literal["raise", "skip"] = "skip"
) -> tuple[SkeletonArrays, SkeletonArrays, list[str]]:
    """Loads MSR Action3D and splits it cross-subject (odd subjects train, even test).

    Args:
        root: Folder holding ``MSRAction3DSkeletonReal3D/`` (the skeleton files) and
            ``index.csv``, e.g. ``../shared/data/msr-action3d``. The split and labels come from
            the file names, which agree with ``index.csv``.
        on_error: What to do with a file that cannot be used (not a readable file, all frames
            zero, wrong number of values, non-numeric or non-finite text, coordinates beyond the
            float32 range, an action outside 1–20): ``"raise"`` a
            ``ValueError`` naming the file (and the line, where there is one), or ``"skip"`` it
            and list it in ``problems``.

    Returns:
        ``(train, test, problems)``: two ``SkeletonArrays`` with ``data`` of shape
        ``(N, 3, T, 20, 1)``, 20 classes, names the file stems (``"a01_s01_e01"``), sorted by
        file name; and one line per file that was skipped or lost all-zero frames, starting with
        the file name. On the published data that is 1 skipped file (``a13_s09_e02``, all zeros)
        and 19 files with dropped frames.

    Raises:
        FileNotFoundError: If ``root/MSRAction3DSkeletonReal3D`` does not exist or holds no
            skeleton files.
        ValueError: If ``on_error`` is not ``"raise"`` or ``"skip"``, or with ``"raise"``, for the
            first file that cannot be used.

    Examples:
        >>> from skelmask.data import load_msr_action3d
        >>> load_msr_action3d("no/such/folder")
        Traceback (most recent call last):
        ...
        FileNotFoundError: MSR Action3D skeleton folder not found: no/such/folder/MSRAction3DSkeletonReal3D
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    folder = Path(root) / _FOLDER
    if not folder.is_dir():
        raise FileNotFoundError(f"MSR Action3D skeleton folder not found: {folder}")
    paths = sorted(folder.glob("*_skeleton3D.txt"))
    if not paths:
        raise FileNotFoundError(f"no *_skeleton3D.txt files in {folder}")
    center = get_layout(_LAYOUT).root
    problems: list[str] = []
    samples: dict[str, list[tuple[str, int, npt.NDArray[np.float32]]]] = {"train": [], "test": []}
    for path in paths:
        try:
            action, subject = _parse_name(path)
            frames = _read_frames(path)  # (T, 20, 3)
            nonzero = np.any(frames != 0.0, axis=(1, 2))
            with np.errstate(over="ignore", invalid="ignore"):
                kept = frames[nonzero] - frames[nonzero][0, center]
            if not np.isfinite(kept).all():
                raise _SkippedFile(f"centred coordinates are {BEYOND_FLOAT32}")
        except _SkippedFile as error:
            if on_error == "raise":
                raise ValueError(f"{path}: {error}") from error.__cause__
            problems.append(f"{path.name}: {error}; file skipped")
            continue
        dropped = int(np.count_nonzero(~nonzero))
        if dropped:
            problems.append(
                f"{path.name}: dropped {dropped} of {len(frames)} frames that were all zeros"
            )
        split = "train" if subject % 2 == 1 else "test"
        samples[split].append((path.name.removesuffix("_skeleton3D.txt"), action - 1, kept))
    num_frames = max((len(s[2]) for group in samples.values() for s in group), default=1)
    train, test = (_to_arrays(samples[split], num_frames) for split in ("train", "test"))
    return train, test, problems


def _parse_name(path: Path) -> tuple[int, int]:
    """Action (1–20) and subject numbers from ``aAA_sSS_eEE_skeleton3D.txt``."""
    match = _FILE_NAME.fullmatch(path.name)
    if match is None:
        raise _SkippedFile("file name does not match aAA_sSS_eEE_skeleton3D.txt")
    action, subject = int(match[1]), int(match[2])
    if not 1 <= action <= _NUM_CLASSES:
        raise _SkippedFile(f"action {action} is outside 1–{_NUM_CLASSES}")
    return action, subject


def _read_frames(path: Path) -> npt.NDArray[np.float32]:
    """Frames ``(T, 20, 3)`` of one file; raises ``_SkippedFile`` naming what is wrong."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:  # e.g. a folder named like a data file
        raise _SkippedFile(f"cannot read the file ({error.strerror or error})") from error
    if not text.strip():
        raise _SkippedFile("file is empty")
    try:
        values = np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise _SkippedFile(_first_bad_line(text) or f"cannot parse the file ({error})") from error
    if values.shape[1] != 4:
        raise _SkippedFile(f"rows have {values.shape[1]} values; expected 4 (x y z c)")
    if len(values) % _NUM_JOINTS:
        raise _SkippedFile(
            f"{len(values)} rows is not a multiple of {_NUM_JOINTS} (one row per joint per frame)"
        )
    if not np.isfinite(values).all():
        raise _SkippedFile(_first_bad_line(text) or "non-finite value")
    frames = to_float32(values.reshape(-1, _NUM_JOINTS, 4)[..., :3])
    if not np.isfinite(frames).all():
        raise _SkippedFile(_first_bad_line(text, float32=True) or f"value {BEYOND_FLOAT32}")
    if not frames.any():
        raise _SkippedFile(f"all {len(frames)} frames are all zeros")
    return frames


def _first_bad_line(text: str, *, float32: bool = False) -> str | None:
    """The 1-based number of the first line that is not four finite numbers, and why.

    With ``float32``, an ``x y z`` beyond the float32 range counts as bad too.
    """
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 4:
            return f"line {number} has {len(fields)} values; expected 4 (x y z c)"
        for column, field in enumerate(fields):
            try:
                value = float(field)
            except ValueError:
                return f"line {number}: non-numeric value {field!r}"
            if not math.isfinite(value):
                return f"line {number}: non-finite value {field!r}"
            if float32 and column < 3 and abs(value) > _FLOAT32_MAX:
                return f"line {number}: value {field!r} is {BEYOND_FLOAT32}"
    return None


def _to_arrays(
    samples: list[tuple[str, int, npt.NDArray[np.float32]]], num_frames: int
) -> SkeletonArrays:
    data = np.zeros((len(samples), 3, num_frames, _NUM_JOINTS, 1), dtype=np.float32)
    for n, (_, _, frames) in enumerate(samples):
        data[n, :, : len(frames), :, 0] = frames.transpose(2, 0, 1)
    return SkeletonArrays(
        data=data,
        labels=np.array([label for _, label, _ in samples], dtype=np.int64),
        lengths=np.array([len(frames) for _, _, frames in samples], dtype=np.int64),
        layout=_LAYOUT,
        num_classes=_NUM_CLASSES,
        names=[name for name, _, _ in samples],
    )
