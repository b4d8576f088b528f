"""Optional tqdm progress bars: used when tqdm is installed, silent otherwise."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TypeVar

__all__ = ["progress"]

_T = TypeVar("_T")


def progress(
    iterable: Iterable[_T], *, total: int | None = None, desc: str = "", enabled: bool = True
) -> Iterable[_T]:
    """Wraps ``iterable`` in a tqdm bar when tqdm is installed (``skelmask[train]``) and enabled.

    Args:
        iterable: What to iterate over.
        total: Length for the bar, when ``iterable`` has no ``len``.
        desc: Bar label.
        enabled: ``False`` (e.g. on ranks other than 0) returns ``iterable`` unchanged.

    Returns:
        An iterable over the same items.

    Examples:
        >>> from skelmask.training import progress
        >>> list(progress(range(3), enabled=False))
        [0, 1, 2]
    """
    if not enabled:
        return iterable
    try:
        # Imported lazily: tqdm is optional and `import skelmask` must not load it.
        tqdm = importlib.import_module("tqdm")
    except ImportError:
        return iterable
    bar: Iterable[_T] = tqdm.tqdm(iterable, total=total, desc=desc, leave=False)
    return bar
