"""Progress reports: a bar on a terminal, plain periodic lines anywhere else."""

from __future__ import annotations

import io

import pytest

from skelmask.training import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_file_gets_plain_lines_not_a_carriage_return_per_step() -> None:
    log = io.StringIO()
    assert list(progress(range(5), desc="epoch 3", file=log, interval=0.0)) == list(range(5))
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines[:5] == [f"epoch 3: {n}/5 ({20 * n}%) 0s" for n in range(1, 6)]
    assert lines[5].startswith("epoch 3: 5/5 done in ")
    assert len(lines) == 6


def test_lines_are_periodic_and_the_total_may_be_unknown() -> None:
    log = io.StringIO()
    items = list(progress(iter(range(100)), desc="features", file=log))  # no len, 30 s interval
    assert items == list(range(100))
    assert log.getvalue().splitlines()[0].startswith("features: 100 done in ")
    assert len(log.getvalue().splitlines()) == 1


def test_a_terminal_gets_a_bar() -> None:
    pytest.importorskip("tqdm")
    terminal = Terminal()
    assert list(progress(range(3), desc="bar", file=terminal)) == [0, 1, 2]
    assert "\r" in terminal.getvalue()
    assert "bar" in terminal.getvalue()


def test_disabled_reports_nothing() -> None:
    log = io.StringIO()
    assert list(progress(range(3), file=log, enabled=False)) == [0, 1, 2]
    assert log.getvalue() == ""
