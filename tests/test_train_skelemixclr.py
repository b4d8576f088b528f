"""End-to-end tests of examples/train_skelemixclr.py at a tiny size."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from skelmask.training import MetricLogger, load_checkpoint

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

TINY = [
    "--window", "8", "--channels", "4,8", "--strides", "2,2", "--feature-dim", "8",
    "--queue-size", "200", "--batch-size", "128", "--epochs", "1", "--warmup-epochs", "0",
    "--probe-epochs", "1", "--device", "cpu",
]  # fmt: skip


@pytest.fixture(scope="module")
def train_skelemixclr() -> ModuleType:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import train_skelemixclr as module
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


def test_pretrain_then_every_evaluation_stage(
    train_skelemixclr: ModuleType, tmp_path: Path
) -> None:
    summary = train_skelemixclr.main(
        [*TINY, "--stages", "pretrain,probe,knn,baseline", "--output-dir", str(tmp_path)]
    )
    for key in (
        "probe_last_accuracy",
        "probe_best_accuracy",
        "knn_accuracy",
        "baseline_probe_last_accuracy",
    ):
        assert 0.0 <= summary[key] <= 1.0, key
    assert summary["method"] == "skelemixclr"
    assert torch.isfinite(torch.tensor(summary["pretrain_final_loss"]))
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in record and record.get("epoch") == 0 for record in records)
    checkpoint = load_checkpoint(tmp_path / "checkpoint-last.pt")
    assert checkpoint["epoch"] == 0
    state = checkpoint["model"]
    assert "queue.keys" in state
    assert "key_encoder.data_bn.weight" in state
    # 600 samples make 4 full batches of 128; their keys wrapped around the 200-key queue.
    assert int(state["queue.pointer"]) == (4 * 128) % 200


def test_real_msr_action3d(
    train_skelemixclr: ModuleType, shared_data: Path, tmp_path: Path
) -> None:
    summary = train_skelemixclr.main(
        [
            *TINY,
            "--data",
            "msr-action3d",
            "--data-root",
            str(shared_data / "msr-action3d"),
            "--stages",
            "pretrain,knn",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert summary["num_classes"] == 20
    assert 0.0 <= summary["knn_accuracy"] <= 1.0
    assert torch.isfinite(torch.tensor(summary["pretrain_final_loss"]))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--window", "10", "--strides", "1,2,2"], "multiple of the total temporal stride"),
        (["--channels", "4,8", "--strides", "2"], "--channels has 2 blocks"),
        (["--data", "msr-action3d"], "needs --data-root"),
        (["--stages", "pretrain,finetune"], "unknown stage"),
        (["--channels", "4,x"], "comma-separated integers"),
    ],
)
def test_bad_arguments(
    train_skelemixclr: ModuleType,
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        train_skelemixclr.parse_args(argv)
    assert message in capsys.readouterr().err


class SimulatedCrash(RuntimeError):
    pass


def test_resume_after_a_crash_continues_exactly(
    train_skelemixclr: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pretrain_only = [*TINY, "--epochs", "2", "--stages", "pretrain"]
    straight = tmp_path / "straight"
    train_skelemixclr.main([*pretrain_only, "--output-dir", str(straight)])

    crashed = tmp_path / "crashed"
    original_log = MetricLogger.log

    def crash_at_epoch_one(self: MetricLogger, record: dict[str, object]) -> None:
        if record.get("epoch") == 1 and "loss" in record:
            raise SimulatedCrash("stopped after epoch 1's steps, before its checkpoint")
        original_log(self, record)

    monkeypatch.setattr(MetricLogger, "log", crash_at_epoch_one)
    with pytest.raises(SimulatedCrash):
        train_skelemixclr.main([*pretrain_only, "--output-dir", str(crashed)])
    monkeypatch.setattr(MetricLogger, "log", original_log)
    survivor = crashed / "checkpoint-last.pt"
    assert load_checkpoint(survivor)["epoch"] == 0

    torch.manual_seed(12345)  # a disturbed global RNG must not matter after resuming
    train_skelemixclr.main(
        [*pretrain_only, "--output-dir", str(crashed), "--resume", str(survivor)]
    )
    expected = load_checkpoint(straight / "checkpoint-last.pt")
    resumed = load_checkpoint(crashed / "checkpoint-last.pt")
    assert resumed["epoch"] == expected["epoch"] == 1
    assert resumed["model"].keys() == expected["model"].keys()
    # Query and key encoders, heads and the queue (keys and pointer) all continue exactly.
    for name, value in resumed["model"].items():
        assert torch.equal(value, expected["model"][name]), name
