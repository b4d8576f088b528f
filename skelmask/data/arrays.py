"""In-memory skeleton datasets: one padded array, labels, valid lengths and the layout name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from skelmask._checks import as_integer
from skelmask.layouts import get_layout

__all__ = ["SkeletonArrays"]

# Bytes of ``data`` scanned at once by ``check_finite``: bounds its temporaries.
_SCAN_BYTES = 1 << 26
_LISTED = 10


@dataclass
class SkeletonArrays:
    """A labelled skeleton dataset held in memory, in the pyskl / ST-GCN ``(N, C, T, V, M)`` order.

    Sample ``n`` has ``lengths[n]`` valid frames ``data[n, :, :lengths[n]]``; the frames after them
    are zero padding. ``__post_init__`` validates the fields and converts ``data`` to float32 and
    ``labels`` and ``lengths`` to int64 (it does not scan the padding for non-zero values).

    Attributes:
        data: Coordinates, float32 of shape ``(N, C, T, V, M)``: samples, channels (xyz, or 2D
            plus a score), frames, joints, persons.
        labels: Class of every sample, int64 of shape ``(N,)`` in ``[0, num_classes)``.
        lengths: Valid frames of every sample, int64 of shape ``(N,)`` in ``[1, T]``.
        layout: Name of a registered layout (see ``skelmask.get_layout``) with ``V`` joints.
        num_classes: Number of classes, at least 1.
        names: One identifier per sample (a file name or a generated id), ``N`` entries.

    Raises:
        ValueError: If ``data`` is not 5-D or has an empty channel, frame, joint or person axis;
            if ``labels``, ``lengths`` or ``names`` do not have ``N`` entries; if a label is
            outside ``[0, num_classes)`` or a length outside ``[1, T]``; or if ``V`` differs from
            the layout's joint count.
        TypeError: If ``labels`` or ``lengths`` do not hold integers, or ``num_classes`` is not
            an int.
        KeyError: If ``layout`` is not a registered layout name.

    Examples:
        >>> import numpy as np
        >>> from skelmask.data import SkeletonArrays
        >>> arrays = SkeletonArrays(
        ...     data=np.zeros((2, 3, 8, 20, 1)),
        ...     labels=np.array([0, 1]),
        ...     lengths=np.array([8, 5]),
        ...     layout="msr-action3d",
        ...     num_classes=2,
        ...     names=["a", "b"],
        ... )
        >>> len(arrays), arrays.data.dtype, arrays.subset([1]).names
        (2, dtype('float32'), ['b'])
    """

    data: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64]
    layout: str
    num_classes: int
    names: list[str]
    # Set by check_finite once the scan passed, so that it runs once per dataset.
    _finite: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data, dtype=np.float32)
        if self.data.ndim != 5:
            raise ValueError(
                f"data must have 5 dimensions (N, C, T, V, M), got {self.data.ndim} with shape "
                f"{self.data.shape}"
            )
        num_samples, channels, frames, joints, persons = self.data.shape
        if min(channels, frames, joints, persons) < 1:
            raise ValueError(
                f"data must have at least one channel, frame, joint and person, got shape "
                f"(N, C, T, V, M) = {self.data.shape}"
            )
        self.labels = _integer_vector(self.labels, "labels", num_samples)
        self.lengths = _integer_vector(self.lengths, "lengths", num_samples)
        num_classes = as_integer(self.num_classes)
        if num_classes is None:
            raise TypeError(f"num_classes must be an int, got {type(self.num_classes).__name__}")
        self.num_classes = num_classes  # a Python int, also from numpy.int64
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {self.num_classes}")
        bad_labels = self.labels[(self.labels < 0) | (self.labels >= self.num_classes)]
        if bad_labels.size:
            raise ValueError(
                f"labels must lie in [0, num_classes) = [0, {self.num_classes}), got "
                f"{sorted(set(bad_labels.tolist()))[:10]}"
            )
        bad_lengths = self.lengths[(self.lengths < 1) | (self.lengths > frames)]
        if bad_lengths.size:
            raise ValueError(
                f"lengths must lie in [1, T] = [1, {frames}], got "
                f"{sorted(set(bad_lengths.tolist()))[:10]}"
            )
        expected_joints = get_layout(self.layout).num_joints
        if joints != expected_joints:
            raise ValueError(
                f"data has V = {joints} joints but layout {self.layout!r} has {expected_joints}"
            )
        self.names = [str(name) for name in self.names]
        if len(self.names) != num_samples:
            raise ValueError(f"names must have N = {num_samples} entries, got {len(self.names)}")

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def check_finite(self) -> None:
        """Raises ``ValueError`` naming the samples whose ``data`` holds NaN or inf.

        ``data`` is scanned once, vectorised, in chunks of about 64 MiB (a memory-mapped file is
        read through but not held in memory). A passed check is remembered, so later calls (by
        every ``SkeletonDataset`` built on these arrays, or on a ``subset`` of them) return at
        once; coordinates changed in place afterwards are not scanned again.

        Raises:
            ValueError: Listing the count and the first 10 bad samples by index and name.

        Examples:
            >>> import numpy as np
            >>> from skelmask.data import SkeletonArrays
            >>> data = np.zeros((3, 3, 4, 20, 1))
            >>> data[1, 0, 2, 5, 0] = np.nan
            >>> arrays = SkeletonArrays(
            ...     data, np.zeros(3, int), np.full(3, 4), "msr-action3d", 1, ["a", "b", "c"]
            ... )
            >>> arrays.check_finite()
            Traceback (most recent call last):
            ...
            ValueError: data holds NaN or inf in 1 of 3 samples: index 1 ('b')
        """
        if self._finite:
            return
        bad = _non_finite_samples(self.data)
        if bad.size:
            listed = ", ".join(f"{index} ({self.names[index]!r})" for index in bad[:_LISTED])
            more = f" and {bad.size - _LISTED} more" if bad.size > _LISTED else ""
            raise ValueError(
                f"data holds NaN or inf in {bad.size} of {len(self)} samples: index {listed}{more}"
            )
        self._finite = True

    def subset(self, indices: Sequence[int] | npt.NDArray[np.integer]) -> SkeletonArrays:
        """The samples at ``indices`` (e.g. from ``labelled_subset``), as a new dataset.

        Args:
            indices: Integer indices into the ``N`` samples, shape ``(K,)``.

        Returns:
            A dataset of ``K`` samples with the same frame count ``T``, layout and classes.
        """
        index = np.asarray(indices, dtype=np.int64).reshape(-1)
        subset = SkeletonArrays(
            data=self.data[index],
            labels=self.labels[index],
            lengths=self.lengths[index],
            layout=self.layout,
            num_classes=self.num_classes,
            names=[self.names[i] for i in index.tolist()],
        )
        subset._finite = self._finite
        return subset


def _non_finite_samples(data: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """Indices of the samples of ``data`` ``(N, ...)`` holding NaN or inf, scanned in chunks."""
    sample_bytes = max(1, data[0].nbytes) if len(data) else 1
    rows = max(1, _SCAN_BYTES // sample_bytes)
    bad = [
        begin + np.flatnonzero(~np.isfinite(chunk.reshape(len(chunk), -1)).all(axis=1))
        for begin in range(0, len(data), rows)
        for chunk in (data[begin : begin + rows],)
    ]
    return np.concatenate(bad).astype(np.int64) if bad else np.zeros(0, dtype=np.int64)


def _integer_vector(values: npt.ArrayLike, name: str, num_samples: int) -> npt.NDArray[np.int64]:
    array = np.asarray(values)
    if array.shape != (num_samples,):
        raise ValueError(f"{name} must have shape (N,) = ({num_samples},), got {array.shape}")
    if num_samples and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64)
