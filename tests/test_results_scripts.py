"""The scripts behind docs/results-msr-action3d.md: validation folds and the table's verdicts.

The pretraining budget of the results page is chosen by leave-one-subject-out validation on the
training subjects, so these tests check that a fold never trains on the subject it scores, that
the fold classifiers can learn what is learnable, and that the page's sentences count seeds
correctly.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from skelmask.data import SkeletonArrays, load_msr_action3d

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "docs" / "scripts"
MSR_ROOT = ROOT.parent / "shared" / "data" / "msr-action3d"


def import_script(name: str) -> ModuleType:
    """Imports ``docs/scripts/<name>.py`` as a script would; ``sys.path`` is restored after."""
    saved = list(sys.path)
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        # Dataclasses look their module up in sys.modules while the module executes.
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path[:] = saved


@pytest.fixture(scope="module")
def validation() -> ModuleType:
    return import_script("msr_action3d_validation")


@pytest.fixture(scope="module")
def results() -> ModuleType:
    return import_script("msr_action3d_results")


def arrays_named(names: list[str]) -> SkeletonArrays:
    return SkeletonArrays(
        data=np.zeros((len(names), 3, 4, 20, 1)),
        labels=np.zeros(len(names), dtype=np.int64),
        lengths=np.full(len(names), 4),
        layout="msr-action3d",
        num_classes=1,
        names=names,
    )


def test_subjects_come_from_the_file_names(validation: ModuleType) -> None:
    arrays = arrays_named(["a01_s01_e01", "a20_s09_e03", "a05_s10_e02"])
    assert validation.subjects_of(arrays).tolist() == [1, 9, 10]


def test_a_name_without_a_subject_is_an_error_naming_it(validation: ModuleType) -> None:
    with pytest.raises(ValueError, match="clip_7"):
        validation.subjects_of(arrays_named(["a01_s01_e01", "clip_7"]))


def test_folds_learn_a_learnable_task(validation: ModuleType) -> None:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(100) % 4
    features = torch.nn.functional.one_hot(labels, 4).float() * 3
    features = features + 0.3 * torch.randn(100, 4, generator=generator)
    subjects = np.repeat([1, 3, 5, 7, 9], 20)
    linear, knn = validation.leave_one_subject_out(features, labels, subjects, num_classes=4)
    assert linear == 1.0
    assert knn == 1.0


def test_a_fold_never_trains_on_the_subject_it_scores(validation: ModuleType) -> None:
    # Every sample has its own random features and a random label: a classifier can only
    # reproduce a label it was trained on, so any leak of the held-out subject into training
    # would lift accuracy far above chance (0.1 for 10 classes).
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(250, 400, generator=generator)
    labels = torch.randint(0, 10, (250,), generator=generator)
    subjects = np.repeat([1, 3, 5, 7, 9], 50)
    linear, knn = validation.leave_one_subject_out(features, labels, subjects, num_classes=10)
    assert linear < 0.3
    assert knn < 0.3


def test_verdict_counts_the_seeds_a_method_wins(results: ModuleType) -> None:
    accuracies = {
        "hacm": [0.70, 0.60, 0.68],
        "transformer": [0.50, 0.62, 0.40],
        "raw": [0.65, 0.65, 0.65],
    }
    means = {key: float(np.mean(values)) for key, values in accuracies.items()}
    sentence = results.verdict_of("hacm", accuracies, means)
    assert "ahead in 2 of 3 seeds) and" in sentence
    assert "+0.010 against raw coordinates (ahead in 2 of 3 seeds)" in sentence
    assert "+0.153 against its encoder" in sentence


def test_validation_table_averages_the_seeds_of_each_budget(validation: ModuleType) -> None:
    entry = validation.Validation
    scores = [
        entry("hacm", 80, 0, 0.50, 0.40),
        entry("hacm", 80, 1, 0.40, 0.30),
        entry("hacm", 200, 0, 0.62, 0.60),
        entry("random", 0, 0, 0.40, 0.25),
        entry("raw", 0, 0, 0.57, 0.59),
    ]
    lines = validation.validation_table(scores).splitlines()
    assert lines[2:] == [
        "| hacm | 80 | 0, 1 | 0.450 | 0.350 |",
        "| hacm | 200 | 0 | 0.620 | 0.600 |",
        "| random initialisation | — | 0 | 0.400 | 0.250 |",
        "| raw coordinates | — | 0 | 0.570 | 0.590 |",
    ]


def test_table_rows_show_both_gains(results: ModuleType) -> None:
    line = results.row("HA-CM", [0.6, 0.8], [2.0, 4.0], "+0.100", "+0.050")
    assert line == "| HA-CM | 0.700 ± 0.141 | 0.600, 0.800 | +0.100 | +0.050 | 3.0 |"
    baseline = results.row("raw coordinates", [0.5], None)
    assert baseline == "| raw coordinates | 0.500 ± 0.000 | 0.500 | — | — | — |"


@pytest.mark.skipif(not MSR_ROOT.is_dir(), reason="needs ../shared/data/msr-action3d")
def test_the_validation_folds_are_the_five_odd_training_subjects(validation: ModuleType) -> None:
    train, test, _ = load_msr_action3d(MSR_ROOT)
    assert sorted(set(validation.subjects_of(train).tolist())) == [1, 3, 5, 7, 9]
    assert sorted(set(validation.subjects_of(test).tolist())) == [2, 4, 6, 8, 10]


def test_reproduce_command_names_the_budget_and_its_runs_folder(results: ModuleType) -> None:
    options = argparse.Namespace(window=32, probe_epochs=100, probe_batch_size=32)
    command = results.reproduce_command(options, [0, 1, 2], 200)
    assert "--seeds 0 1 2 --window 32 --epochs 200" in command
    assert command.endswith("--runs runs/msr-200")
    assert all(line.endswith("\\") for line in command.splitlines()[:-1])


def test_budget_verdict_says_which_budget_validation_favours(
    results: ModuleType, validation: ModuleType
) -> None:
    entry = validation.Validation
    scores = [
        entry("hacm", 80, 0, 0.50, 0.4),
        entry("mae", 80, 0, 0.55, 0.4),
        entry("hacm", 200, 0, 0.60, 0.5),
        entry("mae", 200, 0, 0.52, 0.5),
        entry("raw", 0, 0, 0.57, 0.59),
    ]
    mixed = results.budget_verdict(scores, 200)
    assert mixed.startswith("The 200-epoch budget is not ahead")
    assert "hacm 0.500 → 0.600, mae 0.550 → 0.520" in mixed
    ahead = results.budget_verdict(scores[:3], 200)
    assert ahead.startswith("The 200-epoch budget is ahead on the training subjects for every")


# --- docs/scripts/msr_action3d_ablations.py ------------------------------------------------


@pytest.fixture(scope="module")
def ablations() -> ModuleType:
    return import_script("msr_action3d_ablations")


def comparison(scores: dict[str, list[tuple[float, float]]], targets: list[str]) -> dict:
    """A compare_maskers result: ``scores[row]`` lists (validation, test probe) per seed."""
    runs = []
    for row, values in scores.items():
        masker, _, target = row.partition(" / ")
        for seed, (loso, probe) in enumerate(values):
            runs.append(
                {"label": masker, "seed": seed, "probe": probe, "knn": 0.1,
                 "loso_linear": loso, "loso_knn": 0.1, "target": target or targets[0]}
            )  # fmt: skip
    summary = {
        row: {"loso_linear": {"mean": float(np.mean([v for v, _ in values]))}}
        for row, values in scores.items()
    }
    return {"targets": targets, "runs": runs, "summary": summary}


def test_the_chosen_masker_is_the_best_on_validation_not_on_test(ablations: ModuleType) -> None:
    results = comparison(
        {"random": [(0.5, 0.9)], "tube": [(0.6, 0.1)], "motion": [(0.4, 0.99)]}, ["motion"]
    )
    assert ablations.best_on_validation(results, ["tube", "motion"]) == "tube"


def test_head_to_head_counts_the_seeds_ahead_on_each_split(ablations: ModuleType) -> None:
    results = comparison(
        {
            "tube": [(0.6, 0.5), (0.4, 0.7), (0.7, 0.2)],
            "random": [(0.5, 0.6), (0.5, 0.6), (0.5, 0.6)],
        },
        ["motion"],
    )
    text, ahead_validation, ahead_test = ablations.head_to_head(results, "tube", "random", {})
    assert (ahead_validation, ahead_test) == (2, 1)
    assert "| 1 | 0.400 | 0.500 | 0.700 | 0.600 |" in text


def test_rows_of_several_targets_are_matched_by_target(ablations: ModuleType) -> None:
    results = comparison(
        {"random / coords": [(0.3, 0.4)], "random / motion": [(0.6, 0.7)]}, ["coords", "motion"]
    )
    assert ablations.per_seed(results, "random / motion")[0]["loso_linear"] == 0.6
    assert ablations.per_seed(results, "random / coords")[0]["probe"] == 0.4


def test_only_finished_baselines_are_shared(ablations: ModuleType, tmp_path: Path) -> None:
    source, destination = tmp_path / "a", tmp_path / "b"
    (source / "runs" / "baselines-seed0").mkdir(parents=True)
    (source / "runs" / "baselines-seed0" / "summary.json").write_text("{}")
    (source / "runs" / "baselines-seed1").mkdir(parents=True)  # unfinished
    ablations.share_baselines(source, destination, [0, 1])
    assert (destination / "runs" / "baselines-seed0" / "summary.json").is_file()
    assert not (destination / "runs" / "baselines-seed1").exists()


def test_finetune_section_reports_each_seed_the_mean_and_the_gap_to_raw(
    ablations: ModuleType,
) -> None:
    init = ablations.compare_maskers.RANDOM_INIT
    results = {"summary": {ablations.compare_maskers.RAW: {"probe": {"mean": 0.6}}}}
    scores = {
        "hyperbolic": {0: 0.7, 1: 0.5},
        "random": {0: 0.6, 1: 0.6},
        init: {0: 0.3, 1: 0.5},
    }
    text = ablations.finetune_section(results, scores, "hyperbolic", [0, 1])
    # mean 0.6, sd of (0.7, 0.5) = sqrt(0.02) = 0.141; vs raw 0.6 - 0.6 = 0
    assert (
        "| `hyperbolic` (chosen on validation), pretrained | 0.700 | 0.500 | 0.600 ± 0.141 |"
        in text
    )
    assert (
        "| random initialisation (supervised from scratch) | 0.300 | 0.500 | 0.400 ± 0.141 | -0.200 |"
        in text
    )
    assert "ahead of random masking in 1 of 2 seeds" in text
    assert "scores 0.600 on the test split" in text


def test_longer_pipeline_changes_only_the_pretraining_epochs(ablations: ModuleType) -> None:
    args = argparse.Namespace(data_root=Path("msr"))
    argv = ablations.longer_argv(args, "hyperbolic", 2)
    options = dict(zip(argv[::2], argv[1::2], strict=True))
    assert options["--epochs"] == str(ablations.LONGER_EPOCHS)
    assert options["--masker"] == "hyperbolic"
    assert options["--seed"] == "2"
    assert options["--stages"] == "pretrain,probe,knn,finetune"
    budget = dict(zip(ablations.BUDGET[::2], ablations.BUDGET[1::2], strict=True))
    finetune = ablations.FINETUNE_OPTIONS
    for key, value in [*budget.items(), *zip(finetune[::2], finetune[1::2], strict=True)]:
        if key != "--epochs":
            assert options[key] == value, key


def test_longer_section_compares_the_chosen_masker_with_random_masking(
    ablations: ModuleType,
) -> None:
    results = {"summary": {ablations.compare_maskers.RAW: {"probe": {"mean": 0.6}}}}

    def scores(loso: float, finetune: float, minutes: float) -> dict[str, float]:
        return {"loso_linear": loso, "probe": 0.6, "knn": 0.3, "finetune": finetune,
                "minutes": minutes}  # fmt: skip

    longer = {
        "hyperbolic": {0: scores(0.5, 0.8, 10.0), 1: scores(0.7, 0.6, 12.0)},
        "random": {0: scores(0.4, 0.7, 14.0), 1: scores(0.8, 0.5, 16.0)},
    }
    finetuned = {"hyperbolic": {0: 0.7, 1: 0.65}}
    text = ablations.longer_section(results, longer, finetuned, "hyperbolic")
    # hyperbolic: means 0.6, 0.6, 0.3, 0.7; sd of (0.5, 0.7) = sqrt(0.02) = 0.141
    assert (
        "| `hyperbolic` | 0.600 ± 0.141 | 0.600 ± 0.000 | 0.300 ± 0.000 | 0.700 ± 0.141 | +0.100 |"
        in text
    )
    assert "| 1 | 0.700 | 0.800 | 0.600 | 0.500 |" in text
    assert "ahead of random masking in 1 of 2 seeds on validation and in 2 of 2 fine-tuned" in text
    assert "scores 0.700, +0.100 against the raw coordinates' linear probe (0.600)" in text
    assert "it scored 0.675" in text
    assert "13.0 minutes per run" in text
