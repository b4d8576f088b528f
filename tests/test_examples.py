from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_minimal_mae_example_learns() -> None:
    completed = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / "minimal_mae.py"), "122"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    losses = [float(x) for x in re.findall(r"loss (\d+\.\d+)", completed.stdout)]
    assert len(losses) == 5
    assert losses[-1] < 0.5 * losses[0]


def test_minimal_mae_example_is_under_sixty_lines() -> None:
    assert len((EXAMPLES / "minimal_mae.py").read_text().splitlines()) < 60
