"""Progress reports: a tqdm bar on a terminal, plain periodic lines in a log file."""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import TextIO, TypeVar

__all__ = ["progress"]

_T = TypeVar("_T")


def progress(
    iterable: Iterable[_T],
    *,
    total: int | None = None,
    desc: str = "",
    enabled: bool = True,
    file: TextIO | None = None,
    interval: float = 30.0,
) -> Iterable[_T]:
    """Reports progress through ``iterable`` on ``file`` (standard error by default).

    On a terminal this is a tqdm bar when tqdm is installed (``skelmask[train]``) and nothing
    otherwise. Anywhere else (a log file, a pipe, a batch job's output) a bar would write a
    carriage-return line per step, so plain lines are printed instead: at most one every
    ``interval`` seconds, ``desc: done/total (percent) elapsed``, and one when the iteration
    ends.

    Args:
        iterable: What to iterate over.
        total: Length, when ``iterable`` has no ``len``.
        desc: Label of the bar or the lines.
        enabled: ``False`` (e.g. on ranks other than 0) returns ``iterable`` unchanged.
        file: Where to report; ``None`` is ``sys.stderr`` at the time of the call.
        interval: Least number of seconds between two plain lines.

    Returns:
        An iterable over the same items.

    Examples:
        >>> import io
        >>> from skelmask.training import progress
        >>> log = io.StringIO()  # not a terminal: plain lines
        >>> list(progress(range(3), desc="epoch 0", file=log))
        [0, 1, 2]
        >>> log.getvalue().startswith("epoch 0: 3/3 done in ")
        True
        >>> list(progress(range(3), enabled=False))
        [0, 1, 2]
    """
    if not enabled:
        return iterable
    stream = sys.stderr if file is None else file
    if not _is_terminal(stream):
        return _plain_lines(iterable, total, desc, stream, interval)
    try:
        # Imported lazily: tqdm is optional and `import skelmask` must not load it.
        tqdm = importlib.import_module("tqdm")
    except ImportError:
        return iterable
    bar: Iterable[_T] = tqdm.tqdm(iterable, total=total, desc=desc, leave=False, file=stream)
    return bar


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def _plain_lines(
    iterable: Iterable[_T], total: int | None, desc: str, stream: TextIO, interval: float
) -> Iterator[_T]:
    if total is None:
        total = len(iterable) if isinstance(iterable, Sized) else None
    of_total = "" if total is None else f"/{total}"
    label = f"{desc}: " if desc else ""
    started = last = time.monotonic()
    done = 0
    for item in iterable:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= interval:
            share = "" if not total else f" ({100 * done / total:.0f}%)"
            print(f"{label}{done}{of_total}{share} {now - started:.0f}s", file=stream, flush=True)
            last = now
    print(
        f"{label}{done}{of_total} done in {time.monotonic() - started:.1f}s",
        file=stream,
        flush=True,
    )
