"""Reader for Northwestern-UCLA Multiview Action 3D (Wang et al., CVPR 2014), cross-view split.

The skeletons come as CTR-GCN's ``all_sqe`` JSON files, one per sequence, e.g.
``a01_s01_e00_v01.json`` = ``{"file_name": "a01_s01_e00_v01", "skeletons": T × 20 × [x, y, z],
"label": 1}``: 20 Kinect v1 joints (layout ``"nw-ucla"``), one person, label 1–10. The view
``VV`` comes from ``_vVV`` in ``file_name``; the standard cross-view protocol trains on views 1
and 2 and tests on view 3.

Preprocessing of every sequence:

* **Centring**: the hip centre (the layout's root, joint 0) of the first frame is subtracted from
  every frame, so translation over time is kept.
* **Resampling**: with ``max_frames``, a longer sequence is resampled uniformly to ``max_frames``
  frames (nearest frames) and listed in ``ReadReport.cleaned``.
* **Padding**: sequences are zero-padded to ``max_frames``, or without it to the longest
  sequence of both splits (so train and test share ``T``); ``lengths`` holds the kept frames.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from skelmask._checks import as_integer
from skelmask.data._parallel import map_files
from skelmask.data.arrays import SkeletonArrays
from skelmask.data.errors import (
    BEYOND_FLOAT32,
    OnError,
    ReadReport,
    SkeletonFileError,
    check_on_error,
    to_float32,
)
from skelmask.layouts import get_layout

__all__ = ["load_nw_ucla"]

_LAYOUT = "nw-ucla"
_NUM_CLASSES = 10
_FOLDER = "all_sqe"
_VIEW = re.compile(r"_v(\d+)")
_SPLIT_OF_VIEW = {1: "train", 2: "train", 3: "test"}


def load_nw_ucla(
    root: str | Path,
    *,
    max_frames: int | None = None,
    on_error: OnError = "skip",
    workers: int = 1,
    show_progress: bool = False,
) -> tuple[dict[str, SkeletonArrays], ReadReport]:
    """Loads NW-UCLA from ``all_sqe`` JSON files and splits it cross-view (views 1–2 / 3).

    Args:
        root: Folder holding the ``*.json`` files, or holding ``all_sqe/`` with them.
        max_frames: Frames per sample ``T``, at least 1; longer sequences are resampled.
            ``None`` pads to the longest sequence.
        on_error: For an unusable file (unreadable, not a file, invalid JSON, JSON nested too
            deeply or with an integer too large for a float, a missing key, skeletons that are
            not ``T × 20 × 3`` finite numbers, coordinates (raw or centred) beyond the float32
            range, a label outside 1–10, a file name without ``_vVV`` or with a view outside
            1–3):
            ``"raise"`` the ``SkeletonFileError``, or ``"skip"`` it and list it in the report.
        workers: Processes reading files in parallel, at least 1.
        show_progress: Show a progress bar (needs tqdm).

    Returns:
        ``({"train": ..., "test": ...}, report)``: ``SkeletonArrays`` with ``data`` of shape
        ``(N, 3, T, 20, 1)`` float32, 10 classes, layout ``"nw-ucla"``, names the ``file_name``
        fields, sorted by file name.

    Raises:
        FileNotFoundError: If the folder does not exist or holds no ``*.json`` file.
        ValueError: If an argument is invalid.
        SkeletonFileError: With ``on_error="raise"``, for the first unusable file.

    Examples:
        >>> import json, tempfile
        >>> from pathlib import Path
        >>> root = Path(tempfile.mkdtemp())
        >>> for name, label in (("a01_s01_e00_v01", 1), ("a02_s01_e00_v03", 2)):
        ...     record = {
        ...         "file_name": name,
        ...         "skeletons": [[[1.0, 2.0, 3.0]] * 20] * 5,
        ...         "label": label,
        ...     }
        ...     _ = (root / f"{name}.json").write_text(json.dumps(record))
        >>> splits, report = load_nw_ucla(root)
        >>> splits["train"].data.shape, splits["test"].labels.tolist(), report.kept
        ((1, 3, 5, 20, 1), [1], 2)
    """
    check_on_error(on_error)
    if max_frames is not None:
        max_frames = _check_frames(max_frames)
    root = Path(root)
    folder = root / _FOLDER if (root / _FOLDER).is_dir() else root
    if not folder.is_dir():
        raise FileNotFoundError(f"NW-UCLA folder not found: {folder}")
    paths = sorted(folder.glob("*.json"))
    if not paths:
        raise FileNotFoundError(f"no *.json files in {folder}")

    results = map_files(
        _read_sequence, paths, workers=workers, show_progress=show_progress, desc="NW-UCLA"
    )
    report = ReadReport(read=len(paths))
    samples: dict[str, list[_Sequence]] = {"train": [], "test": []}
    for result in results:
        if isinstance(result, _Failure):
            report.add_error(SkeletonFileError(result.path, result.reason), on_error)
            continue
        frames = result.frames
        if max_frames is not None and len(frames) > max_frames:
            index = np.linspace(0, len(frames) - 1, max_frames).round().astype(np.int64)
            report.cleaned.append(f"{result.name}: resampled {len(frames)} frames to {max_frames}")
            frames = frames[index]
        samples[_SPLIT_OF_VIEW[result.view]].append(result._replace(frames=frames))
    num_frames = max_frames or max(
        (len(sample.frames) for group in samples.values() for sample in group), default=1
    )
    report.kept = sum(len(group) for group in samples.values())
    return {split: _to_arrays(group, num_frames) for split, group in samples.items()}, report


def _check_frames(max_frames: object) -> int:
    number = as_integer(max_frames)
    if number is None or number < 1:
        raise ValueError(f"max_frames must be None or an int >= 1, got {max_frames!r}")
    return number


class _Sequence(NamedTuple):
    name: str
    label: int  # 0-based
    view: int
    frames: npt.NDArray[np.float32]  # (T, 20, 3), centred


class _Failure(NamedTuple):
    # Returned, not raised, by a worker so that one bad file does not stop the others.
    path: str
    reason: str


def _read_sequence(path: Path) -> _Sequence | _Failure:
    """One validated, centred sequence, or why the file cannot be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return _Failure(str(path), f"cannot read the file ({error})")
    try:
        record = json.loads(text)
    except RecursionError:
        return _Failure(str(path), "invalid JSON: nested too deeply")
    except ValueError as error:  # JSONDecodeError, or an integer literal of over 4300 digits
        return _Failure(str(path), f"invalid JSON ({error})")
    if not isinstance(record, dict):
        return _Failure(str(path), f"expected a JSON object, got {type(record).__name__}")
    missing = [key for key in ("file_name", "skeletons", "label") if key not in record]
    if missing:
        return _Failure(str(path), f"missing key(s) {', '.join(missing)}")
    name, label = record["file_name"], record["label"]
    if not isinstance(name, str):
        return _Failure(str(path), f"file_name must be a string, got {name!r}")
    view = _VIEW.search(name)
    if view is None:
        return _Failure(str(path), f"file_name {name!r} has no view (_vVV)")
    if int(view[1]) not in _SPLIT_OF_VIEW:
        return _Failure(str(path), f"{name}: view {int(view[1])} is not one of 1, 2, 3")
    if isinstance(label, bool) or not isinstance(label, int) or not 1 <= label <= _NUM_CLASSES:
        return _Failure(str(path), f"{name}: label {label!r} is outside 1..{_NUM_CLASSES}")
    joints = get_layout(_LAYOUT).num_joints
    try:
        frames = np.asarray(record["skeletons"], dtype=np.float64)
    except OverflowError:  # a JSON integer beyond float64, e.g. 10**400
        return _Failure(str(path), f"{name}: skeletons holds a number beyond the float64 range")
    except (TypeError, ValueError, RecursionError):
        return _Failure(str(path), f"{name}: skeletons is not a T × {joints} × 3 array of numbers")
    if frames.ndim != 3 or frames.shape[0] < 1 or frames.shape[1:] != (joints, 3):
        return _Failure(
            str(path), f"{name}: skeletons has shape {frames.shape}; expected (T, {joints}, 3)"
        )
    if not np.isfinite(frames).all():
        return _Failure(str(path), f"{name}: skeletons holds a non-finite value")
    if not np.isfinite(to_float32(frames)).all():
        return _Failure(str(path), f"{name}: skeletons holds a value {BEYOND_FLOAT32}")
    centred = to_float32(frames - frames[0, get_layout(_LAYOUT).root])
    if not np.isfinite(centred).all():
        return _Failure(str(path), f"{name}: centred coordinates are {BEYOND_FLOAT32}")
    return _Sequence(name, label - 1, int(view[1]), centred)


def _to_arrays(samples: Sequence[_Sequence], num_frames: int) -> SkeletonArrays:
    data = np.zeros((len(samples), 3, num_frames, get_layout(_LAYOUT).num_joints, 1), np.float32)
    for n, sample in enumerate(samples):
        data[n, :, : len(sample.frames), :, 0] = sample.frames.transpose(2, 0, 1)
    return SkeletonArrays(
        data=data,
        labels=np.array([sample.label for sample in samples], dtype=np.int64),
        lengths=np.array([len(sample.frames) for sample in samples], dtype=np.int64),
        layout=_LAYOUT,
        num_classes=_NUM_CLASSES,
        names=[sample.name for sample in samples],
    )
