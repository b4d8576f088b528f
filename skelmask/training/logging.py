"""Metrics as JSON lines and optional progress bars, both silent on non-main ranks."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from skelmask._progress import progress

__all__ = ["MetricLogger", "progress"]

_console = logging.getLogger("skelmask.training")


class MetricLogger:
    """Appends one JSON object per record to a ``.jsonl`` file and echoes it to ``logging``.

    The console line goes to the standard-library logger ``"skelmask.training"`` at INFO level,
    so applications decide whether and where it appears. Create it with
    ``enabled=context.is_main`` so that only rank 0 writes.

    Args:
        path: JSON-lines file (appended to, parent folders created); ``None`` for console only.
        enabled: ``False`` makes ``log`` a no-op.

    Examples:
        >>> import json, tempfile
        >>> from pathlib import Path
        >>> from skelmask.training import MetricLogger
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     logger = MetricLogger(Path(folder) / "log.jsonl")
        ...     logger.log({"epoch": 0, "loss": 0.5})
        ...     json.loads((Path(folder) / "log.jsonl").read_text())
        {'epoch': 0, 'loss': 0.5}
    """

    def __init__(self, path: Path | None, *, enabled: bool = True) -> None:
        self.path = None if path is None else Path(path)
        self.enabled = enabled
        if self.enabled and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def log(self, record: dict[str, Any]) -> None:
        """Writes ``record`` (JSON-serialisable values) as one line, then to the console logger."""
        if not self.enabled:
            return
        line = json.dumps(record)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        _console.info(line)
