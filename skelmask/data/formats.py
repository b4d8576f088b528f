"""Readers for two prepared-dataset formats: MAMP / CTR-GCN ``.npz`` files and pyskl pickles.

**MAMP / CTR-GCN npz** (used by MAMP, HA-CM and CTR-GCN-derived repositories): arrays
``x_train`` ``(N, T, D)``, one-hot ``y_train`` ``(N, num_classes)`` and the same for
``x_test`` / ``y_test``. Every frame's ``D = M·V·3`` values are ordered person, joint, ``x y z``
(``D = 150`` = 2 persons × 25 joints × 3 for NTU RGB+D). The arrays are already preprocessed
(centred, padded to ``T``, usually 300), so ``load_npz`` only reorders them to
``(N, 3, T, V, M)``.

**pyskl / mmaction2 annotation pickles** (``ntu60_3danno.pkl``, ``ntu60_hrnet.pkl``,
``ntu120_2d.pkl`` …): a dict ``{"split": {name: [frame_dir, ...]}, "annotations": [...]}``
whose annotations are dicts with ``frame_dir``, ``label`` (0-based), ``total_frames``,
``keypoint`` ``(M, T, V, C)`` and, for 2D poses, ``keypoint_score`` ``(M, T, V)``.
``load_pyskl`` reads them without mmcv.

Pickle executes code: unpickling calls whatever callables the file names, so a crafted file
can run arbitrary commands. ``load_pyskl`` therefore uses a restricted unpickler that only
resolves the few globals a pyskl file needs (numpy's array, dtype and scalar reconstruction
functions and ``_codecs.encode``, which protocols 0–2 use for raw bytes) and a handful of
harmless builtin containers; any other global is refused with a ``SkeletonFileError``.
"""

from __future__ import annotations

import io
import math
import pickle
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from skelmask._checks import as_integer
from skelmask.data._npy import NpyHeader, npy_member, open_archive, read_array, read_rows
from skelmask.data.arrays import SkeletonArrays
from skelmask.data.errors import (
    OnError,
    ReadReport,
    SkeletonFileError,
    check_on_error,
    to_float32,
)
from skelmask.layouts import get_layout

__all__ = ["load_npz", "load_pyskl"]

_NPZ_SPLITS = ("train", "test")
# Bytes of x read at once: bounds the temporaries (float32 copy, masks) whatever the file size.
_NPZ_CHUNK_BYTES = 1 << 24
_LAYOUT_BY_JOINTS = {25: "nturgb+d", 17: "coco", 18: "openpose"}


def load_npz(
    path: str | Path, *, layout: str = "nturgb+d", on_error: OnError = "raise"
) -> tuple[dict[str, SkeletonArrays], ReadReport]:
    """Loads a MAMP / CTR-GCN ``.npz`` file (``x_train``, ``y_train``, ``x_test``, ``y_test``).

    ``x_<split>`` is streamed from the archive in chunks of samples straight into the output, so
    the peak memory is about one copy of the output (``N·3·T·V·M`` float32) plus the labels;
    every member's ``.npy`` header is checked against the bytes the archive stores before
    anything is allocated, and no member is ever unpickled.

    Args:
        path: The ``.npz`` file. Either split may be absent, but each ``x_<split>`` needs its
            ``y_<split>`` and at least one split must be present.
        layout: Registered layout of the joints; ``D`` must equal ``M·V·3`` for its ``V``.
        on_error: For a bad sample (a non-finite value or one beyond the float32 range, all
            zeros, a ``y`` row that is not one-hot): ``"raise"`` the ``SkeletonFileError``, or
            ``"skip"`` it and list it in the report. A bad file (not a zip archive, a member
            that is truncated, corrupt, claims more bytes than are stored or holds Python
            objects, missing or mis-shaped arrays) always raises.

    Returns:
        ``({"train": ..., "test": ...}, report)`` for the splits present: ``SkeletonArrays``
        with ``data`` of shape ``(N, 3, T, V, M)`` float32, ``num_classes`` the width of ``y``,
        ``lengths`` the last frame with a non-zero value plus one, names ``"<split>_<index>"``
        (index into ``x_<split>``).

    Raises:
        SkeletonFileError: For a bad file, and with ``on_error="raise"`` for the first bad
            sample; the message names the array key and the sample index.
        MemoryError: Naming the file and the size, if the output cannot be allocated.
        ValueError: If ``on_error`` is invalid.
        KeyError: If ``layout`` is not registered.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "ntu.npz"
        >>> x = np.zeros((2, 300, 150), dtype=np.float32)
        >>> x[:, :40] = 1.0
        >>> np.savez(path, x_train=x, y_train=np.eye(60)[[3, 7]], x_test=x, y_test=np.eye(60)[:2])
        >>> splits, report = load_npz(path)
        >>> splits["train"].data.shape, splits["train"].labels.tolist(), splits["test"].lengths
        ((2, 3, 300, 25, 2), [3, 7], array([40, 40]))
    """
    check_on_error(on_error)
    num_joints = get_layout(layout).num_joints
    report = ReadReport()
    result: dict[str, SkeletonArrays] = {}
    with open_archive(path) as archive:
        members = {name.removesuffix(".npy"): name for name in archive.namelist()}
        present = [
            split for split in _NPZ_SPLITS if f"x_{split}" in members or f"y_{split}" in members
        ]
        if not present:
            raise SkeletonFileError(
                path, f"no x_train/y_train or x_test/y_test arrays; found keys {sorted(members)}"
            )
        num_classes: int | None = None
        for split in present:
            x_key, y_key = f"x_{split}", f"y_{split}"
            for key in (x_key, y_key):
                if key not in members:
                    raise SkeletonFileError(
                        path, f"{key} is missing (found keys {sorted(members)})"
                    )
            with npy_member(path, archive, members[y_key]) as (y_header, stream):
                y = read_array(path, members[y_key], y_header, stream)
            with npy_member(path, archive, members[x_key]) as (x_header, stream):
                persons = _npz_persons(path, x_key, x_header, num_joints, layout)
                _check_npz_labels(path, y_key, y, x_header.shape[0], num_classes)
                num_classes = int(y.shape[1])
                result[split] = _npz_split(
                    _NpzSplit(path, split, members[x_key], x_header, stream, y),
                    num_joints,
                    persons,
                    layout,
                    on_error,
                    report,
                )
    return result, report


def _npz_persons(path: str | Path, key: str, x: NpyHeader, joints: int, layout: str) -> int:
    if len(x.shape) != 3 or min(x.shape[1:]) < 1:
        raise SkeletonFileError(path, f"{key} must have shape (N, T, M·V·3), got {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise SkeletonFileError(path, f"{key} must hold real numbers, got dtype {x.dtype}")
    values = x.shape[2]
    if values % (joints * 3):
        raise SkeletonFileError(
            path,
            f"{key} has {values} values per frame, which is not M·V·3 for layout {layout!r} "
            f"with V = {joints} joints",
        )
    return int(values // (joints * 3))


def _check_npz_labels(
    path: str | Path, key: str, y: npt.NDArray[Any], samples: int, num_classes: int | None
) -> None:
    if not np.issubdtype(y.dtype, np.number) and y.dtype != np.bool_:
        raise SkeletonFileError(path, f"{key} must hold numbers, got dtype {y.dtype}")
    if y.ndim != 2 or len(y) != samples:
        raise SkeletonFileError(
            path, f"{key} must have shape (N, num_classes) with N = {samples}, got {y.shape}"
        )
    if num_classes is not None and y.shape[1] != num_classes:
        raise SkeletonFileError(
            path, f"{key} has {y.shape[1]} classes but the other split has {num_classes}"
        )
    if y.shape[1] < 1:
        raise SkeletonFileError(path, f"{key} has no class column, shape {y.shape}")


class _NpzSplit(NamedTuple):
    """One split of an npz file: ``x`` as an open member stream, ``y`` in memory."""

    path: str | Path
    split: str
    member: str
    x: NpyHeader
    stream: IO[bytes]
    y: npt.NDArray[Any]


def _npz_split(
    source: _NpzSplit,
    joints: int,
    persons: int,
    layout: str,
    on_error: OnError,
    report: ReadReport,
) -> SkeletonArrays:
    """Validates one split chunk by chunk, writing kept samples to ``(N, 3, T, V, M)`` in place."""
    path, split, y = source.path, source.split, source.y
    num_samples, frames, values = source.x.shape
    data = _allocate(path, source.member, (num_samples, 3, frames, joints, persons))
    whole = (
        read_array(path, source.member, source.x, source.stream)
        if source.x.fortran_order  # rare: cannot be streamed by samples
        else None
    )
    rows = max(1, _NPZ_CHUNK_BYTES // (frames * values * source.x.dtype.itemsize))
    keep: list[int] = []
    lengths: list[int] = []
    for begin in range(0, num_samples, rows):
        count = min(rows, num_samples - begin)
        raw = (
            whole[begin : begin + count]
            if whole is not None
            else read_rows(path, source.member, source.x, source.stream, count)
        )
        xs = to_float32(raw)  # values beyond float32 become inf and are rejected below
        del raw
        ys = y[begin : begin + count]
        finite = np.asarray(np.isfinite(xs).all(axis=(1, 2)))
        frame_used = np.asarray((xs != 0.0).any(axis=2))  # (n, T)
        nonzero = np.asarray(frame_used.any(axis=1))
        last = frames - np.argmax(frame_used[:, ::-1], axis=1)
        with np.errstate(invalid="ignore"):
            one_hot = np.asarray(((ys == 0) | (ys == 1)).all(axis=1) & (ys.sum(axis=1) == 1))
        good: list[int] = []
        for offset in range(count):
            index = begin + offset
            report.read += 1
            if not finite[offset]:
                reason = (
                    f"x_{split}[{index}]: non-finite value (NaN, inf, or beyond the float32 range)"
                )
            elif not one_hot[offset]:
                reason = f"y_{split}[{index}]: row is not one-hot: {ys[offset].tolist()[:10]}"
            elif not nonzero[offset]:
                reason = f"x_{split}[{index}]: sample is all zeros"
            else:
                good.append(offset)
                continue
            report.add_error(SkeletonFileError(path, reason), on_error)
        first = len(keep)
        kept_rows = xs if len(good) == count else xs[good]  # no copy when every sample is kept
        data[first : first + len(good)] = kept_rows.reshape(
            len(good), frames, persons, joints, 3
        ).transpose(0, 4, 1, 3, 2)
        del kept_rows
        keep.extend(begin + offset for offset in good)
        lengths.extend(int(last[offset]) for offset in good)
    if len(keep) < num_samples:  # shrink in place: a copy would double the peak
        data.resize((len(keep), *data.shape[1:]), refcheck=False)
    report.kept += len(keep)
    kept = np.asarray(keep, dtype=np.int64)
    return SkeletonArrays(
        data=data,
        labels=np.argmax(np.asarray(y[kept]), axis=1).astype(np.int64),
        lengths=np.asarray(lengths, dtype=np.int64),
        layout=layout,
        num_classes=int(y.shape[1]),
        names=[f"{split}_{i}" for i in keep],
    )


def _allocate(path: str | Path, member: str, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    try:
        return np.empty(shape, dtype=np.float32)
    except MemoryError as error:
        size = math.prod(shape) * 4 / 2**30
        raise MemoryError(
            f"{path}: the output of {member}, float32 {shape}, needs {size:.1f} GiB, more than "
            "is available"
        ) from error


def load_pyskl(
    path: str | Path,
    *,
    layout: str | None = None,
    num_classes: int | None = None,
    max_frames: int | None = None,
    on_error: OnError = "raise",
) -> tuple[dict[str, SkeletonArrays], ReadReport]:
    """Loads a pyskl / mmaction2 skeleton annotation pickle, one dataset per split.

    Keypoints stored as float16 (pyskl's NTU 3D files) are returned as float32. 2D annotations
    with a ``keypoint_score`` become ``C = 3`` channels ``(x, y, score)``; 3D ones keep
    ``(x, y, z)``. Samples are zero-padded to the most frames ``T`` (or resampled to
    ``max_frames``) and the most persons ``M`` of the annotations listed in a split, so every
    split shares ``(C, T, V, M)``. Each sample is converted straight into the output, so the
    peak memory is the unpickled file plus the output arrays.

    pyskl stores no class count. Without ``num_classes`` it is the largest label plus one, and
    the labels of the usable annotations must then cover ``0 .. num_classes - 1`` without a gap
    (one corrupt label such as ``10**12`` would otherwise make a trillion classes); a file
    holding a subset of its dataset's classes needs ``num_classes``.

    Args:
        path: The ``.pkl`` file.
        layout: Registered layout name; ``None`` infers it from ``V`` (25 → ``"nturgb+d"``,
            17 → ``"coco"``, 18 → ``"openpose"``).
        num_classes: The dataset's class count, at least 1; labels must lie in
            ``[0, num_classes)``. ``None`` infers it (see above).
        max_frames: Frames ``T`` of the output, at least 1: longer samples are resampled
            uniformly (nearest frames) and listed in ``report.cleaned``. ``None`` pads to the
            longest sample.
        on_error: For a bad annotation (a keypoint shape that disagrees with ``total_frames``,
            a missing or bad field, a bad label, keypoints or scores that are not real numbers
            (complex, text, objects), a non-finite value or one beyond the float32 range, a
            joint or channel count unlike the others, a repeated ``frame_dir``) or a
            ``frame_dir`` listed in a split but absent: ``"raise"`` the ``SkeletonFileError``,
            or ``"skip"`` it and list it in the report. A bad file (unreadable, a forbidden
            global, no ``split`` or ``annotations``, labels with a gap when ``num_classes`` is
            not given) always raises. Annotations listed in no split are reported as not
            used.

    Returns:
        ``({split name: arrays}, report)`` keyed by pyskl's split names (e.g. ``"xsub_train"``,
        ``"xsub_val"``): ``SkeletonArrays`` with ``data`` of shape ``(N, C, T, V, M)``
        float32, samples in the split's order, names the ``frame_dir`` ids, ``lengths`` the
        ``total_frames``. The report counts annotations read and samples kept over all splits
        (an annotation listed in two splits counts twice).

    Raises:
        SkeletonFileError: For a bad file, and with ``on_error="raise"`` for the first bad
            annotation (the message names its ``frame_dir``).
        ValueError: If ``on_error``, ``num_classes`` or ``max_frames`` is invalid.
        KeyError: If ``layout`` is not registered.

    Examples:
        >>> import pickle, tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "toy.pkl"
        >>> keypoint = np.ones((1, 30, 25, 3), dtype=np.float16)
        >>> annotation = dict(frame_dir="S001C001P001R001A001", label=0, total_frames=30)
        >>> annotation["keypoint"] = keypoint
        >>> toy = dict(split={"xsub_train": ["S001C001P001R001A001"]}, annotations=[annotation])
        >>> _ = path.write_bytes(pickle.dumps(toy))
        >>> splits, report = load_pyskl(path)
        >>> arrays = splits["xsub_train"]
        >>> arrays.data.shape, arrays.data.dtype, arrays.layout
        ((1, 3, 30, 25, 1), dtype('float32'), 'nturgb+d')
    """
    check_on_error(on_error)
    num_classes = _check_optional_count(num_classes, "num_classes")
    max_frames = _check_optional_count(max_frames, "max_frames")
    content = _unpickle(path)
    if not isinstance(content, Mapping) or not {"split", "annotations"} <= content.keys():
        found = sorted(map(str, content.keys())) if isinstance(content, Mapping) else None
        raise SkeletonFileError(
            path,
            f"expected a dict with 'split' and 'annotations', got {type(content).__name__}"
            + (f" with keys {found}" if found is not None else ""),
        )
    splits, annotations = content["split"], content["annotations"]
    if not isinstance(splits, Mapping) or not all(
        isinstance(ids, (list, tuple)) and all(isinstance(i, str) for i in ids)
        for ids in splits.values()
    ):
        raise SkeletonFileError(path, "'split' must map split names to lists of frame_dir strings")
    if not isinstance(annotations, (list, tuple)):
        raise SkeletonFileError(
            path, f"'annotations' must be a list, got {type(annotations).__name__}"
        )
    report = ReadReport(read=len(annotations))
    joints = None if layout is None else get_layout(layout).num_joints
    samples, rejected = _read_annotations(path, annotations, joints, num_classes, on_error, report)
    if num_classes is None:
        num_classes = _inferred_class_count(path, samples.values())
    if layout is None:
        layout = _infer_layout(path, next(iter(samples.values()), None))
    members: dict[str, list[_PysklSample]] = {}
    for name, ids in splits.items():
        members[str(name)] = []
        for frame_dir in ids:
            if frame_dir in samples:
                members[str(name)].append(samples[frame_dir])
            elif frame_dir not in rejected:
                absent = SkeletonFileError(
                    path, f"{frame_dir!r}: listed in split {name!r} but has no annotation"
                )
                report.add_error(absent, on_error)
    listed = {sample.frame_dir for group in members.values() for sample in group}
    report.rejected.extend(
        f"{frame_dir}: listed in no split; not used"
        for frame_dir in samples
        if frame_dir not in listed
    )
    used = [samples[frame_dir] for frame_dir in samples if frame_dir in listed]
    longest = max((sample.frames for sample in used), default=1)
    if max_frames is not None:
        report.cleaned.extend(
            f"{sample.frame_dir}: resampled {sample.frames} frames to {max_frames}"
            for sample in used
            if sample.frames > max_frames
        )
    first = next(iter(samples.values()), None)
    shape = (
        1 if first is None else first.channels,
        longest if max_frames is None else max_frames,
        get_layout(layout).num_joints,
        max((sample.keypoint.shape[0] for sample in used), default=1),
    )
    result = {
        name: _pyskl_arrays(group, shape, layout, num_classes) for name, group in members.items()
    }
    report.kept = sum(len(arrays) for arrays in result.values())
    return result, report


def _check_optional_count(value: object, name: str) -> int | None:
    if value is None:
        return None
    number = as_integer(value)
    if number is None or number < 1:
        raise ValueError(f"{name} must be None or an int >= 1, got {value!r}")
    return number


def _inferred_class_count(path: str | Path, samples: Iterable[_PysklSample]) -> int:
    """The largest label plus one, after checking the labels leave no class out."""
    labels = sorted({sample.label for sample in samples})
    if not labels:
        return 1
    count = labels[-1] + 1
    if len(labels) != count:
        raise SkeletonFileError(
            path,
            f"labels must cover 0..{count - 1} without a gap when num_classes is not given "
            f"(pyskl stores no class count, so it would be {count}); the file holds "
            f"{len(labels)} distinct labels: {_ranges(labels)}. Pass num_classes "
            "(skelmask prepare pyskl --num-classes) if it holds a subset of its classes",
        )
    return count


def _ranges(values: Sequence[int], *, limit: int = 6) -> str:
    """Sorted distinct integers as ``"0-59, 1000000000000"``, at most ``limit`` ranges."""
    ranges: list[list[int]] = []
    for value in values:
        if ranges and value == ranges[-1][1] + 1:
            ranges[-1][1] = value
        else:
            ranges.append([value, value])
    text = [str(low) if low == high else f"{low}-{high}" for low, high in ranges[:limit]]
    if len(ranges) > limit:
        text.append(f"… ({len(ranges) - limit} more ranges)")
    return ", ".join(text)


def _read_annotations(
    path: str | Path,
    annotations: Sequence[object],
    joints: int | None,
    num_classes: int | None,
    on_error: OnError,
    report: ReadReport,
) -> tuple[dict[str, _PysklSample], set[str]]:
    """The valid annotations by ``frame_dir``, and the ``frame_dir`` of every rejected one."""
    samples: dict[str, _PysklSample] = {}
    rejected: set[str] = set()
    for position, annotation in enumerate(annotations):
        try:
            sample = _pyskl_sample(path, position, annotation, joints, num_classes)
            if sample.frame_dir in samples:
                raise SkeletonFileError(path, f"{sample.frame_dir!r}: frame_dir appears twice")
            if samples:
                _check_like(path, sample, next(iter(samples.values())))
        except SkeletonFileError as error:
            report.add_error(error, on_error)
            if isinstance(annotation, Mapping) and isinstance(annotation.get("frame_dir"), str):
                rejected.add(annotation["frame_dir"])
            continue
        samples[sample.frame_dir] = sample
    return samples, rejected


class _PysklSample(NamedTuple):
    frame_dir: str
    label: int
    # As stored in the pickle (converted only when copied into the output, to save memory):
    keypoint: npt.NDArray[Any]  # (M, T, V, C) real numbers
    score: npt.NDArray[Any] | None  # (M, T, V), or None

    @property
    def frames(self) -> int:
        return int(self.keypoint.shape[1])

    @property
    def channels(self) -> int:
        """``C``, plus one for the score."""
        return int(self.keypoint.shape[3]) + (self.score is not None)


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals in ``_ALLOWED_GLOBALS``; see the module docstring for why."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[module, name]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not allowed in a skeleton annotation pickle"
            ) from None


def _allowed_globals() -> dict[tuple[str, str], Any]:
    # The callables come from numpy's own pickling (not from imports of numpy's private modules),
    # so they are the right ones on numpy 1 and 2; files written by numpy 1 name "numpy.core",
    # numpy 2 writes "numpy._core", and both are mapped without importing either name.
    array = np.zeros(1, dtype=np.float32)
    reconstruct = array.__reduce__()[0]
    from_buffer = array.__reduce_ex__(5)[0]
    scalar = np.float32(0).__reduce__()[0]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _codecs_encode,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[f"{core}.multiarray", "_reconstruct"] = reconstruct
        allowed[f"{core}.multiarray", "scalar"] = scalar
        allowed[f"{core}.numeric", "_frombuffer"] = from_buffer
    for builtin in (set, frozenset, bytearray, complex, slice):
        allowed["builtins", builtin.__name__] = builtin
    return allowed


def _codecs_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` for the text-to-bytes calls that pickle protocols 0–2 emit."""
    return text.encode(encoding, errors)


_ALLOWED_GLOBALS = _allowed_globals()
# What damaged pickle bytes raise besides UnpicklingError (a FRAME length beyond the address
# space is an OverflowError, deep nesting a RecursionError, a bad memo index a KeyError, an
# unknown codec for _codecs.encode a LookupError).
_PICKLE_ERRORS = (
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    LookupError,
    OverflowError,
    RecursionError,
)


def _unpickle(path: str | Path) -> object:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise SkeletonFileError(path, f"cannot read the file ({error})") from error
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as error:
        raise SkeletonFileError(path, f"cannot unpickle: {error}") from error
    except _PICKLE_ERRORS as error:
        raise SkeletonFileError(path, f"not a valid pickle ({error})") from error
    except MemoryError as error:
        raise MemoryError(
            f"{path}: unpickling its {len(data)} bytes needs more memory than is available (a "
            "damaged length field can claim any size)"
        ) from error


def _pyskl_sample(
    path: str | Path,
    position: int,
    annotation: object,
    joints: int | None,
    num_classes: int | None,
) -> _PysklSample:
    """One validated annotation; raises ``SkeletonFileError`` naming its ``frame_dir``."""
    if not isinstance(annotation, Mapping):
        raise SkeletonFileError(
            path, f"annotations[{position}]: expected a dict, got {type(annotation).__name__}"
        )
    frame_dir = annotation.get("frame_dir")
    if not isinstance(frame_dir, str):
        raise SkeletonFileError(
            path, f"annotations[{position}]: frame_dir must be a string, got {frame_dir!r}"
        )

    def fail(reason: str) -> SkeletonFileError:
        return SkeletonFileError(path, f"{frame_dir!r}: {reason}")

    missing = [key for key in ("label", "total_frames", "keypoint") if key not in annotation]
    if missing:
        raise fail(f"missing {', '.join(missing)}")
    label, total_frames = annotation["label"], annotation["total_frames"]
    if not _is_int(label) or label < 0:
        raise fail(f"label must be an integer >= 0, got {label!r}")
    if num_classes is not None and label >= num_classes:
        raise fail(f"label {label} is outside [0, num_classes) = [0, {num_classes})")
    if not _is_int(total_frames) or total_frames < 1:
        raise fail(f"total_frames must be an integer >= 1, got {total_frames!r}")
    keypoint = annotation["keypoint"]
    if not isinstance(keypoint, np.ndarray) or keypoint.ndim != 4:
        shape = getattr(keypoint, "shape", type(keypoint).__name__)
        raise fail(f"keypoint must be an array (M, T, V, C), got {shape}")
    persons, frames, num_joints, channels = keypoint.shape
    if frames != total_frames:
        raise fail(f"keypoint has T = {frames} frames but total_frames = {total_frames}")
    if persons < 1 or channels not in (2, 3):
        raise fail(f"keypoint shape (M, T, V, C) = {keypoint.shape} needs M >= 1 and C 2 or 3")
    if joints is not None and num_joints != joints:
        raise fail(f"keypoint has V = {num_joints} joints, expected {joints}")
    score = annotation.get("keypoint_score")
    if score is not None:
        if channels != 2:
            raise fail(f"keypoint_score given for keypoints with C = {channels}; expected C = 2")
        if not isinstance(score, np.ndarray) or score.shape != keypoint.shape[:3]:
            shape = getattr(score, "shape", type(score).__name__)
            raise fail(
                f"keypoint_score must have shape (M, T, V) = {keypoint.shape[:3]}, got {shape}"
            )
    for array, key in ((keypoint, "keypoint"), (score, "keypoint_score")):
        # Real numbers only: a complex value would lose its imaginary part, text and objects
        # cannot be converted.
        if array is not None and array.dtype.kind not in "fiu":
            raise fail(f"{key} must hold real numbers, got dtype {array.dtype}")
    if not all(
        np.isfinite(to_float32(array)).all() for array in (keypoint, score) if array is not None
    ):
        raise fail(
            "keypoint or keypoint_score holds a non-finite value (NaN, inf, or beyond the float32 "
            "range)"
        )
    return _PysklSample(frame_dir, int(label), keypoint, score)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_like(path: str | Path, sample: _PysklSample, reference: _PysklSample) -> None:
    """Every annotation must share the joint and channel counts of the first kept one."""
    for count, expected, what in (
        (sample.keypoint.shape[2], reference.keypoint.shape[2], "joints V"),
        (sample.channels, reference.channels, "channels C"),
    ):
        if count != expected:
            raise SkeletonFileError(
                path,
                f"{sample.frame_dir!r}: {count} {what}, but {reference.frame_dir!r} has {expected}",
            )


def _infer_layout(path: str | Path, sample: _PysklSample | None) -> str:
    if sample is None:
        raise SkeletonFileError(path, "no usable annotation to infer the layout from; pass layout")
    joints = sample.keypoint.shape[2]
    if joints not in _LAYOUT_BY_JOINTS:
        raise SkeletonFileError(
            path,
            f"cannot infer the layout of V = {joints} joints (known: "
            f"{', '.join(f'{v} → {n!r}' for v, n in _LAYOUT_BY_JOINTS.items())}); pass layout",
        )
    return _LAYOUT_BY_JOINTS[joints]


def _pyskl_arrays(
    samples: Sequence[_PysklSample],
    shape: tuple[int, int, int, int],
    layout: str,
    num_classes: int,
) -> SkeletonArrays:
    """Stacks samples into ``(N, C, T, V, M)`` with ``shape = (C, T, V, M)``, zero-padded.

    A sample longer than ``T`` is resampled to ``T`` uniformly spaced frames (nearest frames).
    """
    data = np.zeros((len(samples), *shape), dtype=np.float32)
    frames = shape[1]
    lengths = []
    for n, sample in enumerate(samples):
        persons = sample.keypoint.shape[0]
        index: slice | npt.NDArray[np.int64] = slice(None)
        if sample.frames > frames:
            index = np.linspace(0, sample.frames - 1, frames).round().astype(np.int64)
        length = min(sample.frames, frames)
        target = data[n, :, :length, :, :persons]  # (C, L, V, M')
        # Assignment converts float16 / float64 / integers to float32 in place: no extra copy.
        target[: sample.keypoint.shape[3]] = sample.keypoint[:, index].transpose(3, 1, 2, 0)
        if sample.score is not None:
            target[-1] = sample.score[:, index].transpose(1, 2, 0)
        lengths.append(length)
    return SkeletonArrays(
        data=data,
        labels=np.array([sample.label for sample in samples], dtype=np.int64),
        lengths=np.array(lengths, dtype=np.int64),
        layout=layout,
        num_classes=num_classes,
        names=[sample.frame_dir for sample in samples],
    )
