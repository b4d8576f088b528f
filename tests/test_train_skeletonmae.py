"""End-to-end tests of examples/train_skeletonmae.py at a tiny size."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from skelmask.maskers.body_part import BodyPartMasker
from skelmask.training import load_checkpoint

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

TINY = [
    "--window", "8", "--width", "8", "--depth", "1", "--segments", "2", "--batch-size", "64",
    "--epochs", "1", "--warmup-epochs", "0", "--probe-epochs", "1", "--device", "cpu",
    "--train-samples", "128", "--test-samples", "40",
]  # fmt: skip


@pytest.fixture(scope="module")
def train_skeletonmae() -> ModuleType:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import train_skeletonmae as module
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


def test_pretrain_probe_knn_and_baseline(train_skeletonmae: ModuleType, tmp_path: Path) -> None:
    summary = train_skeletonmae.main(
        [*TINY, "--stages", "pretrain,probe,knn,baseline", "--output-dir", str(tmp_path)]
    )
    for key in ("probe_last_accuracy", "knn_accuracy", "baseline_probe_last_accuracy"):
        assert 0.0 <= summary[key] <= 1.0, key
    assert summary["probe_best_accuracy"] >= summary["probe_last_accuracy"]
    assert summary["num_classes"] == 10
    assert summary["masker"].startswith("BodyPartMasker(num_parts=2")
    assert torch.isfinite(torch.tensor(summary["pretrain_final_loss"]))
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if "loss" in r and "test_accuracy" not in r] == [0]
    assert any(r.get("protocol") == "linear_probe" for r in records)
    assert load_checkpoint(tmp_path / "checkpoint-last.pt")["epoch"] == 0


def test_fixed_parts_reach_the_masker(train_skeletonmae: ModuleType) -> None:
    args = train_skeletonmae.parse_args(["--parts", "right_arm,right_leg", "--layout", "coco"])
    model = train_skeletonmae.build_model(args, "coco", 3)
    assert isinstance(model.masker, BodyPartMasker)
    assert model.masker.parts == ("right_arm", "right_leg")
    ratio = train_skeletonmae.parse_args(["--mask-ratio", "0.4", "--draw-per", "clip"])
    masker = train_skeletonmae.build_model(ratio, "nturgb+d", 3).masker
    assert (masker.mask_ratio, masker.num_parts, masker.draw_per) == (0.4, None, "clip")


def test_real_msr_action3d_run(
    train_skeletonmae: ModuleType, shared_data: Path, tmp_path: Path
) -> None:
    summary = train_skeletonmae.main(
        [
            *TINY,
            "--data",
            "msr-action3d",
            "--data-root",
            str(shared_data / "msr-action3d"),
            "--stages",
            "pretrain,probe",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert summary["num_classes"] == 20
    assert summary["train_samples"] > 0
    assert 0.0 <= summary["probe_last_accuracy"] <= 1.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stages", "pretrain,sing"], "unknown stage"),
        (["--data", "msr-action3d"], "needs --data-root"),
        (["--num-parts", "1", "--mask-ratio", "0.5"], "give one of --parts, --num-parts"),
    ],
)
def test_bad_command_lines_exit_with_a_message(
    train_skeletonmae: ModuleType,
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        train_skeletonmae.parse_args(argv)
    assert message in capsys.readouterr().err
