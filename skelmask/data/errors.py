"""Errors and read reports shared by every skeleton reader.

Readers never drop a file silently: a file that cannot be used raises a
``SkeletonFileError`` naming the file (and the line, where there is one), or, with
``on_error="skip"``, is listed in the ``ReadReport`` that the reader returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "BEYOND_FLOAT32",
    "OnError",
    "ReadReport",
    "SkeletonFileError",
    "check_on_error",
    "to_float32",
]

OnError = Literal["raise", "skip"]

BEYOND_FLOAT32 = "beyond the float32 range (|value| > 3.4e38)"
"""Why a coordinate that is finite as text or float64 is refused: it would become inf."""


def to_float32(values: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """``values`` as float32, silently: values beyond its range become ``±inf``.

    Readers convert parsed float64 coordinates with this and then check ``np.isfinite`` on the
    result, so ``1e39`` is refused like ``inf`` instead of reaching a prepared file.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(values, dtype=np.float32)


class SkeletonFileError(ValueError):
    """A skeleton file that cannot be read, with the file and, where known, the 1-based line.

    Args:
        path: The file.
        reason: What is wrong, e.g. ``"joint line has 11 values; expected 12"``.
        line: 1-based line number of the offending line, or ``None``.

    Examples:
        >>> str(SkeletonFileError("S001.skeleton", "truncated: expected 25 joint lines", line=7))
        'S001.skeleton:7: truncated: expected 25 joint lines'
    """

    def __init__(self, path: str | Path, reason: str, *, line: int | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        self.line = line
        location = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{location}: {reason}")

    def __reduce__(self) -> tuple[object, tuple[str, str, int | None]]:
        # The keyword-only ``line`` defeats BaseException's default pickling, and readers send
        # these errors back from worker processes.
        return _rebuild_file_error, (self.path, self.reason, self.line)


def _rebuild_file_error(path: str, reason: str, line: int | None) -> SkeletonFileError:
    return SkeletonFileError(path, reason, line=line)


def check_on_error(on_error: object) -> None:
    """Raises ``ValueError`` unless ``on_error`` is ``"raise"`` or ``"skip"``."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")


@dataclass
class ReadReport:
    """What a reader read, cleaned and rejected; nothing is left out.

    Attributes:
        read: Files (or records of a container file) examined.
        kept: Samples produced.
        rejected: One line per file or record that was not used, ``"<name>: <reason>"``.
        cleaned: One line per sample that was changed by cleaning, ``"<name>: <what>"`` (frames
            dropped, bodies discarded, sequence resampled).
    """

    read: int = 0
    kept: int = 0
    rejected: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)

    def add_error(self, error: SkeletonFileError, on_error: OnError) -> None:
        """Raises ``error`` when ``on_error == "raise"``; otherwise records it as rejected."""
        if on_error == "raise":
            raise error
        self.rejected.append(str(error))

    def merge(self, other: ReadReport) -> ReadReport:
        """The sum of two reports (e.g. from parallel workers), as a new report."""
        return ReadReport(
            read=self.read + other.read,
            kept=self.kept + other.kept,
            rejected=[*self.rejected, *other.rejected],
            cleaned=[*self.cleaned, *other.cleaned],
        )

    def summary(self, *, limit: int = 20) -> str:
        """A human-readable summary listing up to ``limit`` rejected and cleaned entries each.

        Examples:
            >>> report = ReadReport(read=3, kept=2, rejected=["a.txt: empty file"])
            >>> print(report.summary())
            read 3, kept 2, rejected 1, cleaned 0
            rejected:
              a.txt: empty file
        """
        counts = (
            f"read {self.read}, kept {self.kept}, rejected {len(self.rejected)}, "
            f"cleaned {len(self.cleaned)}"
        )
        lines = [counts]
        for title, entries in (("rejected", self.rejected), ("cleaned", self.cleaned)):
            if not entries:
                continue
            lines.append(f"{title}:")
            lines.extend(f"  {entry}" for entry in entries[:limit])
            if len(entries) > limit:
                lines.append(f"  ... and {len(entries) - limit} more")
        return "\n".join(lines)
