"""Reader for PKU-MMD (Liu et al., 2017), phases 1 and 2, cut into trimmed action samples.

A phase's ``root`` folder holds

* ``skeleton/<video>.txt``: one line per frame of an untrimmed video, 150 floats = 2 bodies ×
  25 joints × ``x y z`` in the NTU RGB+D joint order (layout ``"nturgb+d"``); the second body
  is all zeros when absent. A line of 75 floats is read as one body.
* ``label/<video>.txt``: one line per action, ``label,start,end,confidence``, label 1–51.
* the official split lists, in ``root/splits/`` or ``root/``: ``cross-subject.txt`` and
  ``cross-view.txt`` for phase 1 (the release's names; ``cross_subject.txt`` and
  ``cross_view.txt``, as MAMP's instructions spell them, are accepted too) and
  ``cross_subject_v2.txt`` and ``cross_view_v2.txt`` for phase 2. Each holds a line
  ``Training videos:`` followed by comma-separated video names and a line ``Validation videos:``
  (spelt ``Validataion`` in the release) followed by more names.

Every label line becomes one sample named ``<video>_<KK>`` (``KK`` = 1-based label line, two
digits at least, e.g. ``0310-R_03``), in the split (``"train"`` or ``"test"``) of its video.

Frame convention: ``start`` and ``end`` are 0-based frame indices (lines of the skeleton file
counted from 0) and both are included, so a segment has ``end - start + 1`` frames and
``end`` must be smaller than the number of lines.

Preprocessing of every segment, as for NTU RGB+D:

* **Centring**: the spine mid (joint 1) of the first body present in the segment's first frame
  with a body is subtracted from every frame of every body that is present; absent bodies stay
  all zeros.
* **Resampling**: a segment longer than ``max_frames`` is resampled uniformly to ``max_frames``
  frames (nearest frames, so absent bodies stay absent) and listed in ``ReadReport.cleaned``.
* **Padding**: every sample is zero-padded to ``max_frames``; ``lengths`` holds the kept frames.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, TextIO

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

__all__ = ["load_pku_mmd", "read_pku_labels", "read_pku_skeleton"]

_LAYOUT = "nturgb+d"
_NUM_CLASSES = 51
_NUM_JOINTS = 25
_NUM_BODIES = 2
_SPINE_MID = 1
_SPLIT_FILES = {
    (1, "xsub"): ("cross-subject.txt", "cross_subject.txt"),
    (1, "xview"): ("cross-view.txt", "cross_view.txt"),
    (2, "xsub"): ("cross_subject_v2.txt", "cross-subject-v2.txt"),
    (2, "xview"): ("cross_view_v2.txt", "cross-view-v2.txt"),
}
_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)
_SECTION = re.compile(r"^\s*(train\w*|valid\w*|test\w*)\s+videos?\s*:(.*)$", re.IGNORECASE)


def read_pku_skeleton(path: str | Path) -> npt.NDArray[np.float32]:
    r"""Reads one untrimmed PKU-MMD skeleton file.

    Args:
        path: A ``skeleton/<video>.txt`` file: one line per frame of 150 (two bodies) or 75
            (one body) whitespace-separated floats.

    Returns:
        Coordinates, float32 of shape ``(T, 2, 25, 3)``: frames, bodies, joints, ``x y z``; the
        second body is zeros where the file has none.

    Raises:
        SkeletonFileError: If the file cannot be read or is empty, or with the line, if a line
            does not hold 75 or 150 finite numbers within the float32 range
            (``|value| <= 3.4e38``).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "0001-L.txt"
        >>> _ = path.write_text(" ".join(["0.5"] * 150) + "\n" + " ".join(["1"] * 75) + "\n")
        >>> frames = read_pku_skeleton(path)
        >>> frames.shape, frames.dtype, float(frames[1, 1].sum())
        ((2, 2, 25, 3), dtype('float32'), 0.0)
    """
    rows: list[npt.NDArray[np.float32]] = []
    with _open_text(path) as file:
        for number, line in enumerate(file, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) not in (75, 150):
                raise SkeletonFileError(
                    path, f"frame line has {len(fields)} values; expected 75 or 150", line=number
                )
            try:
                values = np.array(fields, dtype=np.float64)
            except ValueError as error:
                raise SkeletonFileError(path, f"non-numeric value ({error})", line=number) from None
            if not np.isfinite(values).all():
                raise SkeletonFileError(path, "non-finite value", line=number)
            single = to_float32(values)
            if not np.isfinite(single).all():
                raise SkeletonFileError(path, f"value {BEYOND_FLOAT32}", line=number)
            if len(single) == 75:
                single = np.concatenate([single, np.zeros(75, dtype=np.float32)])
            rows.append(single)
    if not rows:
        raise SkeletonFileError(path, "file holds no frames")
    return np.stack(rows).reshape(-1, _NUM_BODIES, _NUM_JOINTS, 3)


def _open_text(path: str | Path) -> TextIO:
    """``path`` opened for reading text; ``SkeletonFileError`` if it cannot be (e.g. a folder)."""
    try:
        return Path(path).open(encoding="utf-8", errors="replace")
    except OSError as error:
        raise SkeletonFileError(
            path, f"cannot read the file ({error.strerror or error})"
        ) from error


def read_pku_labels(path: str | Path, *, num_classes: int = _NUM_CLASSES) -> npt.NDArray[np.int64]:
    r"""Reads one PKU-MMD label file.

    Args:
        path: A ``label/<video>.txt`` file of ``label,start,end,confidence`` lines (blank lines
            are ignored).
        num_classes: Labels must lie in ``1..num_classes``.

    Returns:
        int64 array of shape ``(K, 4)``, one row per label line: ``label - 1`` (0-based),
        ``start``, ``end`` (0-based, inclusive; see the module docstring) and ``confidence``.

    Raises:
        SkeletonFileError: If the file cannot be read; with the line, if a line is not four
            comma-separated integers, its label is outside ``1..num_classes``, ``start`` is
            negative, ``end < start``, or a number does not fit in int64.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "0001-L.txt"
        >>> _ = path.write_text("27,148,192,2\n18,261,282,1\n")
        >>> read_pku_labels(path).tolist()
        [[26, 148, 192, 2], [17, 261, 282, 1]]
    """
    return _parse_labels(path, num_classes)[0]


def _parse_labels(path: str | Path, num_classes: int) -> tuple[npt.NDArray[np.int64], list[int]]:
    """The rows of ``read_pku_labels`` and the 1-based line number of each."""
    rows: list[list[int]] = []
    numbers: list[int] = []
    with _open_text(path) as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            fields = [field.strip() for field in line.strip().rstrip(",").split(",")]
            try:
                if len(fields) != 4:
                    raise ValueError
                label, start, end, confidence = (int(field) for field in fields)
            except ValueError:
                raise SkeletonFileError(
                    path,
                    f"expected 4 comma-separated integers label,start,end,confidence; got "
                    f"{line.strip()!r}",
                    line=number,
                ) from None
            if not 1 <= label <= num_classes:
                raise SkeletonFileError(
                    path, f"label {label} is outside 1..{num_classes}", line=number
                )
            if not all(_INT64_MIN <= value <= _INT64_MAX for value in (start, end, confidence)):
                raise SkeletonFileError(
                    path,
                    f"start, end and confidence must fit in int64; got {line.strip()!r}",
                    line=number,
                )
            if start < 0 or end < start:
                raise SkeletonFileError(
                    path, f"segment start={start}, end={end}: need 0 <= start <= end", line=number
                )
            rows.append([label - 1, start, end, confidence])
            numbers.append(number)
    return np.array(rows, dtype=np.int64).reshape(-1, 4), numbers


def load_pku_mmd(
    root: str | Path,
    *,
    phase: int = 1,
    benchmark: str = "xsub",
    max_frames: int = 300,
    on_error: OnError = "skip",
    workers: int = 1,
    show_progress: bool = False,
) -> tuple[dict[str, SkeletonArrays], ReadReport]:
    """Loads PKU-MMD trimmed actions and splits them with an official split list.

    Args:
        root: The phase's folder with ``skeleton/``, ``label/`` and the split lists (see the
            module docstring), e.g. ``../shared/data/pku-mmd-sample``.
        phase: 1 or 2; selects the split list's file name.
        benchmark: ``"xsub"`` (cross-subject) or ``"xview"`` (cross-view).
        max_frames: Frames per sample ``T``, at least 1; longer segments are resampled.
        on_error: For an unusable video or label line (a bad skeleton or label file, a segment
            past the end of its video or without a body, a video in neither split list or
            without a skeleton file, a skeleton file without a label file): ``"raise"`` the
            ``SkeletonFileError``, or ``"skip"`` it and list it in the report.
        workers: Processes reading videos in parallel, at least 1.
        show_progress: Show a progress bar (needs tqdm).

    Returns:
        ``({"train": ..., "test": ...}, report)``: ``SkeletonArrays`` with ``data`` of shape
        ``(N, 3, max_frames, 25, 2)`` float32, 51 classes, layout ``"nturgb+d"`` and names
        ``<video>_<KK>`` sorted by video and line (a split may have ``N = 0``); the report counts
        videos read and samples kept.

    Raises:
        FileNotFoundError: If ``root/skeleton``, ``root/label`` or the split list is missing.
        ValueError: If an argument is invalid or a split list has no training or validation
            section.
        SkeletonFileError: With ``on_error="raise"``, for the first unusable video or label line.

    Examples:
        >>> load_pku_mmd("no/such/folder")
        Traceback (most recent call last):
        ...
        FileNotFoundError: PKU-MMD skeleton folder not found: no/such/folder/skeleton
    """
    check_on_error(on_error)
    if phase not in (1, 2):
        raise ValueError(f"phase must be 1 or 2, got {phase!r}")
    if benchmark not in ("xsub", "xview"):
        raise ValueError(f"benchmark must be 'xsub' or 'xview', got {benchmark!r}")
    max_frames = _check_frames(max_frames)
    root = Path(root)
    skeleton_dir, label_dir = root / "skeleton", root / "label"
    for folder, what in ((skeleton_dir, "skeleton"), (label_dir, "label")):
        if not folder.is_dir():
            raise FileNotFoundError(f"PKU-MMD {what} folder not found: {folder}")
    split_path = _find_split_file(root, phase, benchmark)
    split_of = read_pku_split(split_path)

    report = ReadReport()
    jobs: list[_VideoJob] = []
    label_paths = sorted(label_dir.glob("*.txt"))
    labelled = {path.stem for path in label_paths}
    for skeleton_path in sorted(skeleton_dir.glob("*.txt")):
        if skeleton_path.stem not in labelled:
            report.read += 1
            report.add_error(SkeletonFileError(skeleton_path, "no label file"), on_error)
    for label_path in label_paths:
        video = label_path.stem
        skeleton_path = skeleton_dir / label_path.name
        if video not in split_of:
            report.read += 1
            report.add_error(
                SkeletonFileError(label_path, f"video {video} is in neither list of {split_path}"),
                on_error,
            )
        elif not skeleton_path.is_file():
            report.read += 1
            report.add_error(
                SkeletonFileError(
                    label_path,
                    f"skeleton file {skeleton_path} "
                    + ("is not a file" if skeleton_path.exists() else "not found"),
                ),
                on_error,
            )
        else:
            jobs.append(_VideoJob(skeleton_path, label_path, max_frames))

    results = map_files(
        _read_video, jobs, workers=workers, show_progress=show_progress, desc="PKU-MMD"
    )
    samples: dict[str, list[_Segment]] = {"train": [], "test": []}
    for job, result in zip(jobs, results, strict=True):
        report.read += 1
        for path, reason, line in result.errors:
            report.add_error(SkeletonFileError(path, reason, line=line), on_error)
        report.cleaned.extend(result.cleaned)
        samples[split_of[job.label_path.stem]].extend(result.segments)
    report.kept = sum(len(group) for group in samples.values())
    return {split: _to_arrays(group, max_frames) for split, group in samples.items()}, report


def read_pku_split(path: str | Path) -> dict[str, str]:
    r"""Reads an official split list into ``{video: "train" | "test"}``.

    Args:
        path: A file with a ``Training videos:`` line and a ``Validation videos:`` line (any
            spelling starting with ``Valid`` or ``Test``), each followed by comma-separated
            video names (on the same line or the next ones).

    Returns:
        The split of every listed video; validation videos map to ``"test"``.

    Raises:
        ValueError: If the file lacks one of the sections, names a video before any section, or
            lists a video in both.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "cross-subject.txt"
        >>> _ = path.write_text(
        ...     "Training videos: \n0002-L, 0002-M,\nValidataion videos: \n0291-L,\n"
        ... )
        >>> read_pku_split(path)
        {'0002-L': 'train', '0002-M': 'train', '0291-L': 'test'}
    """
    split_of: dict[str, str] = {}
    section: str | None = None
    seen: set[str] = set()
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        match = _SECTION.match(line)
        if match is not None:
            section = "train" if match[1].lower().startswith("train") else "test"
            seen.add(section)
        listed = line if match is None else match[2]
        names = [name.strip() for name in listed.split(",") if name.strip()]
        if not names:
            continue
        if section is None:
            raise ValueError(f"{path}:{number}: video names before a 'Training videos:' line")
        for name in names:
            if split_of.setdefault(name, section) != section:
                raise ValueError(f"{path}:{number}: video {name} is listed in both splits")
    missing = {"train", "test"} - seen
    if missing:
        raise ValueError(f"{path}: no {' or '.join(sorted(missing))} section in the split list")
    return split_of


def _check_frames(max_frames: object) -> int:
    number = as_integer(max_frames)
    if number is None or number < 1:
        raise ValueError(f"max_frames must be an int >= 1, got {max_frames!r}")
    return number


def _find_split_file(root: Path, phase: int, benchmark: str) -> Path:
    candidates = [
        folder / name
        for folder in (root / "splits", root)
        for name in _SPLIT_FILES[phase, benchmark]
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no PKU-MMD phase {phase} {benchmark} split list; looked for "
        f"{', '.join(str(c) for c in candidates)}"
    )


class _VideoJob(NamedTuple):
    skeleton_path: Path
    label_path: Path
    max_frames: int


class _Segment(NamedTuple):
    name: str
    label: int
    frames: npt.NDArray[np.float32]  # (L, 2, 25, 3) with L <= max_frames


class _VideoResult(NamedTuple):
    segments: list[_Segment]
    cleaned: list[str]
    # (path, reason, line) of every bad segment: returned, not raised, so the rest are kept.
    errors: list[tuple[str, str, int | None]]


def _read_video(job: _VideoJob) -> _VideoResult:
    """Trimmed, centred, resampled segments of one video; errors are returned, not raised."""
    try:
        frames = read_pku_skeleton(job.skeleton_path)
        labels, line_numbers = _parse_labels(job.label_path, _NUM_CLASSES)
    except SkeletonFileError as error:
        return _VideoResult([], [], [(error.path, error.reason, error.line)])
    result = _VideoResult([], [], [])
    video = job.label_path.stem
    for (label, start, end, _), line in zip(labels.tolist(), line_numbers, strict=True):
        name = f"{video}_{line:02d}"
        if end >= len(frames):
            result.errors.append(
                (
                    str(job.label_path),
                    (
                        f"segment {start}..{end} is beyond the end of {job.skeleton_path} "
                        f"({len(frames)} frames, 0-based)"
                    ),
                    line,
                )
            )
            continue
        segment = frames[start : end + 1]
        present = np.any(segment != 0.0, axis=(2, 3))  # (L, 2)
        if not present.any():
            result.errors.append(
                (str(job.label_path), f"segment {start}..{end} holds no body", line)
            )
            continue
        first_frame = int(np.argmax(present.any(axis=1)))
        first_body = int(np.argmax(present[first_frame]))
        origin = segment[first_frame, first_body, _SPINE_MID]
        with np.errstate(over="ignore", invalid="ignore"):
            segment = np.where(present[:, :, None, None], segment - origin, np.float32(0.0))
        if not np.isfinite(segment).all():
            reason = f"segment {start}..{end}: centred coordinates are {BEYOND_FLOAT32}"
            result.errors.append((str(job.label_path), reason, line))
            continue
        if len(segment) > job.max_frames:
            index = np.linspace(0, len(segment) - 1, job.max_frames).round().astype(np.int64)
            result.cleaned.append(f"{name}: resampled {len(segment)} frames to {job.max_frames}")
            segment = segment[index]
        result.segments.append(_Segment(name, label, segment.astype(np.float32)))
    return result


def _to_arrays(segments: Sequence[_Segment], max_frames: int) -> SkeletonArrays:
    data = np.zeros((len(segments), 3, max_frames, _NUM_JOINTS, _NUM_BODIES), dtype=np.float32)
    for n, segment in enumerate(segments):
        data[n, :, : len(segment.frames)] = segment.frames.transpose(3, 0, 2, 1)
    return SkeletonArrays(
        data=data,
        labels=np.array([segment.label for segment in segments], dtype=np.int64),
        lengths=np.array([len(segment.frames) for segment in segments], dtype=np.int64),
        layout=_LAYOUT,
        num_classes=_NUM_CLASSES,
        names=[segment.name for segment in segments],
    )
