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


def preset_encoder(run: Path | None, preset: str, window: int, seed: int) -> nn.Module:
    """``train_hacm.py``'s default transformer, from ``run/checkpoint-last.pt`` or random."""
    seed_everything(seed)
    options = train_hacm.parse_args(["--preset", preset, "--window", str(window)])
    mae = train_hacm.build_mae(options, "msr-action3d", channels=3)
    if run is not None:
        checkpoint = torch.load(run / "checkpoint-last.pt", weights_only=True, map_location="cpu")
        mae.load_state_dict(checkpoint["model"])
    return mae.encoder


def main() -> None:
    """Prints one validation row per run, then random initialisation and raw coordinates."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data/msr-action3d"))
    parser.add_argument("--runs", type=Path, nargs="+", required=True)
    parser.add_argument("--window", type=int, default=32)
    args = parser.parse_args()

    train, _, _ = load_msr_action3d(args.data_root)
    subjects = subjects_of(train)
    dataset = SkeletonDataset(train, window=args.window, train=False)
    context = DistributedContext()
    rows = ["| run | pretraining epochs | linear (LOSO) | kNN (LOSO) |", "|---|---|---|---|"]

    def add_row(label: str, epochs: str, encoder: nn.Module | None) -> None:
        if encoder is None:
            stacked = torch.stack([dataset[i][0] for i in range(len(dataset))])
            features = stacked.flatten(1)
            labels = torch.as_tensor(train.labels)
        else:
            features, labels = extract_features(encoder, dataset, batch_size=64, context=context)
        linear, knn = leave_one_subject_out(features, labels, subjects, train.num_classes)
        rows.append(f"| {label} | {epochs} | {linear:.3f} | {knn:.3f} |")
        print(rows[-1], flush=True)

    for run in args.runs:
        # msr_action3d_results.py names run directories "<preset>-<stages>-seed<N>".
        preset = run.name.split("-")[0]
        checkpoint = torch.load(run / "checkpoint-last.pt", weights_only=True, map_location="cpu")
        seed = int(checkpoint["config"]["seed"])
        add_row(
            run.name,
            str(checkpoint["config"]["epochs"]),
            preset_encoder(run, preset, args.window, seed),
        )
    add_row("transformer, random initialisation", "0", preset_encoder(None, "hacm", args.window, 0))
    add_row("raw coordinates", "—", None)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
