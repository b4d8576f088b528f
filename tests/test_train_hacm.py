"""End-to-end tests of examples/train_hacm.py at a tiny size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from skelmask.data import SkeletonDataset, save_prepared, synthetic_splits
from skelmask.models import SkeletonClassifier
from skelmask.training import EvalResult, FinetuneConfig, MetricLogger, load_checkpoint

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

TINY = [
    "--window", "16", "--t-patch", "4", "--embed-dim", "16", "--depth", "1", "--heads", "2",
    "--decoder-dim", "16", "--decoder-depth", "1", "--batch-size", "64", "--epochs", "2",
    "--warmup-epochs", "1", "--probe-epochs", "2", "--finetune-epochs", "1", "--device", "cpu",
]  # fmt: skip


@pytest.fixture(scope="module")
def train_hacm() -> ModuleType:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import train_hacm as module
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


@pytest.mark.parametrize("preset", ["hacm", "mamp", "mae"])
def test_pretrain_then_every_evaluation_stage(
    train_hacm: ModuleType, preset: str, tmp_path: Path
) -> None:
    summary = train_hacm.main(
        [
            *TINY,
            "--preset",
            preset,
            "--stages",
            "pretrain,probe,knn,baseline,finetune",
            "--output-dir",
            str(tmp_path),
        ]
    )
    for key in (
        "probe_last_accuracy",
        "probe_best_accuracy",
        "knn_accuracy",
        "baseline_probe_last_accuracy",
        "finetune_last_accuracy",
    ):
        assert 0.0 <= summary[key] <= 1.0, key
    assert summary["probe_best_accuracy"] >= summary["probe_last_accuracy"]
    assert torch.isfinite(torch.tensor(summary["pretrain_final_loss"]))
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records, "no metrics were logged"
    checkpoint = load_checkpoint(tmp_path / "checkpoint-last.pt")
    assert checkpoint["epoch"] == 1  # last finished epoch, 0-based
    assert checkpoint["config"]["epochs"] == 2
    # The checkpoint is plain data: loadable with weights_only=True.
    torch.load(tmp_path / "checkpoint-last.pt", weights_only=True)


def test_trains_on_prepared_files(train_hacm: ModuleType, tmp_path: Path) -> None:
    train, test = synthetic_splits(num_train=64, num_test=12, layout="coco", num_classes=3, seed=1)
    train_file = save_prepared(tmp_path / "train.npz", train)
    test_file = save_prepared(tmp_path / "test.npz", test)
    summary = train_hacm.main(
        [
            *TINY,
            "--data",
            "prepared",
            "--train-file",
            str(train_file),
            "--test-file",
            str(test_file),
            "--probe-batch-size",
            "32",
            "--stages",
            "pretrain,probe",
            "--output-dir",
            str(tmp_path / "run"),
        ]
    )
    assert summary["layout"] == "coco"
    assert summary["num_classes"] == 3
    assert 0.0 <= summary["probe_last_accuracy"] <= 1.0


class SimulatedCrash(RuntimeError):
    pass


def test_resume_after_a_crash_continues_exactly(
    train_hacm: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pretrain_only = [*TINY, "--epochs", "3", "--stages", "pretrain"]
    straight = tmp_path / "straight"
    train_hacm.main([*pretrain_only, "--output-dir", str(straight)])

    crashed = tmp_path / "crashed"
    original_log = MetricLogger.log

    def crash_at_epoch_one(self: MetricLogger, record: dict[str, object]) -> None:
        if record.get("epoch") == 1 and "loss" in record:
            raise SimulatedCrash("power cut after epoch 1's steps, before its checkpoint")
        original_log(self, record)

    monkeypatch.setattr(MetricLogger, "log", crash_at_epoch_one)
    with pytest.raises(SimulatedCrash):
        train_hacm.main([*pretrain_only, "--output-dir", str(crashed)])
    monkeypatch.setattr(MetricLogger, "log", original_log)
    survivor = crashed / "checkpoint-last.pt"
    assert load_checkpoint(survivor)["epoch"] == 0

    # A fresh process state: the global RNG is disturbed before resuming.
    torch.manual_seed(12345)
    train_hacm.main([*pretrain_only, "--output-dir", str(crashed), "--resume", str(survivor)])
    expected = load_checkpoint(straight / "checkpoint-last.pt")
    resumed = load_checkpoint(crashed / "checkpoint-last.pt")
    assert resumed["epoch"] == expected["epoch"] == 2
    assert resumed["model"].keys() == expected["model"].keys()
    for name, value in resumed["model"].items():
        assert torch.equal(value, expected["model"][name]), name


def test_corrupt_resume_checkpoint_is_a_clear_error(
    train_hacm: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(SystemExit) as info:
        train_hacm.main(
            [*TINY, "--stages", "pretrain", "--output-dir", str(tmp_path), "--resume", str(broken)]
        )
    assert info.value.code == 2
    assert f"--resume: checkpoint {broken} is corrupt, truncated" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broken.pt"]  # no work done


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stages", "pretrain,sing"], "unknown stage"),
        (["--data", "msr-action3d"], "needs --data-root"),
        (["--data", "prepared", "--train-file", "a.npz"], "needs --train-file and --test-file"),
    ],
)
def test_bad_arguments_are_clear_errors(
    train_hacm: ModuleType, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        train_hacm.main(argv)
    assert message in capsys.readouterr().err


def test_torchrun_two_processes_on_cpu(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(EXAMPLES / "train_hacm.py"),
            *TINY,
            "--stages",
            "pretrain,probe",
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert 0.0 <= summary["probe_last_accuracy"] <= 1.0
    assert (tmp_path / "checkpoint-last.pt").is_file()
    assert not list(tmp_path.glob("*.tmp*")), "a temporary checkpoint file was left behind"


@pytest.mark.cuda
@pytest.mark.parametrize("preset", ["hacm", "mae"])
def test_cuda_run_with_bf16_autocast(train_hacm: ModuleType, preset: str, tmp_path: Path) -> None:
    argv = [*TINY, "--preset", preset, "--stages", "pretrain,probe", "--output-dir", str(tmp_path)]
    argv[argv.index("--device") + 1] = "cuda"
    summary = train_hacm.main(argv)
    assert summary["device"].startswith("cuda")
    assert torch.isfinite(torch.tensor(summary["pretrain_final_loss"]))
    assert 0.0 <= summary["probe_last_accuracy"] <= 1.0
    # A checkpoint written on the GPU loads on a CPU-only machine with weights_only=True.
    state = torch.load(tmp_path / "checkpoint-last.pt", weights_only=True, map_location="cpu")
    assert state["model"]
    assert all(torch.isfinite(value).all() for value in state["model"].values())


def test_default_stages_print_the_three_labelled_probes(
    train_hacm: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newcomer's first run says how pretraining compares with doing nothing."""
    summary = train_hacm.main([*TINY, "--output-dir", str(tmp_path)])
    printed = capsys.readouterr().out
    for key, label in (
        ("probe_last_accuracy", "pretrained encoder"),
        ("baseline_probe_last_accuracy", "same encoder, random initialisation"),
        ("raw_probe_last_accuracy", "raw coordinates (no encoder)"),
    ):
        assert 0.0 <= summary[key] <= 1.0, key
        line = next(line for line in printed.splitlines() if line.strip().startswith(label))
        assert f"{summary[key]:.4f}" in line
    gap = summary["probe_last_accuracy"] - summary["raw_probe_last_accuracy"]
    assert f"(pretrained {gap:+.4f})" in printed


@pytest.mark.parametrize(
    ("velocity", "raw_label"),
    [(False, "raw coordinates (no encoder)"), (True, "raw frame differences (no encoder)")],
)
def test_the_raw_row_names_what_the_raw_probe_read(
    train_hacm: ModuleType,
    velocity: bool,
    raw_label: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Under --velocity-input the raw probe reads frame differences; its row must not say otherwise."""
    summary = {
        "probe_last_accuracy": 0.5,
        "baseline_probe_last_accuracy": 0.25,
        "raw_probe_last_accuracy": 0.375,
        **({"velocity_input": True} if velocity else {}),
    }
    train_hacm.common.print_comparison(summary)
    lines = capsys.readouterr().out.splitlines()
    raw_line = next(line for line in lines if "0.3750" in line)
    assert raw_line.strip().startswith(raw_label)
    assert "(pretrained +0.1250)" in raw_line
    assert sum("raw" in line for line in lines) == 1


@pytest.mark.parametrize(
    ("options", "batch", "rates", "velocity"),
    [
        ([], 64, [0.0, 0.0], False),  # the defaults: --batch-size, no drop-path, coordinates
        (["--finetune-batch-size", "8", "--drop-path", "0.3", "--velocity-input"], 8,
         [0.0, 0.3], True),
    ],
)  # fmt: skip
def test_finetune_and_input_options_reach_every_stage(
    train_hacm: ModuleType,
    options: list[str],
    batch: int,
    rates: list[float],
    velocity: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = [*TINY, "--depth", "2", "--train-samples", "64", "--test-samples", "8",
            "--probe-batch-size", "32", *options]  # fmt: skip
    args = train_hacm.parse_args([*argv, "--output-dir", str(tmp_path / "unused")])
    mae = train_hacm.build_mae(args, "nturgb+d", 3)
    checkpoint = tmp_path / "untrained.pt"
    torch.save(
        {"model": mae.state_dict(), "epoch": 0, "model_config": args.model_config}, checkpoint
    )
    assert args.model_config["velocity_input"] is velocity

    seen: dict[str, list[object]] = {"datasets": [], "finetune": []}
    done = EvalResult.from_history([{"test_accuracy": 0.5}])

    def fake_probe(
        model: object, train: object, test: object, *rest: object, **kw: object
    ) -> EvalResult:
        seen["datasets"] += [train, test]
        return done

    def fake_finetune(
        classifier: object, train: object, test: object, config: object, **kw: object
    ) -> EvalResult:
        seen["datasets"] += [train, test]
        seen["finetune"] += [classifier, config]
        return done

    original_features = train_hacm.common.extract_features

    def recorded_features(encoder: object, dataset: object, **kw: object) -> object:
        seen["datasets"].append(dataset)
        return original_features(encoder, dataset, **kw)

    monkeypatch.setattr(train_hacm.common, "linear_probe", fake_probe)
    monkeypatch.setattr(train_hacm.common, "extract_features", recorded_features)
    monkeypatch.setattr(train_hacm, "finetune", fake_finetune)
    output = tmp_path / "run"
    summary = train_hacm.main(
        [*argv, "--stages", "probe,knn,finetune,baseline,raw", "--resume", str(checkpoint),
         "--output-dir", str(output)]
    )  # fmt: skip
    # The summary records the input, so that its raw row can name frame differences.
    assert summary.get("velocity_input", False) is velocity
    classifier, config = seen["finetune"]
    assert isinstance(classifier, SkeletonClassifier)
    assert isinstance(config, FinetuneConfig)
    assert config.batch_size == batch
    assert [block.drop_path.p for block in classifier.encoder.blocks] == pytest.approx(rates)
    # probe, baseline and raw (train and test), knn (train and test), fine-tuning (train, test)
    datasets = seen["datasets"]
    assert len(datasets) == 10
    assert all(isinstance(d, SkeletonDataset) and d.velocity is velocity for d in datasets)
    options_saved = json.loads((output / "config.json").read_text())["options"]
    assert options_saved["velocity_input"] is velocity
    assert options_saved["finetune_batch_size"] == batch
    assert options_saved["drop_path"] == pytest.approx(rates[-1])


@pytest.mark.parametrize(
    ("stored", "given"),
    [
        # the comparison wrote --target motion; the user evaluates without retyping it
        ({"target": "motion"}, []),
        # a checkpoint from before the defaults were written out (None, or no key at all)
        ({"masker": None, "target": None, "mask_temperature": None}, ["--masker", "motion"]),
        ({"drop": ["target", "mask_temperature"]}, ["--target", "motion"]),
        ({}, ["--mask-temperature", "0.8"]),
    ],
)
def test_resume_treats_a_preset_default_and_its_value_as_the_same_model(
    train_hacm: ModuleType, stored: dict[str, object], given: list[str], tmp_path: Path
) -> None:
    argv = [*TINY, "--preset", "mamp", "--train-samples", "64", "--test-samples", "8",
            "--probe-batch-size", "32"]  # fmt: skip
    args = train_hacm.parse_args([*argv, "--output-dir", str(tmp_path / "unused")])
    # Runs store explicit values: the preset's masker, target and the masker's temperature.
    assert (args.model_config["masker"], args.model_config["target"]) == ("motion", "motion")
    assert args.model_config["mask_temperature"] == pytest.approx(0.8)
    config = {k: v for k, v in args.model_config.items() if k not in stored.get("drop", [])}
    config.update({k: v for k, v in stored.items() if k != "drop"})
    checkpoint = tmp_path / "stored.pt"
    mae = train_hacm.build_mae(args, "nturgb+d", 3)
    torch.save({"model": mae.state_dict(), "epoch": 0, "model_config": config}, checkpoint)
    summary = train_hacm.main(
        [*argv, *given, "--stages", "knn", "--resume", str(checkpoint),
         "--output-dir", str(tmp_path / "run")]
    )  # fmt: skip
    assert summary["checkpoint_epoch"] == 0


@pytest.mark.parametrize(
    ("option", "shown"),
    [
        (["--target", "coords"], "--target 'motion' (this run: 'coords')"),
        (["--masker", "random"], "--masker 'motion' (this run: 'random')"),
        (["--mask-temperature", "0.5"], "--mask-temperature 0.8 (this run: 0.5)"),
    ],
)
def test_resume_still_refuses_another_value_than_the_preset_default(
    train_hacm: ModuleType,
    option: list[str],
    shown: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [*TINY, "--preset", "mamp", "--train-samples", "64", "--test-samples", "8"]
    args = train_hacm.parse_args([*argv, "--output-dir", str(tmp_path / "unused")])
    config = {**args.model_config, "masker": None, "target": None, "mask_temperature": None}
    checkpoint = tmp_path / "stored.pt"
    mae = train_hacm.build_mae(args, "nturgb+d", 3)
    torch.save({"model": mae.state_dict(), "epoch": 0, "model_config": config}, checkpoint)
    with pytest.raises(SystemExit):
        train_hacm.parse_args([*argv, *option, "--stages", "knn", "--resume", str(checkpoint)])
    assert shown in capsys.readouterr().err
