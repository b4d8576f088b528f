"""Optional TensorBoard logging: MetricLogger's scalars and the examples' --tensorboard."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from skelmask.training import MetricLogger
from skelmask.training import logging as metric_logging

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


class FakeWriter:
    """Records what SummaryWriter would write."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.scalars: list[tuple[str, float, int | None]] = []
        self.flushes = 0
        self.closed = False

    def add_scalar(self, tag: str, scalar_value: float, global_step: int | None = None) -> None:
        self.scalars.append((tag, scalar_value, global_step))

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def writers(monkeypatch: pytest.MonkeyPatch) -> list[FakeWriter]:
    made: list[FakeWriter] = []

    def factory(log_dir: Path) -> FakeWriter:
        made.append(FakeWriter(log_dir))
        return made[-1]

    monkeypatch.setattr(metric_logging, "_summary_writer", factory)
    return made


def test_numbers_become_scalars_tagged_by_scope_and_the_json_lines_stay(
    writers: list[FakeWriter], tmp_path: Path
) -> None:
    logger = MetricLogger(tmp_path / "m.jsonl", tensorboard=tmp_path / "tb", scope="pretrain")
    logger.log({"epoch": 3, "loss": 0.5, "lr": 1e-3})
    logger.scope = "probe"
    logger.log({"epoch": 0, "loss": 2.0, "test_accuracy": 0.25, "note": "text", "flag": True})
    logger.log({"protocol": "linear_probe", "last_epoch_test_accuracy": 0.5, "nan": float("nan")})
    (writer,) = writers
    assert writer.log_dir == tmp_path / "tb"
    assert writer.scalars == [
        ("pretrain/loss", 0.5, 3),
        ("pretrain/lr", 1e-3, 3),
        ("probe/loss", 2.0, 0),
        ("probe/test_accuracy", 0.25, 0),
        ("probe/last_epoch_test_accuracy", 0.5, 0),
    ]
    assert writer.flushes == 3
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"epoch": 3, "loss": 0.5, "lr": 1e-3}
    assert len(lines) == 3
    logger.close()
    assert writer.closed


def test_no_writer_without_tensorboard_or_off_rank_zero(
    writers: list[FakeWriter], tmp_path: Path
) -> None:
    MetricLogger(tmp_path / "a.jsonl").log({"epoch": 0, "loss": 1.0})
    MetricLogger(tmp_path / "b.jsonl", enabled=False, tensorboard=tmp_path / "tb").log(
        {"epoch": 0, "loss": 1.0}
    )
    assert writers == []


def test_missing_tensorboard_package_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install skelmask\[train\]"):
        MetricLogger(tmp_path / "m.jsonl", tensorboard=tmp_path / "tb")


@pytest.fixture(scope="module")
def train_hacm() -> ModuleType:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import train_hacm as module
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


TINY = ["--window", "8", "--t-patch", "4", "--embed-dim", "16", "--depth", "1", "--heads", "2",
        "--decoder-dim", "16", "--decoder-depth", "1", "--batch-size", "20", "--epochs", "2",
        "--warmup-epochs", "1", "--probe-epochs", "1", "--probe-batch-size", "20",
        "--train-samples", "40", "--test-samples", "10", "--device", "cpu"]  # fmt: skip


def test_example_logs_losses_learning_rates_and_probe_accuracies(
    train_hacm: ModuleType, writers: list[FakeWriter], tmp_path: Path
) -> None:
    train_hacm.main(
        [*TINY, "--stages", "pretrain,probe,raw", "--tensorboard", "--output-dir", str(tmp_path)]
    )
    (writer,) = writers
    assert writer.log_dir == tmp_path / "tensorboard"
    assert writer.closed
    tags = {tag for tag, _, _ in writer.scalars}
    assert {"pretrain/loss", "pretrain/lr", "probe/loss", "probe/lr", "probe/test_accuracy",
            "raw_probe/test_accuracy", "probe/last_epoch_test_accuracy"} <= tags  # fmt: skip
    steps = [step for tag, _, step in writer.scalars if tag == "pretrain/loss"]
    assert steps == [0, 1]


def test_example_without_the_package_exits_with_one_line(
    train_hacm: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(SystemExit) as raised:
        train_hacm.main([*TINY, "--stages", "raw", "--tensorboard", "--output-dir", str(tmp_path)])
    message = str(raised.value.code)
    assert "--tensorboard" in message
    assert "pip install skelmask[train]" in message
