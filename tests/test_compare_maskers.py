"""End-to-end test of examples/compare_maskers.py at a tiny size on the built-in data."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from skelmask.data import SkeletonDataset
from skelmask.training import load_checkpoint

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# SLiM's semantic tubes beside the random joint tubes and frames, which are easy to confuse.
MASKERS = ("random", "tube", "joint-tube", "frame")


@pytest.fixture(scope="module")
def compare_maskers() -> ModuleType:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import compare_maskers as module
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


def test_compares_every_masker_then_reuses_the_runs(
    compare_maskers: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    argv = ["--tiny", "--maskers", ",".join(MASKERS), "--seeds", "0", "--output", str(tmp_path)]
    results = compare_maskers.main(argv)
    printed = capsys.readouterr().out
    labels = [*MASKERS, compare_maskers.RANDOM_INIT, compare_maskers.RAW]
    assert list(results["summary"]) == labels
    for masker in MASKERS:
        for key in ("probe", "knn"):
            stats = results["summary"][masker][key]
            assert 0.0 <= stats["mean"] <= 1.0
            assert stats["n"] == 1
            assert stats["sd"] is None
        assert f"{masker} seed 0: ran" in printed
    for baseline in (compare_maskers.RANDOM_INIT, compare_maskers.RAW):
        assert set(results["summary"][baseline]) == {"probe"}  # no kNN, no subjects
    assert "baselines seed 0: ran" in printed
    for masker in MASKERS:  # each run pretrained with its own masker, on the same preset
        state = load_checkpoint(tmp_path / "runs" / f"{masker}-seed0" / "checkpoint-last.pt")
        assert state["model_config"]["masker"] == masker
        assert state["model_config"]["method"] == "mamp"
    assert json.loads((tmp_path / "comparison.json").read_text()) == results
    table = (tmp_path / "comparison.md").read_text()
    for label in labels:
        assert label in table
    assert "`random` (reference)" in table
    png = (tmp_path / "comparison.png").read_bytes()
    assert png.startswith(b"\x89PNG")

    summaries = sorted((tmp_path / "runs").glob("*/summary.json"))
    assert len(summaries) == len(MASKERS) + 1
    stamps = {path: path.stat().st_mtime_ns for path in summaries}
    again = compare_maskers.main(argv)
    printed = capsys.readouterr().out
    assert again == results  # read back, not trained again
    assert {path: path.stat().st_mtime_ns for path in summaries} == stamps
    assert printed.count(": reused") == len(MASKERS) + 1
    assert ": ran" not in printed


def test_targets_and_parallel_jobs(
    compare_maskers: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    argv = ["--tiny", "--maskers", "random", "--targets", "motion,acceleration", "--seeds", "0"]
    results = compare_maskers.main([*argv, "--jobs", "2", "--output", str(tmp_path)])
    printed = capsys.readouterr().out
    rows = ["random / motion", "random / acceleration"]
    assert list(results["summary"]) == [*rows, compare_maskers.RANDOM_INIT, compare_maskers.RAW]
    assert [run["target"] for run in results["runs"][:2]] == ["motion", "acceleration"]
    assert printed.count(": ran") == 3  # two targets and the baselines, in any order
    # The preset's own target keeps the plain folder name (reused by single-target comparisons).
    for folder, target in (
        ("random-seed0", "motion"),
        ("random-acceleration-seed0", "acceleration"),
    ):
        state = load_checkpoint(tmp_path / "runs" / folder / "checkpoint-last.pt")
        assert state["model_config"]["target"] == target
        assert (tmp_path / "runs" / folder / "log.txt").stat().st_size > 0
    table = (tmp_path / "comparison.md").read_text()
    assert "`random`, `acceleration` target (reference)" in table
    assert "target `motion`, `acceleration`" in table


@pytest.mark.parametrize("velocity", [False, True])
def test_the_table_says_when_the_raw_baseline_read_frame_differences(
    compare_maskers: ModuleType, velocity: bool
) -> None:
    stats = {"probe": {"mean": 0.5, "sd": None, "n": 1}}
    table = {"random": stats, compare_maskers.RANDOM_INIT: stats, compare_maskers.RAW: stats}
    text = compare_maskers.markdown(table, "mamp", ["motion"], [0], velocity)
    assert ("frame differences" in text) is velocity


def test_a_failing_run_names_its_log(
    compare_maskers: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = tmp_path / "fails.py"
    failing.write_text("import sys\nprint('a clear reason')\nsys.exit(3)\n")
    monkeypatch.setattr(compare_maskers, "TRAIN_SCRIPT", failing)
    output = tmp_path / "comparison"
    with pytest.raises(RuntimeError) as error:
        compare_maskers.main(
            ["--tiny", "--maskers", "random", "--seeds", "0", "--output", str(output)]
        )
    message = str(error.value)
    assert "exit status 3" in message
    assert "a clear reason" in message
    assert str(output / "runs") in message
    assert not list(output.glob("runs/*/summary.json"))


@pytest.mark.parametrize(
    ("masker", "built", "granularity"),
    [
        ("tube", "SemanticTubeMasker", None),
        ("joint-tube", "RandomMasker", "joint"),
        ("frame", "RandomMasker", "frame"),
    ],
)
def test_masker_option_swaps_only_the_masker(
    compare_maskers: ModuleType, masker: str, built: str, granularity: str | None
) -> None:
    argv = [*compare_maskers.TINY, "--preset", "mamp", "--masker", masker]
    options = compare_maskers.train_hacm.parse_args(argv)
    mae = compare_maskers.train_hacm.build_mae(options, "nturgb+d", 3)
    assert type(mae.masker).__name__ == built
    assert getattr(mae.masker, "granularity", None) == granularity
    assert mae.masker.mask_ratio == 0.9  # train_hacm's --mask-ratio default, not the masker's
    assert mae.target == "motion"  # the mamp preset's target is kept


def test_every_masker_name_is_offered_by_default(
    compare_maskers: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args, _ = compare_maskers.parse_args(["--tiny", "--output", str(tmp_path / "new")])
    assert {"joint-tube", "frame", "tube"} <= set(args.maskers)
    assert args.maskers == list(compare_maskers.MASKERS)
    with pytest.raises(SystemExit):
        compare_maskers.parse_args(["--help"])
    usage = " ".join(capsys.readouterr().out.split())  # argparse wraps the help text
    assert "joint-tube and frame hide random whole joints or time patches" in usage
    assert "tube is SLiM's semantic tubes" in usage


def test_chart_marks_the_random_maskers(
    compare_maskers: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    drawn: list[list[str]] = []
    titles: list[str] = []
    bar, suptitle = Axes.bar, Figure.suptitle

    def recording_bar(self: Axes, *args: Any, **kwargs: Any) -> Any:
        drawn.append(list(kwargs["color"]))
        return bar(self, *args, **kwargs)

    def recording_title(self: Figure, label: str, *args: Any, **kwargs: Any) -> Any:
        titles.append(label)
        return suptitle(self, label, *args, **kwargs)

    monkeypatch.setattr(Axes, "bar", recording_bar)
    monkeypatch.setattr(Figure, "suptitle", recording_title)
    stats = {"probe": {"mean": 0.5, "sd": None, "n": 1}}
    table = dict.fromkeys(("random", "joint-tube", "frame", "tube"), stats)
    compare_maskers.chart(table, tmp_path / "chart.png")
    light = compare_maskers.WHOLE_UNIT_COLOUR
    assert drawn == [[compare_maskers.REFERENCE_COLOUR, light, light, "tab:blue"]]
    assert "light orange: whole joints or time patches" in titles[0]
    # Without them the title names only the reference, as before.
    titles.clear()
    compare_maskers.chart({"random": stats, "tube": stats}, tmp_path / "other.png")
    assert "light orange" not in titles[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--maskers", "random,nope"], "unknown masker(s) ['nope']"),
        (["--maskers", "random,random"], "repeated value"),
        (["--seeds", "0,x"], "--seeds: expected comma-separated integers"),
        (["--targets", "motion,speed"], "unknown target(s) ['speed']"),
        (["--target", "coords"], "--target is set by compare_maskers.py"),
        (["--jobs", "0"], "--jobs: expected an integer >= 1"),
        (["--seed", "3"], "--seed is set by compare_maskers.py"),
        (["--output-dir=x"], "--output-dir is set by compare_maskers.py"),
        (["--epochs", "0"], "--epochs"),
    ],
)
def test_bad_arguments_are_clear_errors(
    compare_maskers: ModuleType,
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        compare_maskers.main([*argv, "--output", str(tmp_path)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


def test_refuses_to_mix_runs_of_other_options(
    compare_maskers: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier = {"preset": "mamp", "train_options": ["--epochs", "5"]}
    (tmp_path / "options.json").write_text(json.dumps(earlier))
    with pytest.raises(SystemExit):
        compare_maskers.main(["--epochs", "6", "--output", str(tmp_path)])
    assert "holds a comparison made with other options" in capsys.readouterr().err


@pytest.mark.parametrize("masker", ["tube", "joint-tube", "frame"])
def test_hacm_preset_refuses_a_masker_without_branches(
    compare_maskers: ModuleType, capsys: pytest.CaptureFixture[str], masker: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        compare_maskers.train_hacm.parse_args(["--preset", "hacm", "--masker", masker])
    assert exit_info.value.code == 2
    assert f"--masker {masker} with --preset hacm" in capsys.readouterr().err


def test_subject_validation_sees_the_clips_as_pretraining_did(
    compare_maskers: ModuleType, shared_data: Path
) -> None:
    # Runs made with --normalize-view are scored on view-normalised training clips.
    root = shared_data / "msr-action3d"
    plain = compare_maskers.SubjectValidation(root, 16)
    normalised = compare_maskers.SubjectValidation(root, 16, normalize_view=True)
    expected = SkeletonDataset(plain.arrays, window=16, train=False, normalize_view=True)
    torch.testing.assert_close(normalised.dataset[0][0], expected[0][0])
    assert not torch.allclose(plain.dataset[0][0], normalised.dataset[0][0])
    # Runs made with --velocity-input are scored on frame differences, as they were fed.
    args = compare_maskers.train_hacm.parse_args(["--velocity-input", "--output-dir", "x"])
    moving = compare_maskers.SubjectValidation(
        root, 16, **compare_maskers.common.dataset_options(args)
    )
    expected = SkeletonDataset(plain.arrays, window=16, train=False, velocity=True)
    torch.testing.assert_close(moving.dataset[0][0], expected[0][0])
    torch.testing.assert_close(moving.dataset[0][0][:, :-1], plain.dataset[0][0].diff(dim=1))
