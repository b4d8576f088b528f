r"""Chooses the MSR Action3D pretraining length on the training subjects only.

The results table must not be tuned on the test split, so the pretraining budget is compared
here by leave-one-subject-out validation inside the training split (subjects 1, 3, 5, 7, 9):
each fold trains a linear classifier on the frozen, un-augmented features of four training
subjects and scores the fifth; the mean over the five folds is printed. The test subjects are
never loaded into a classifier. Run from the repository root with the run directories that
``msr_action3d_results.py`` wrote (each holds ``checkpoint-last.pt`` of a transformer
preset)::

    python docs/scripts/msr_action3d_validation.py --data-root ../shared/data/msr-action3d \
        --runs runs/msr-80/hacm-pretrain-probe-seed0 runs/msr-200/hacm-pretrain-probe-seed0
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import train_hacm

from skelmask.data import SkeletonArrays, SkeletonDataset, load_msr_action3d
from skelmask.training import DistributedContext, extract_features, knn_accuracy, seed_everything


def subjects_of(arrays: SkeletonArrays) -> np.ndarray:
    """Subject number of every sample, from names such as ``"a01_s07_e02"``; shape ``(N,)``."""
    found = [re.search(r"_s(\d+)_", name) for name in arrays.names]
    missing = [name for name, match in zip(arrays.names, found, strict=True) if match is None]
    if missing:
        raise ValueError(f"sample names without a subject '_sNN_': {missing[:3]}")
    return np.array([int(match[1]) for match in found if match is not None])


def linear_accuracy(
    train_x: Tensor, train_y: Tensor, val_x: Tensor, val_y: Tensor, num_classes: int
) -> float:
    """Multinomial logistic regression (L-BFGS, fixed L2 1e-3) on standardised features.

    Args:
        train_x: ``(N, D)`` training features.
        train_y: ``(N,)`` their labels.
        val_x: ``(M, D)`` validation features.
        val_y: ``(M,)`` their labels.
        num_classes: Number of classes.

    Returns:
        Validation accuracy in ``[0, 1]``.
    """
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    train_x, val_x = (train_x - mean) / std, (val_x - mean) / std
    torch.manual_seed(0)
    classifier = nn.Linear(train_x.shape[1], num_classes)
    optimiser = torch.optim.LBFGS(classifier.parameters(), max_iter=200, history_size=20)

    def closure() -> Tensor:
        optimiser.zero_grad()
        loss = F.cross_entropy(classifier(train_x), train_y)
        loss = loss + 1e-3 * classifier.weight.square().sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        return float((classifier(val_x).argmax(1) == val_y).float().mean())


def leave_one_subject_out(
    features: Tensor, labels: Tensor, subjects: np.ndarray, num_classes: int
) -> tuple[float, float]:
    """Mean linear and kNN accuracy over folds that each hold out one subject."""
    linear, knn = [], []
    for subject in np.unique(subjects):
        held_out = torch.from_numpy(subjects == subject)
        train_x, train_y = features[~held_out], labels[~held_out]
        val_x, val_y = features[held_out], labels[held_out]
        linear.append(linear_accuracy(train_x, train_y, val_x, val_y, num_classes))
        knn.append(knn_accuracy(train_x, train_y, val_x, val_y))
    return statistics.mean(linear), statistics.mean(knn)


def preset_encoder(
    weights: dict[str, Tensor] | None, preset: str, window: int, seed: int
) -> nn.Module:
    """``train_hacm.py``'s default transformer, with a checkpoint's MAE weights or random."""
    seed_everything(seed)
    options = train_hacm.parse_args(["--preset", preset, "--window", str(window)])
    mae = train_hacm.build_mae(options, "msr-action3d", channels=3)
    if weights is not None:
        mae.load_state_dict(weights)
    return mae.encoder


@dataclass(frozen=True)
class Validation:
    """Leave-one-subject-out accuracies of one encoder's frozen features.

    Attributes:
        label: The preset name, ``"random"`` or ``"raw"``.
        epochs: Pretraining epochs of the checkpoint (0 for random initialisation and raw).
        seed: Seed of the run.
        linear: Mean linear-classifier accuracy over the folds.
        knn: Mean kNN accuracy over the folds.
    """

    label: str
    epochs: int
    seed: int
    linear: float
    knn: float


def validate_runs(data_root: Path, runs: list[Path], window: int) -> list[Validation]:
    """Scores every run's checkpoint, then random initialisation and raw coordinates.

    Args:
        data_root: The MSR Action3D folder; only its training split is read.
        runs: Run directories named ``<preset>-<stages>-seed<N>`` (as
            ``msr_action3d_results.py`` writes them), each with ``checkpoint-last.pt``.
        window: Frames per clip, as in pretraining.

    Returns:
        One entry per run, in order, then ``"random"`` (seed 0) and ``"raw"``.
    """
    train, _, _ = load_msr_action3d(data_root)
    subjects = subjects_of(train)
    dataset = SkeletonDataset(train, window=window, train=False)
    context = DistributedContext()

    def score(label: str, epochs: int, seed: int, encoder: nn.Module | None) -> Validation:
        if encoder is None:
            features = torch.stack([dataset[i][0] for i in range(len(dataset))]).flatten(1)
            labels = torch.as_tensor(train.labels)
        else:
            features, labels = extract_features(encoder, dataset, batch_size=64, context=context)
        linear, knn = leave_one_subject_out(features, labels, subjects, train.num_classes)
        return Validation(label, epochs, seed, linear, knn)

    scores = []
    for run in runs:
        preset = run.name.split("-")[0]
        checkpoint = torch.load(run / "checkpoint-last.pt", weights_only=True, map_location="cpu")
        seed = int(checkpoint["config"]["seed"])
        encoder = preset_encoder(checkpoint["model"], preset, window, seed)
        scores.append(score(preset, int(checkpoint["config"]["epochs"]), seed, encoder))
    scores.append(score("random", 0, 0, preset_encoder(None, "hacm", window, 0)))
    scores.append(score("raw", 0, 0, None))
    return scores


def by_budget(scores: list[Validation]) -> dict[tuple[str, int], list[Validation]]:
    """The scores grouped by ``(label, epochs)``, groups and seeds in their first-seen order."""
    groups: dict[tuple[str, int], list[Validation]] = {}
    for entry in scores:
        groups.setdefault((entry.label, entry.epochs), []).append(entry)
    return groups


def validation_table(scores: list[Validation]) -> str:
    """A markdown table, one row per (label, epochs) with the mean over seeds."""
    lines = [
        "| encoder | pretraining epochs | seeds | linear (LOSO) | kNN (LOSO) |",
        "|---|---|---|---|---|",
    ]
    for (label, epochs), entries in by_budget(scores).items():
        seeds = ", ".join(str(entry.seed) for entry in entries)
        linear = statistics.mean(entry.linear for entry in entries)
        knn = statistics.mean(entry.knn for entry in entries)
        shown = {"random": "random initialisation", "raw": "raw coordinates"}.get(label, label)
        budget = str(epochs) if label not in ("random", "raw") else "—"
        lines.append(f"| {shown} | {budget} | {seeds} | {linear:.3f} | {knn:.3f} |")
    return "\n".join(lines)


def main() -> None:
    """Prints the validation table of the given runs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data/msr-action3d"))
    parser.add_argument("--runs", type=Path, nargs="+", required=True)
    parser.add_argument("--window", type=int, default=32)
    args = parser.parse_args()
    print(validation_table(validate_runs(args.data_root, args.runs, args.window)))


if __name__ == "__main__":
    main()
