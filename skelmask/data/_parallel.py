"""Applying a per-file reader to many files, in worker processes when asked, with a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from skelmask._progress import progress

__all__ = ["map_files"]

_In = TypeVar("_In")
_Out = TypeVar("_Out")


def map_files(
    function: Callable[[_In], _Out],
    items: Sequence[_In],
    *,
    workers: int = 1,
    show_progress: bool = False,
    desc: str = "",
) -> list[_Out]:
    """``[function(item) for item in items]``, in ``workers`` processes when ``workers > 1``.

    Results come back in the order of ``items`` whatever the number of workers, so a prepared
    file does not depend on it. ``function`` must be a module-level function (it is pickled to the
    workers) that reports a bad file by returning a value rather than raising, so that one corrupt
    file does not abort the others.

    Args:
        function: Reads one item.
        items: The items (usually paths), ``N`` of them.
        workers: Worker processes, at least 1; 1 runs in this process.
        show_progress: Show a tqdm bar (when tqdm is installed).
        desc: Bar label.

    Returns:
        ``N`` results, in order.

    Raises:
        ValueError: If ``workers < 1``.
    """
    if isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    if workers == 1 or len(items) <= 1:
        return [
            function(item)
            for item in progress(items, total=len(items), desc=desc, enabled=show_progress)
        ]
    chunksize = max(1, len(items) // (workers * 8))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = pool.map(function, items, chunksize=chunksize)
        return list(progress(results, total=len(items), desc=desc, enabled=show_progress))
