"""Metrics as JSON lines, optionally TensorBoard scalars, and progress bars; silent off rank 0."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Protocol

from skelmask._progress import progress

__all__ = ["MetricLogger", "progress"]

_console = logging.getLogger("skelmask.training")


class ScalarWriter(Protocol):
    """What ``MetricLogger`` needs of ``torch.utils.tensorboard.SummaryWriter``."""

    def add_scalar(self, tag: str, scalar_value: float, global_step: int | None = None) -> None:
        """Records one scalar."""

    def flush(self) -> None:
        """Writes pending events to disk."""

    def close(self) -> None:
        """Flushes and releases the event file."""


def _summary_writer(log_dir: Path) -> ScalarWriter:
    """A TensorBoard writer for ``log_dir``; imported here so TensorBoard stays optional."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415
    except ImportError as error:  # torch.utils.tensorboard imports the tensorboard package
        raise ImportError(
            "TensorBoard logging needs the tensorboard package: pip install skelmask[train]"
        ) from error
    writer: ScalarWriter = SummaryWriter(log_dir=str(log_dir))
    return writer


class MetricLogger:
    """Appends one JSON object per record to a ``.jsonl`` file and echoes it to ``logging``.

    The console line goes to the standard-library logger ``"skelmask.training"`` at INFO level,
    so applications decide whether and where it appears. Create it with
    ``enabled=context.is_main`` so that only rank 0 writes.

    With ``tensorboard`` set, every finite number of a record is also written as a TensorBoard
    scalar tagged ``<scope>/<key>`` (e.g. ``pretrain/loss``, ``probe/test_accuracy``) at step
    ``record["epoch"]`` (0 for records without one). ``scope`` names the stage being logged;
    set it before each stage, since the training loops' records do not carry it.

    Args:
        path: JSON-lines file (appended to, parent folders created); ``None`` for console only.
        enabled: ``False`` makes ``log`` a no-op (and opens no TensorBoard file).
        tensorboard: Folder for TensorBoard event files; ``None`` (the default) writes none.
            Needs the ``tensorboard`` package (``pip install skelmask[train]``).
        scope: First part of the TensorBoard tags.

    Raises:
        ImportError: ``tensorboard`` is set and the ``tensorboard`` package is missing.

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

    def __init__(
        self,
        path: Path | None,
        *,
        enabled: bool = True,
        tensorboard: Path | None = None,
        scope: str = "train",
    ) -> None:
        self.path = None if path is None else Path(path)
        self.enabled = enabled
        self.scope = scope
        if self.enabled and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer: ScalarWriter | None = None
        if self.enabled and tensorboard is not None:
            self._writer = _summary_writer(Path(tensorboard))

    def log(self, record: dict[str, Any]) -> None:
        """Writes ``record`` (JSON-serialisable values) as one line, then to the console logger.

        With TensorBoard on, its finite numbers (not ``epoch`` itself) also become scalars.
        """
        if not self.enabled:
            return
        line = json.dumps(record)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        _console.info(line)
        if self._writer is not None:
            step = int(record.get("epoch", 0))
            for key, value in record.items():
                numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
                if key != "epoch" and numeric and math.isfinite(value):
                    self._writer.add_scalar(f"{self.scope}/{key}", float(value), step)
            # Flushed per record (once per epoch), so TensorBoard shows a run as it trains.
            self._writer.flush()

    def close(self) -> None:
        """Closes the TensorBoard file, if any; the JSON lines need no closing."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
