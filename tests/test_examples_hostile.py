"""Careless and hostile use of the training examples: existing runs, bad options, bad data.

The three examples share ``examples/common.py``; option checks are exercised on all three (they
cost no training), the rest on ``train_hacm.py``'s smallest MAE.
"""

from __future__ import annotations

import json
import struct
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import get_args

import numpy as np
import pytest
import torch

from skelmask.data import SkeletonArrays, save_prepared, synthetic_splits
from skelmask.training import load_checkpoint

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

TINY = [
    "--preset", "mae", "--window", "8", "--t-patch", "4", "--embed-dim", "8", "--depth", "1",
    "--heads", "1", "--decoder-dim", "8", "--decoder-depth", "1", "--batch-size", "32",
    "--epochs", "1", "--warmup-epochs", "0", "--probe-epochs", "1", "--probe-batch-size", "16",
    "--train-samples", "64", "--test-samples", "16", "--device", "cpu",
]  # fmt: skip


def _import(name: str) -> ModuleType:
    sys.path.insert(0, str(EXAMPLES))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(EXAMPLES))


@pytest.fixture(scope="module")
def train_hacm() -> ModuleType:
    return _import("train_hacm")


@pytest.fixture(scope="module", params=["train_hacm", "train_skelemixclr", "train_skeletonmae"])
def example(request: pytest.FixtureRequest) -> ModuleType:
    return _import(request.param)


def _refused(
    main: Callable[[list[str]], object], argv: list[str], capsys: pytest.CaptureFixture[str]
) -> str:
    """Runs ``main(argv)``, expects a usage error (exit 2) and returns its one-line message."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def flip_a_weight_byte(checkpoint: Path, damaged: Path) -> Path:
    """Copies ``checkpoint`` with one bit flipped in the middle of its largest tensor."""
    content = bytearray(checkpoint.read_bytes())
    with zipfile.ZipFile(checkpoint) as archive:
        entry = max(archive.infolist(), key=lambda info: info.file_size)
    name_length, extra_length = struct.unpack_from("<HH", content, entry.header_offset + 26)
    start = entry.header_offset + 30 + name_length + extra_length
    content[start + entry.file_size // 2] ^= 0x01
    damaged.write_bytes(content)
    return damaged


def _fake_run(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text('{"epoch": 0, "loss": 1.0}\n')
    (folder / "summary.json").write_text('{"method": "earlier run"}\n')
    return {path.name: path.read_bytes() for path in folder.iterdir()}


# --- item: an existing run is never overwritten ---------------------------------------------


def test_a_folder_holding_a_run_is_refused_and_left_untouched(
    example: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _fake_run(tmp_path)
    message = _refused(example.main, ["--output-dir", str(tmp_path)], capsys)
    assert f"--output-dir {tmp_path} already holds a run" in message
    assert "--overwrite" in message
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_overwrite_replaces_the_run_instead_of_appending(
    train_hacm: ModuleType, tmp_path: Path
) -> None:
    _fake_run(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")  # not a run file: never touched
    summary = train_hacm.main(
        [*TINY, "--stages", "pretrain", "--output-dir", str(tmp_path), "--overwrite"]
    )
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in records] == [0]
    assert records[0]["loss"] == pytest.approx(summary["pretrain_final_loss"])
    assert json.loads((tmp_path / "summary.json").read_text())["method"] == "mae"
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_without_output_dir_every_run_gets_a_new_folder_named_after_its_method(
    train_hacm: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = Path(train_hacm.main([*TINY, "--stages", "pretrain"])["output_dir"])
    assert first.parent == Path("runs")
    assert first.name.startswith("mae-")
    assert (first / "checkpoint-last.pt").is_file()
    common = _import("common")
    second = common._new_run_folder("mae")  # the same second: a suffix keeps it apart
    third = common._new_run_folder("mae")
    assert len({first, second, third}) == 3
    assert all(folder.is_dir() for folder in (second, third))


def test_overwrite_never_deletes_the_checkpoint_it_resumes(
    train_hacm: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = tmp_path / "checkpoint-last.pt"
    torch.save({"model": {}, "epoch": 0}, checkpoint)
    argv = ["--output-dir", str(tmp_path), "--resume", str(checkpoint), "--overwrite"]
    assert "would delete the --resume checkpoint" in _refused(train_hacm.main, argv, capsys)
    assert checkpoint.is_file()


def test_an_output_dir_that_is_a_file_is_refused(
    example: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert "is not a folder" in _refused(example.main, ["--output-dir", str(target)], capsys)


# --- item: --resume without pretraining evaluates the checkpoint, or is refused ------------


def test_resume_without_pretrain_evaluates_the_checkpoint(
    train_hacm: ModuleType, tmp_path: Path
) -> None:
    trained = train_hacm.main([*TINY, "--stages", "pretrain,knn", "--output-dir", str(tmp_path)])
    checkpoint = tmp_path / "checkpoint-last.pt"
    evaluated = train_hacm.main(
        [*TINY, "--stages", "knn", "--resume", str(checkpoint), "--output-dir", str(tmp_path / "e")]
    )
    # kNN is deterministic: the same weights on the same data give the same accuracy.
    assert evaluated["knn_accuracy"] == trained["knn_accuracy"]
    assert evaluated["checkpoint"] == str(checkpoint)
    assert evaluated["checkpoint_epoch"] == 0
    assert not (tmp_path / "e" / "checkpoint-last.pt").exists()  # nothing was trained


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stages", "probe,knn"], "has no pretrain stage"),
        (["--resume", "missing.pt"], "--resume missing.pt: no such file"),
        (["--stages", "baseline", "--resume", "x.pt"], "--resume is used by"),
    ],
)
def test_evaluating_a_random_encoder_or_a_missing_checkpoint_is_refused(
    example: ModuleType,
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert message in _refused(example.main, argv, capsys)
    assert list(tmp_path.iterdir()) == []  # refused before any work: not even a folder


# --- items: damaged checkpoints and checkpoints of another model ----------------------------


def test_a_checkpoint_with_one_flipped_byte_is_refused(
    train_hacm: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train_hacm.main([*TINY, "--stages", "pretrain", "--output-dir", str(tmp_path)])
    checkpoint = tmp_path / "checkpoint-last.pt"
    damaged = flip_a_weight_byte(checkpoint, tmp_path / "damaged.pt")
    message = _refused(
        train_hacm.main,
        [*TINY, "--stages", "knn", "--resume", str(damaged), "--output-dir", str(tmp_path / "e")],
        capsys,
    )
    assert str(damaged) in message
    assert "corrupt" in message


def test_resuming_with_other_model_options_names_them(
    example: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = example.parse_args(["--output-dir", str(tmp_path / "unused")])
    config = dict(args.model_config, window=args.window * 2)
    checkpoint = tmp_path / "other.pt"
    torch.save({"model": {}, "epoch": 0, "model_config": config}, checkpoint)
    message = _refused(
        example.main, ["--resume", str(checkpoint), "--output-dir", str(tmp_path / "r")], capsys
    )
    assert f"--resume {checkpoint} was written with other model options" in message
    assert f"--window {args.window * 2} (this run: {args.window})" in message


def test_a_checkpoint_of_another_width_without_stored_options_names_the_weights(
    train_hacm: ModuleType, tmp_path: Path
) -> None:
    train_hacm.main([*TINY, "--stages", "pretrain", "--output-dir", str(tmp_path)])
    state = load_checkpoint(tmp_path / "checkpoint-last.pt")
    del state["model_config"]  # as written before configurations were stored
    old = tmp_path / "old.pt"
    torch.save(state, old)
    wider = [*TINY, "--embed-dim", "16", "--stages", "knn", "--resume", str(old)]
    with pytest.raises(SystemExit, match=r"old\.pt does not fit this model") as info:
        train_hacm.main([*wider, "--output-dir", str(tmp_path / "w")])
    assert "encoder.patch_embed.weight: checkpoint (8, 12), model (16, 12)" in str(info.value)


# --- item: every option is checked before any work -----------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--probe-batch-size", "1"], "--probe-batch-size: must be an integer >= 2, got 1"),
        (["--batch-size", "0"], "--batch-size: must be an integer >= 1, got 0"),
        (["--lr", "nan"], "--lr: expected a finite number"),
        (["--epochs", "x"], "--epochs: expected an integer"),
        (["--seed", "-1"], "--seed: must be an integer >= 0"),
        (["--layout", "bogus"], "--layout: invalid choice"),
        (["--stages", ","], "choose at least one"),
        (["--data", "prepared", "--train-file", "a", "--test-file", "b"], "--train-file a: no"),
    ],
)
def test_bad_shared_options_are_refused_before_any_work(
    example: ModuleType,
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert message in _refused(example.main, argv, capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--drop-path", "1"], "--drop-path: must be in [0, 1), got 1.0"),
        (["--drop-path", "-0.1"], "--drop-path: must be in [0, 1), got -0.1"),
        (["--drop-path", "nan"], "--drop-path: expected a finite number"),
        (["--finetune-batch-size", "0"], "--finetune-batch-size: must be an integer >= 1, got 0"),
    ],
)
def test_bad_finetune_options_are_refused_before_any_work(
    train_hacm: ModuleType, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in _refused(train_hacm.main, argv, capsys)


def test_labelled_ratio_zero_is_refused_before_pretraining(
    train_hacm: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    message = _refused(train_hacm.main, ["--labelled-ratio", "0"], capsys)
    assert "--labelled-ratio: must be in (0, 1], got 0.0" in message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stages", "pretrain", "--batch-size", "65"], "--batch-size 65 on 1 process(es)"),
        (["--stages", "finetune", "--labelled-ratio", "0.1"], "fine-tuning on 10 labelled"),
        (["--stages", "finetune", "--finetune-batch-size", "65"], "of --finetune-batch-size 65"),
        (["--stages", "pretrain", "--heads", "3"], "invalid model options"),
    ],
)
def test_options_that_do_not_fit_the_data_fail_before_training(
    train_hacm: ModuleType,
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started")

    for name in ("pretrain", "finetune"):
        monkeypatch.setattr(train_hacm.common, name, no_training, raising=False)
    monkeypatch.setattr(train_hacm, "finetune", no_training)
    if "finetune" in argv:
        argv = [*argv, "--resume", str(_checkpoint(train_hacm, tmp_path))]
    with pytest.raises(SystemExit, match=message.replace("(", r"\(").replace(")", r"\)")):
        train_hacm.main([*TINY, *argv, "--output-dir", str(tmp_path / "run")])


def _checkpoint(train_hacm: ModuleType, tmp_path: Path) -> Path:
    """A checkpoint of ``TINY``'s model, written without training."""
    args = train_hacm.parse_args([*TINY, "--output-dir", str(tmp_path / "unused")])
    mae = train_hacm.build_mae(args, "nturgb+d", 3)
    path = tmp_path / "untrained.pt"
    torch.save({"model": mae.state_dict(), "epoch": 0, "model_config": args.model_config}, path)
    return path


# --- item: data that cannot give a meaningful result ----------------------------------------


def _prepared(tmp_path: Path, change: Callable[[SkeletonArrays], None]) -> list[str]:
    train, test = synthetic_splits(num_train=64, num_test=16, num_classes=3, seed=0)
    change(train)
    files = [save_prepared(tmp_path / f"{name}.npz", arrays) for name, arrays in (("train", train), ("test", test))]  # fmt: skip
    return ["--data", "prepared", "--train-file", str(files[0]), "--test-file", str(files[1])]


def _one_class(arrays: SkeletonArrays) -> None:
    arrays.labels[:] = 2


def _all_zero(arrays: SkeletonArrays) -> None:
    arrays.data[:] = 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_one_class, r"training split holds a single class \(\[2\]\)"),
        (_all_zero, "every coordinate of the training split equals 0.0"),
    ],
)
def test_meaningless_data_is_refused_before_training(
    train_hacm: ModuleType,
    change: Callable[[SkeletonArrays], None],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr(train_hacm.common, "pretrain", no_training)
    data = _prepared(tmp_path, change)
    with pytest.raises(SystemExit, match=message):
        train_hacm.main([*TINY, *data, "--output-dir", str(tmp_path / "run")])


def test_a_window_longer_than_every_sequence_is_reported(
    train_hacm: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def short(arrays: SkeletonArrays) -> None:
        arrays.lengths[:] = np.minimum(arrays.lengths, 6)

    data = _prepared(tmp_path, short)
    summary = train_hacm.main(
        [*TINY, *data, "--stages", "pretrain", "--output-dir", str(tmp_path / "run")]
    )
    expected = "--window 8 is longer than every training sequence (longest: 6 frames)"
    assert any(expected in warning for warning in summary["warnings"])
    assert f"warning: {expected}" in capsys.readouterr().err


def test_a_checkpoint_stored_before_an_option_existed_resumes(
    train_hacm: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Options added later (such as --target) are missing from older checkpoints: missing reads
    # as "not given", the preset's value (mae: coords), so the run resumes; another value is
    # still refused.
    train_hacm.main([*TINY, "--stages", "pretrain", "--output-dir", str(tmp_path)])
    state = load_checkpoint(tmp_path / "checkpoint-last.pt")
    del state["model_config"]["target"]
    old = tmp_path / "old.pt"
    torch.save(state, old)
    summary = train_hacm.main(
        [*TINY, "--stages", "knn", "--resume", str(old), "--output-dir", str(tmp_path / "k")]
    )
    assert 0.0 <= summary["knn_accuracy"] <= 1.0
    message = _refused(
        train_hacm.main,
        [*TINY, "--target", "motion", "--stages", "knn", "--resume", str(old),
         "--output-dir", str(tmp_path / "c")],
        capsys,
    )  # fmt: skip
    assert "--target 'coords' (this run: 'motion')" in message


@pytest.mark.parametrize(
    ("key", "flag"),
    [("velocity_input", "--velocity-input"), ("normalize_view", "--normalize-view")],
)
def test_an_input_option_must_match_the_checkpoint_and_is_off_in_older_ones(
    train_hacm: ModuleType,
    key: str,
    flag: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # An encoder evaluated on other input than it was pretrained on (velocity for coordinates,
    # view-normalised clips for camera-space ones) measures nothing. A checkpoint written before
    # the option was stored lacks the key: it was fed the clips as read, so it evaluates without
    # the option and is refused with it.
    path = _checkpoint(train_hacm, tmp_path)
    state = torch.load(path, weights_only=True)
    assert state["model_config"][key] is False
    knn = [*TINY, "--stages", "knn", "--resume", str(path)]
    message = _refused(train_hacm.main, [*knn, flag, "--output-dir", str(tmp_path / "n")], capsys)
    assert f"{flag} False (this run: True)" in message
    del state["model_config"][key]
    torch.save(state, path)
    summary = train_hacm.main([*knn, "--output-dir", str(tmp_path / "k")])
    assert 0.0 <= summary["knn_accuracy"] <= 1.0
    message = _refused(train_hacm.main, [*knn, flag, "--output-dir", str(tmp_path / "v")], capsys)
    assert f"{flag} None (this run: True)" in message
    # An encoder pretrained with the option is not evaluated without it.
    state["model_config"][key] = True
    torch.save(state, path)
    message = _refused(train_hacm.main, [*knn, "--output-dir", str(tmp_path / "c")], capsys)
    assert f"{flag} True (this run: False)" in message
    summary = train_hacm.main([*knn, flag, "--output-dir", str(tmp_path / "w")])
    assert 0.0 <= summary["knn_accuracy"] <= 1.0


def test_mask_temperature_names_the_maskers_it_applies_to(
    train_hacm: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    from skelmask.maskers import ScoreGuidedMasker
    from skelmask.models import MaskerName, create_masker

    # The error lists every named score-guided masker, and no other.
    guided = [
        name
        for name in get_args(MaskerName)
        if isinstance(create_masker(name, layout="nturgb+d"), ScoreGuidedMasker)
    ]
    assert sorted(guided) == ["attention", "hyperbolic", "motion"]
    args = train_hacm.parse_args([*TINY, "--preset", "mamp", "--mask-temperature", "0.75"])
    assert train_hacm.build_mae(args, "nturgb+d", 3).masker.temperature == 0.75
    message = _refused(
        train_hacm.parse_args, [*TINY, "--preset", "mae", "--mask-temperature", "0.75"], capsys
    )
    assert "the random masker does not sample from scores" in message
    assert message.endswith(f"it applies to {', '.join(guided)}")
