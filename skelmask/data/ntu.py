"""Reader for raw NTU RGB+D 60 / 120 ``.skeleton`` files, with the usual cleaning and benchmarks.

**Format** (Shahroudy et al., CVPR 2016; Liu et al., TPAMI 2020): a text file, LF or CRLF, holding
the frame count; then per frame the body count; per body one line of 10 values (``bodyID``
first), the joint count (25) and one line of 12 values per joint (``x y z`` in camera-space
metres, then depth and colour pixel positions, orientation and tracking state). A body keeps its
``bodyID`` while Kinect tracks it, so ``read_ntu_skeleton`` returns one track per ID.

**Cleaning** (``clean_ntu_sequence``), the preprocessing of the ST-GCN / CTR-GCN / MAMP line
of work, implemented here from its description:

1. When a file has more than one body, bodies tracked in at most ``NOISE_LENGTH_THRESHOLD``
   frames are discarded, then bodies whose x-spread exceeds ``SPREAD_RATIO`` times their
   y-spread (wider than tall, not a standing person) in at least ``NOISY_SPREAD_FRACTION``
   of their frames. A filter that would discard every remaining body is skipped (and noted).
2. The remaining bodies are ranked by motion, the total variance of their joints over time
   (variance over frames of every joint coordinate, summed). In that order each body goes to
   the first of the ``max_bodies`` actor slots that is free during all of its frames, so a track
   that Kinect broke into several IDs becomes one actor again; a body that fits no slot is
   discarded.
3. Frames in which no actor is present are dropped.
4. Coordinates are centred on the spine-mid joint (index 1) of the first actor present in the
   first kept frame; absent actors stay exactly zero.

**Loading** (``load_ntu``) then resamples sequences longer than ``max_frames`` to
``max_frames`` uniformly spaced frames and zero-pads shorter ones.

**Benchmarks** (``NTU_BENCHMARKS``, ``ntu_split``): NTU-60 holds actions 1–60 of setups
1–17, NTU-120 actions 1–120 of setups 1–32. Cross-subject training subjects are
``NTU60_TRAINING_SUBJECTS`` (Shahroudy et al., CVPR 2016) and
``NTU120_TRAINING_SUBJECTS`` (Liu et al., TPAMI 2020), as listed by the dataset papers'
cross-subject evaluations and used by pyskl's ``tools/data/ntu_preproc.py`` and the
ST-GCN / CTR-GCN data scripts. NTU-60 cross-view
trains on cameras 2 and 3 and tests on camera 1; NTU-120 cross-setup trains on even setup
numbers and tests on odd ones.

**Missing skeletons**: the dataset authors list 535 samples (302 in NTU-60) whose skeletons are
missing or incomplete and ask users to ignore them. The list ships with skelmask
(``ntu_missing_skeletons.txt``, from shahroudy/NTURGB-D's
``Matlab/NTU_RGBD120_samples_with_missing_skeletons.txt``); ``load_ntu(..., missing="builtin")``
drops them, as the published benchmark numbers do.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

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

__all__ = [
    "MAX_BODIES_PER_FRAME",
    "NOISE_LENGTH_THRESHOLD",
    "NOISY_SPREAD_FRACTION",
    "NTU60_TRAINING_CAMERAS",
    "NTU60_TRAINING_SUBJECTS",
    "NTU120_TRAINING_SUBJECTS",
    "NTU_BENCHMARKS",
    "SPREAD_RATIO",
    "NTUBody",
    "NTUName",
    "NTUSequence",
    "clean_ntu_sequence",
    "load_ntu",
    "ntu_split",
    "parse_ntu_name",
    "read_ntu_skeleton",
]

NTU_BENCHMARKS: tuple[str, ...] = ("ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset")

NTU60_TRAINING_SUBJECTS: frozenset[int] = frozenset(
    (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
)
"""Performers of NTU-60's cross-subject training set (the other 20 of 40 are the test set)."""

NTU120_TRAINING_SUBJECTS: frozenset[int] = NTU60_TRAINING_SUBJECTS | frozenset(
    (45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
     89, 91, 92, 93, 94, 95, 97, 98, 100, 103)
)  # fmt: skip
"""Performers of NTU-120's cross-subject training set (53 of 106)."""

NTU60_TRAINING_CAMERAS: frozenset[int] = frozenset((2, 3))
"""Cameras of NTU-60's cross-view training set; camera 1 is the test set."""

NOISE_LENGTH_THRESHOLD = 11
"""A body tracked in at most this many frames is noise (when the file holds other bodies)."""

SPREAD_RATIO = 0.8
"""A frame of a body is noisy when its x-spread exceeds this times its y-spread."""

NOISY_SPREAD_FRACTION = 0.69754
"""A body is noise when at least this fraction of its frames is noisy by ``SPREAD_RATIO``."""

MAX_BODIES_PER_FRAME = 6
"""Kinect v2 tracks at most six bodies; a larger body count is a corrupt file."""

_LAYOUT = "nturgb+d"
_CENTER_JOINT = "spine_mid"
_VALUES_PER_JOINT = 12
_VALUES_PER_BODY_INFO = 10
_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
_SUFFIX = ".skeleton"
_BUILTIN_MISSING = "ntu_missing_skeletons.txt"
# (classes, last setup) of each dataset; a benchmark holds the samples within both.
_DATASETS = {"ntu60": (60, 17), "ntu120": (120, 32)}

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class NTUName:
    """The numbers encoded in an NTU sample name ``SsssCcccPpppRrrrAaaa`` (all 1-based).

    Attributes:
        setup: Camera setup ``S``, 1–17 in NTU-60, 1–32 in NTU-120.
        camera: Camera ``C``, 1–3.
        performer: Subject ``P``.
        replication: Replication ``R``, 1 or 2.
        action: Action class ``A``, 1–60 or 1–120.
    """

    setup: int
    camera: int
    performer: int
    replication: int
    action: int


@dataclass(frozen=True, eq=False)
class NTUBody:
    """One body as Kinect tracked it: the frames it appears in and its joints there.

    Attributes:
        body_id: Kinect's tracking ID, as written in the file.
        frames: 0-based indices of the file frames holding this body, int64 of shape ``(K,)``,
            strictly increasing.
        joints: Camera-space ``x y z`` in metres, float32 of shape ``(K, V, 3)`` (``V = 25``).
    """

    body_id: str
    frames: npt.NDArray[np.int64]
    joints: FloatArray


@dataclass(frozen=True, eq=False)
class NTUSequence:
    """The raw content of one ``.skeleton`` file.

    Attributes:
        path: The file.
        num_frames: Frames in the file, including frames without any body.
        bodies: One track per body ID, in order of first appearance.
    """

    path: str
    num_frames: int
    bodies: tuple[NTUBody, ...] = ()


def parse_ntu_name(name: str) -> NTUName:
    """Parses ``SsssCcccPpppRrrrAaaa`` from a sample name, a file name or a path.

    Args:
        name: E.g. ``"S001C002P003R002A013"`` or ``"data/S001C002P003R002A013.skeleton"``.

    Returns:
        The five numbers.

    Raises:
        ValueError: If the name does not have that form or a number is 0.

    Examples:
        >>> parse_ntu_name("S001C002P003R002A013.skeleton")
        NTUName(setup=1, camera=2, performer=3, replication=2, action=13)
    """
    stem = Path(str(name)).name.removesuffix(_SUFFIX)
    match = _NAME.fullmatch(stem)
    if match is None:
        raise ValueError(f"not an NTU RGB+D sample name of the form SsssCcccPpppRrrrAaaa: {name!r}")
    numbers = [int(group) for group in match.groups()]
    if 0 in numbers:
        raise ValueError(f"NTU RGB+D sample numbers start at 1, got 0 in {name!r}")
    return NTUName(*numbers)


def ntu_split(name: NTUName, benchmark: str) -> Literal["train", "test"] | None:
    """The split of a sample under a benchmark, or ``None`` when the benchmark does not hold it.

    Args:
        name: The parsed sample name.
        benchmark: One of ``NTU_BENCHMARKS``.

    Returns:
        ``"train"`` or ``"test"``; ``None`` for samples outside the benchmark's dataset (e.g.
        action 61 or setup 18 under an NTU-60 benchmark).

    Raises:
        ValueError: If ``benchmark`` is not one of ``NTU_BENCHMARKS``.

    Examples:
        >>> sample = parse_ntu_name("S002C001P003R001A061")
        >>> ntu_split(sample, "ntu60-xsub"), ntu_split(sample, "ntu120-xset")
        (None, 'train')
    """
    dataset, protocol = _check_benchmark(benchmark)
    num_classes, last_setup = _DATASETS[dataset]
    if not (1 <= name.action <= num_classes and 1 <= name.setup <= last_setup):
        return None
    if protocol == "xsub":
        subjects = NTU60_TRAINING_SUBJECTS if dataset == "ntu60" else NTU120_TRAINING_SUBJECTS
        in_train = name.performer in subjects
    elif protocol == "xview":
        in_train = name.camera in NTU60_TRAINING_CAMERAS
    else:
        in_train = name.setup % 2 == 0
    return "train" if in_train else "test"


def read_ntu_skeleton(path: str | Path) -> NTUSequence:
    """Reads one ``.skeleton`` file into per-body tracks, without any cleaning.

    Args:
        path: The file (LF or CRLF line endings).

    Returns:
        The file's frame count and one ``NTUBody`` per body ID. A file whose frames hold no
        body at all gives an empty ``bodies`` (``clean_ntu_sequence`` rejects it).

    Raises:
        SkeletonFileError: Naming the file and the 1-based line, if the file cannot be read or is
            empty; a count is not an integer; the frame count is below 1; a body count is
            negative or above ``MAX_BODIES_PER_FRAME``; a body info line does not have 10
            values; a joint count is not 25; a joint line does not have 12 numeric values or its
            ``x y z`` are not finite float32 numbers (NaN, inf, or beyond ``±3.4e38``); a body
            ID appears twice in a frame; the file ends early; or non-blank text follows the last
            frame.

    Examples:
        >>> import os
        >>> import tempfile
        >>> from pathlib import Path
        >>> joint = "1 2 3 0 0 0 0 0 0 0 0 2"
        >>> lines = ["1", "1", "7 0 1 1 1 1 0 0.01 -0.25 2", "25"] + [joint] * 25
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder) / "S001C001P001R001A001.skeleton"
        ...     _ = path.write_text(os.linesep.join(lines))
        ...     sequence = read_ntu_skeleton(path)
        >>> sequence.num_frames, sequence.bodies[0].body_id, sequence.bodies[0].joints.shape
        (1, '7', (1, 25, 3))
    """
    num_joints = get_layout(_LAYOUT).num_joints
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise SkeletonFileError(path, f"cannot read the file ({error})") from error
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise SkeletonFileError(path, "file is empty")
    cursor = _Cursor(path, lines)
    num_frames = cursor.integer("the frame count")
    if num_frames < 1:
        raise cursor.error(f"frame count is {num_frames}; expected at least 1")
    tracks: dict[str, tuple[list[int], list[FloatArray]]] = {}
    for frame in range(num_frames):
        num_bodies = cursor.integer(f"the body count of frame {frame + 1}")
        if not 0 <= num_bodies <= MAX_BODIES_PER_FRAME:
            raise cursor.error(
                f"body count of frame {frame + 1} is {num_bodies}; expected 0 to "
                f"{MAX_BODIES_PER_FRAME}"
            )
        for body in range(num_bodies):
            info = cursor.take(f"the info line of body {body + 1} in frame {frame + 1}").split()
            if len(info) != _VALUES_PER_BODY_INFO:
                raise cursor.error(
                    f"body info line has {len(info)} values; expected {_VALUES_PER_BODY_INFO}"
                )
            body_id = info[0]
            frames, joints = tracks.setdefault(body_id, ([], []))
            if frames and frames[-1] == frame:
                raise cursor.error(f"body ID {body_id} appears twice in frame {frame + 1}")
            count = cursor.integer(f"the joint count of body {body_id} in frame {frame + 1}")
            if count != num_joints:
                raise cursor.error(f"joint count is {count}; expected {num_joints}")
            frames.append(frame)
            joints.append(cursor.joints(num_joints))
    cursor.expect_end()
    bodies = tuple(
        NTUBody(
            body_id=body_id,
            frames=np.asarray(frames, dtype=np.int64),
            joints=np.stack(joints).astype(np.float32),
        )
        for body_id, (frames, joints) in tracks.items()
    )
    return NTUSequence(path=str(path), num_frames=num_frames, bodies=bodies)


def clean_ntu_sequence(
    sequence: NTUSequence, *, max_bodies: int = 2
) -> tuple[FloatArray, list[str]]:
    """Denoises the bodies of a sequence, picks the main actors and centres them.

    See the module docstring for the steps and ``NOISE_LENGTH_THRESHOLD``,
    ``SPREAD_RATIO`` and ``NOISY_SPREAD_FRACTION`` for the thresholds.

    Args:
        sequence: A file as read by ``read_ntu_skeleton``.
        max_bodies: Actor slots ``M``, at least 1.

    Returns:
        ``(joints, notes)``: float32 of shape ``(T, M, V, 3)``, the ``T`` frames in which an
        actor is present, actors by decreasing motion (slot 0 moves most), absent actors all
        zeros; and one note per change cleaning made (bodies discarded, frames dropped), empty
        when it changed nothing.

    Raises:
        SkeletonFileError: ``"no skeleton"`` if no frame of the file holds a body, or if a centred
            coordinate overflows float32 (joints near ``±3.4e38``).
        ValueError: If ``max_bodies`` is not a positive integer.

    Examples:
        >>> import numpy as np
        >>> body = NTUBody("1", np.arange(3), np.ones((3, 25, 3), dtype=np.float32))
        >>> joints, notes = clean_ntu_sequence(NTUSequence("a.skeleton", 4, (body,)))
        >>> joints.shape, float(np.abs(joints).max()), notes
        ((3, 2, 25, 3), 0.0, ['dropped 1 of 4 frames without a body'])
    """
    max_bodies = _check_count(max_bodies, "max_bodies")
    if not sequence.bodies:
        raise SkeletonFileError(
            sequence.path, f"no skeleton: none of its {sequence.num_frames} frames holds a body"
        )
    notes: list[str] = []
    bodies = _discard(
        list(sequence.bodies),
        lambda body: len(body.frames) > NOISE_LENGTH_THRESHOLD,
        f"tracked in at most {NOISE_LENGTH_THRESHOLD} frames",
        notes,
    )
    bodies = _discard(
        bodies,
        lambda body: _noisy_spread_fraction(body) < NOISY_SPREAD_FRACTION,
        f"wider than {SPREAD_RATIO} of its height in at least {NOISY_SPREAD_FRACTION:.0%} of "
        f"its frames",
        notes,
    )
    layout = get_layout(_LAYOUT)
    joints = np.zeros((sequence.num_frames, max_bodies, layout.num_joints, 3), dtype=np.float32)
    present = np.zeros((sequence.num_frames, max_bodies), dtype=bool)
    # Stable sort: equal motion keeps the order of first appearance.
    for body in sorted(bodies, key=_motion, reverse=True):
        free = np.flatnonzero(~present[body.frames].any(axis=0))
        if free.size == 0:
            notes.append(
                f"discarded body {body.body_id} ({len(body.frames)} frames): it overlaps the "
                f"{max_bodies} actors that move more"
            )
            continue
        present[body.frames, free[0]] = True
        joints[body.frames, free[0]] = body.joints
    kept = present.any(axis=1)
    if not kept.all():
        notes.append(f"dropped {int((~kept).sum())} of {kept.size} frames without a body")
        joints, present = joints[kept], present[kept]
    first_actor = int(np.argmax(present[0]))
    with np.errstate(over="ignore", invalid="ignore"):
        joints[present] -= joints[0, first_actor, layout.joint_index(_CENTER_JOINT)]
    if not np.isfinite(joints).all():
        raise SkeletonFileError(sequence.path, f"centred coordinates are {BEYOND_FLOAT32}")
    return joints, notes


def load_ntu(
    root: str | Path,
    *,
    benchmark: str,
    max_frames: int = 300,
    max_bodies: int = 2,
    missing: str | Path | Iterable[str] | None = None,
    on_error: OnError = "skip",
    workers: int = 1,
    show_progress: bool = False,
) -> tuple[dict[str, SkeletonArrays], ReadReport]:
    """Reads, cleans and splits every NTU ``.skeleton`` file under ``root`` for one benchmark.

    Args:
        root: Folder searched recursively for ``*.skeleton`` files (e.g. the extracted
            ``nturgb+d_skeletons/`` of NTU-60, or of both NTU-120 archives). Symbolic links to
            folders are followed, each folder is searched once (so a link loop ends), and a
            ``*.skeleton`` entry that is not a regular file (a broken link, a folder) or a folder
            that cannot be listed is reported like an unusable file.
        benchmark: One of ``NTU_BENCHMARKS``. Files outside its dataset (e.g. action 61 or
            later under NTU-60) are left out without being read or reported.
        max_frames: Frames ``T`` of the output; longer sequences are resampled to ``T``
            uniformly spaced frames (and listed in ``report.cleaned``), shorter ones zero-padded.
        max_bodies: Actor slots ``M``.
        missing: Samples to leave out, listed in ``report.rejected``: ``"builtin"`` for the
            dataset authors' list of 535 samples with missing skeletons (recommended; the
            published benchmarks leave them out), a file with one sample name per line (blank
            lines and ``#`` comments ignored), an iterable of sample names, or ``None`` (the
            default) to read every file. Files without any body are rejected in any case.
        on_error: ``"skip"`` lists a file that cannot be used in ``report.rejected``;
            ``"raise"`` raises ``SkeletonFileError`` for the first one (file names are
            checked before any file is read, then files are read in name order).
        workers: Processes reading files; the result does not depend on it.
        show_progress: Show a progress bar (when tqdm is installed).

    Returns:
        ``(splits, report)``: ``splits["train"]`` and ``splits["test"]`` are
        ``SkeletonArrays`` with ``data`` float32 of shape ``(N, 3, max_frames, 25,
        max_bodies)``, labels ``action - 1``, ``num_classes`` 60 or 120, layout ``"nturgb+d"``,
        names the file stems in sorted order. A split is empty (``N = 0``) when ``root`` holds
        none of its files. ``report.read`` counts the benchmark's files, which are either kept
        or rejected; ``report.cleaned`` lists every kept sample that cleaning changed.

    Raises:
        FileNotFoundError: If ``root`` is not a folder or holds no ``.skeleton`` file.
        ValueError: If ``benchmark``, ``on_error``, ``max_frames``, ``max_bodies``, ``workers``
            or ``missing`` is invalid.
        SkeletonFileError: With ``on_error="raise"``, for the first file that cannot be used.

    Examples:
        >>> load_ntu("no/such/folder", benchmark="ntu60-xsub")
        Traceback (most recent call last):
        ...
        FileNotFoundError: NTU RGB+D skeleton folder not found: no/such/folder
    """
    dataset, _ = _check_benchmark(benchmark)
    check_on_error(on_error)
    max_frames = _check_count(max_frames, "max_frames")
    max_bodies = _check_count(max_bodies, "max_bodies")
    folder = Path(root)
    if not folder.is_dir():
        raise FileNotFoundError(f"NTU RGB+D skeleton folder not found: {folder}")
    paths, unusable = _find_skeleton_files(folder)
    if not paths and not unusable:
        raise FileNotFoundError(f"no *{_SUFFIX} files under {folder}")
    excluded = _missing_names(missing)
    report = ReadReport()
    for path, reason in unusable:
        report.read += 1
        report.add_error(SkeletonFileError(path, reason), on_error)
    selected: list[tuple[Path, NTUName, Literal["train", "test"]]] = []
    seen: dict[str, Path] = {}
    for path in paths:
        stem = path.name.removesuffix(_SUFFIX)
        try:
            name = parse_ntu_name(stem)
        except ValueError:
            report.read += 1
            report.add_error(
                SkeletonFileError(path, "file name is not of the form SsssCcccPpppRrrrAaaa"),
                on_error,
            )
            continue
        split = ntu_split(name, benchmark)
        if split is None:
            continue
        report.read += 1
        if stem in seen:
            report.add_error(
                SkeletonFileError(path, f"duplicate sample {stem}; already read from {seen[stem]}"),
                on_error,
            )
            continue
        seen[stem] = path
        if stem in excluded:
            report.rejected.append(f"{path}: listed as a sample with missing skeletons")
            continue
        selected.append((path, name, split))
    loaded = map_files(
        functools.partial(_load_file, max_frames=max_frames, max_bodies=max_bodies),
        [path for path, _, _ in selected],
        workers=workers,
        show_progress=show_progress,
        desc=f"reading {benchmark}",
    )
    samples: dict[str, list[tuple[str, int, FloatArray]]] = {"train": [], "test": []}
    for (path, name, split), result in zip(selected, loaded, strict=True):
        if isinstance(result, _FailedFile):
            report.add_error(SkeletonFileError(path, result.reason, line=result.line), on_error)
            continue
        stem = path.name.removesuffix(_SUFFIX)
        if result.notes:
            report.cleaned.append(f"{stem}: {'; '.join(result.notes)}")
        samples[split].append((stem, name.action - 1, result.joints))
        report.kept += 1
    num_classes = _DATASETS[dataset][0]
    splits = {
        split: _to_arrays(group, max_frames, max_bodies, num_classes)
        for split, group in samples.items()
    }
    return splits, report


def _find_skeleton_files(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The ``*.skeleton`` files under ``folder``, and the entries found that cannot be read.

    Symbolic links to folders are followed (archives are often extracted elsewhere and linked
    in); every folder is searched once, however many links lead to it, so a link loop ends.
    A ``*.skeleton`` entry that is not a readable regular file (a broken link, a folder) and a
    folder that cannot be listed are returned with the reason. Files are sorted by name, then
    path.
    """
    found: list[Path] = []
    unusable: list[tuple[Path, str]] = []
    root_status = folder.stat()
    searched = {(root_status.st_dev, root_status.st_ino)}

    def unlistable(error: OSError) -> None:
        unusable.append((Path(str(error.filename)), f"cannot list the folder ({error.strerror})"))

    for top, folders, files in os.walk(folder, followlinks=True, onerror=unlistable):
        kept = []
        for name in sorted(folders):
            try:
                status = (Path(top) / name).stat()
            except OSError as error:
                unusable.append((Path(top) / name, f"cannot open the folder ({error.strerror})"))
                continue
            if (status.st_dev, status.st_ino) not in searched:
                searched.add((status.st_dev, status.st_ino))
                kept.append(name)
            if name.endswith(_SUFFIX):
                unusable.append((Path(top) / name, "a folder, not a skeleton file"))
        folders[:] = kept
        for name in files:
            path = Path(top) / name
            if not name.endswith(_SUFFIX):
                continue
            if path.is_file():
                found.append(path)
            elif path.is_symlink() and not path.exists():
                unusable.append((path, f"a broken symbolic link to {os.readlink(path)}"))
            else:
                unusable.append((path, "not a regular file"))
    found.sort(key=lambda path: (path.name, str(path)))
    unusable.sort(key=lambda entry: str(entry[0]))
    return found, unusable


@dataclass(frozen=True, eq=False)
class _CleanedFile:
    """A worker's result for a usable file: joints ``(T <= max_frames, M, V, 3)`` and notes."""

    joints: FloatArray
    notes: tuple[str, ...]


@dataclass(frozen=True)
class _FailedFile:
    """A worker's result for a bad file: returned, not raised, so one bad file stops no others."""

    reason: str
    line: int | None


def _load_file(path: Path, *, max_frames: int, max_bodies: int) -> _CleanedFile | _FailedFile:
    try:
        joints, notes = clean_ntu_sequence(read_ntu_skeleton(path), max_bodies=max_bodies)
    except SkeletonFileError as error:
        return _FailedFile(error.reason, error.line)
    if len(joints) > max_frames:
        notes.append(f"resampled {len(joints)} frames uniformly to {max_frames}")
        # Spacing above one frame makes the rounded indices distinct.
        joints = joints[np.linspace(0, len(joints) - 1, max_frames).round().astype(np.int64)]
    return _CleanedFile(joints, tuple(notes))


def _to_arrays(
    samples: Sequence[tuple[str, int, FloatArray]],
    max_frames: int,
    max_bodies: int,
    num_classes: int,
) -> SkeletonArrays:
    num_joints = get_layout(_LAYOUT).num_joints
    data = np.zeros((len(samples), 3, max_frames, num_joints, max_bodies), dtype=np.float32)
    for n, (_, _, joints) in enumerate(samples):
        data[n, :, : len(joints)] = joints.transpose(3, 0, 2, 1)  # (T, M, V, C) -> (C, T, V, M)
    return SkeletonArrays(
        data=data,
        labels=np.array([label for _, label, _ in samples], dtype=np.int64),
        lengths=np.array([len(joints) for _, _, joints in samples], dtype=np.int64),
        layout=_LAYOUT,
        num_classes=num_classes,
        names=[name for name, _, _ in samples],
    )


class _Cursor:
    """Walks the lines of one file, raising ``SkeletonFileError`` with 1-based line numbers."""

    def __init__(self, path: str | Path, lines: list[str]) -> None:
        self.path = path
        self.lines = lines
        self.index = 0  # lines consumed; the last consumed line is number ``index``

    def error(self, reason: str, *, line: int | None = None) -> SkeletonFileError:
        """An error at ``line``, by default the line consumed last."""
        return SkeletonFileError(self.path, reason, line=self.index if line is None else line)

    def take(self, what: str) -> str:
        if self.index >= len(self.lines):
            raise SkeletonFileError(
                self.path,
                f"truncated: the file ends where {what} was expected",
                line=self.index + 1,
            )
        self.index += 1
        return self.lines[self.index - 1]

    def integer(self, what: str) -> int:
        text = self.take(what).strip()
        try:
            return int(text)
        except ValueError:
            raise self.error(f"{what} must be an integer, got {text!r}") from None

    def joints(self, num_joints: int) -> FloatArray:
        """The ``x y z`` of the next ``num_joints`` joint lines, float32 ``(V, 3)``."""
        first = self.index + 1
        block = self.lines[self.index : self.index + num_joints]
        if len(block) < num_joints:
            raise SkeletonFileError(
                self.path,
                f"truncated: the file ends after {len(block)} of {num_joints} joint lines",
                line=len(self.lines) + 1,
            )
        self.index += num_joints
        rows = [line.split() for line in block]
        for offset, row in enumerate(rows):
            if len(row) != _VALUES_PER_JOINT:
                raise self.error(
                    f"joint line has {len(row)} values; expected {_VALUES_PER_JOINT}",
                    line=first + offset,
                )
        try:
            values = np.array(rows, dtype=np.float64)
        except ValueError:
            raise self._non_numeric(rows, first) from None
        xyz = values[:, :3]
        single = to_float32(xyz)
        bad = np.flatnonzero(~np.isfinite(single).all(axis=1))
        if bad.size:
            finite = bool(np.isfinite(xyz[bad[0]]).all())
            what = f"are {BEYOND_FLOAT32}" if finite else "must be finite"
            raise self.error(
                f"joint x y z {what}, got {' '.join(rows[bad[0]][:3])}",
                line=first + int(bad[0]),
            )
        return single

    def _non_numeric(self, rows: list[list[str]], first: int) -> SkeletonFileError:
        for offset, row in enumerate(rows):
            for token in row:
                try:
                    float(token)
                except ValueError:
                    return self.error(f"non-numeric value {token!r}", line=first + offset)
        return self.error("joint lines are not numeric", line=first)

    def expect_end(self) -> None:
        for number in range(self.index, len(self.lines)):
            if self.lines[number].strip():
                raise self.error(
                    f"unexpected text after the last frame: {self.lines[number].strip()[:40]!r}",
                    line=number + 1,
                )


def _discard(
    bodies: list[NTUBody], keep: Callable[[NTUBody], bool], reason: str, notes: list[str]
) -> list[NTUBody]:
    """``bodies`` that pass ``keep``, noting each one discarded; all of them if none passes."""
    if len(bodies) <= 1:
        return bodies
    passed = [keep(body) for body in bodies]
    if not any(passed):
        notes.append(f"kept all {len(bodies)} bodies although each was {reason}")
        return bodies
    notes.extend(
        f"discarded body {body.body_id} ({len(body.frames)} frames): {reason}"
        for body, ok in zip(bodies, passed, strict=True)
        if not ok
    )
    return [body for body, ok in zip(bodies, passed, strict=True) if ok]


def _noisy_spread_fraction(body: NTUBody) -> float:
    """Fraction of the body's frames whose x-spread exceeds ``SPREAD_RATIO`` × y-spread."""
    # Coordinates near the float32 limit overflow here; the comparison with inf is still valid.
    with np.errstate(over="ignore", invalid="ignore"):
        spread = body.joints.max(axis=1) - body.joints.min(axis=1)  # (K, 3)
        return float(np.mean(spread[:, 0] > SPREAD_RATIO * spread[:, 1]))


def _motion(body: NTUBody) -> float:
    """Total variance over time of the body's joint coordinates (inf for near-float32-limit data)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(body.joints.var(axis=0).sum())


def _check_benchmark(benchmark: object) -> tuple[str, str]:
    if benchmark not in NTU_BENCHMARKS:
        raise ValueError(f"benchmark must be one of {NTU_BENCHMARKS}, got {benchmark!r}")
    dataset, protocol = str(benchmark).split("-")
    return dataset, protocol


def _check_count(value: object, name: str) -> int:
    number = as_integer(value)
    if number is None or number < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return number


def _missing_names(missing: str | Path | Iterable[str] | None) -> frozenset[str]:
    """Sample stems to leave out, from the ``missing`` argument of ``load_ntu``."""
    if missing is None:
        return frozenset()
    if isinstance(missing, str) and missing == "builtin":
        text = resources.files("skelmask.data").joinpath(_BUILTIN_MISSING).read_text("utf-8")
        return _parse_name_list(text, _BUILTIN_MISSING)
    if isinstance(missing, (str, Path)):
        path = Path(missing)
        if not path.is_file():
            raise ValueError(
                f"missing must be 'builtin', a file of sample names, an iterable of names or "
                f"None; {str(path)!r} is not a file"
            )
        return _parse_name_list(path.read_text(encoding="utf-8"), str(path))
    names = frozenset(Path(str(name)).name.removesuffix(_SUFFIX) for name in missing)
    bad = sorted(name for name in names if _NAME.fullmatch(name) is None)
    if bad:
        raise ValueError(f"missing holds names that are not NTU sample names: {bad[:5]}")
    return names


def _parse_name_list(text: str, source: str) -> frozenset[str]:
    names = set()
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        stem = entry.removesuffix(_SUFFIX)
        if _NAME.fullmatch(stem) is None:
            raise ValueError(f"{source}:{number}: not an NTU sample name: {entry!r}")
        names.add(stem)
    return frozenset(names)
