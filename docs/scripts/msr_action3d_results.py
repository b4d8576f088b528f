"""Linear-probe results on MSR Action3D (cross-subject), written to docs/results-msr-action3d.md.

Run from the repository root (CPU is fine; every number is the last epoch's, nothing is tuned on
the test split)::

    python docs/scripts/msr_action3d_results.py --data-root ../shared/data/msr-action3d

For each seed it pretrains the HA-CM, MAMP and MAE presets with ``examples/train_hacm.py`` and
linear-probes them; the same probe is also trained on the encoder left at random initialisation
and on the raw coordinates.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import train_hacm

from skelmask.data import SkeletonDataset, load_msr_action3d
from skelmask.training import ProbeConfig, linear_probe, seed_everything, setup_distributed

PRESETS = ("hacm", "mamp", "mae")


class RawCoordinates(nn.Module):
    """The identity 'encoder': a clip's flattened coordinates ``(N, C·T·V·M)``."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, T, V, M)`` → ``(N, C·T·V·M)``."""
        return x.flatten(1)


def run_args(args: argparse.Namespace, seed: int, preset: str, stages: str, name: str) -> list[str]:
    """Command-line arguments of one train_hacm run of this table."""
    return [
        "--data", "msr-action3d", "--data-root", str(args.data_root),
        "--window", str(args.window), "--epochs", str(args.epochs),
        "--probe-epochs", str(args.probe_epochs), "--probe-batch-size", str(args.probe_batch_size),
        "--seed", str(seed), "--device", "cpu",
        "--preset", preset, "--stages", stages, "--output-dir", str(args.runs / f"{name}-seed{seed}"),
    ]  # fmt: skip


def run_once(
    args: argparse.Namespace, seed: int, preset: str, stages: str, name: str
) -> dict[str, Any]:
    """One train_hacm run, or its summary when an earlier invocation already finished it."""
    finished = args.runs / f"{name}-seed{seed}" / "summary.json"
    if finished.is_file():
        summary: dict[str, Any] = json.loads(finished.read_text())
        return summary
    return dict(train_hacm.main(run_args(args, seed, preset, stages, name)))


def raw_baseline(args: argparse.Namespace, seed: int) -> float:
    """Last-epoch accuracy of the same linear probe on raw, resampled, centred coordinates."""
    context = setup_distributed("cpu")
    seed_everything(seed)
    train, test, _ = load_msr_action3d(args.data_root)
    train_set = SkeletonDataset(train, window=args.window, train=True)
    test_set = SkeletonDataset(test, window=args.window, train=False)
    width = int(train_set[0][0].numel())
    config = ProbeConfig(epochs=args.probe_epochs, batch_size=args.probe_batch_size, seed=seed)
    return linear_probe(
        RawCoordinates(width), train_set, test_set, train.num_classes, config, context=context
    ).last_accuracy


def main() -> None:
    """Runs every configuration and seed, then writes the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data/msr-action3d"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--probe-epochs", type=int, default=100)
    parser.add_argument(
        "--probe-batch-size",
        type=int,
        default=32,
        help="MSR Action3D has 291 training clips: 32 gives the probe 9 steps per epoch",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/results-msr-action3d.md"))
    parser.add_argument("--runs", type=Path, default=Path("runs/msr-action3d"))
    args = parser.parse_args()

    results: dict[str, list[float]] = {}
    minutes: dict[str, list[float]] = {}
    for seed in args.seeds:
        for preset in PRESETS:
            summary = run_once(args, seed, preset, "pretrain,probe", preset)
            results.setdefault(preset, []).append(summary["probe_last_accuracy"])
            minutes.setdefault(preset, []).append(summary["pretrain_seconds"] / 60)
        summary = run_once(args, seed, "hacm", "baseline", "random-init")
        results.setdefault("random", []).append(summary["baseline_probe_last_accuracy"])
        results.setdefault("raw", []).append(raw_baseline(args, seed))

    labels = {
        "hacm": "HA-CM preset (cross masking, motion target, cross-contrast), pretrained",
        "mamp": "MAMP preset (motion-aware masking, motion target), pretrained",
        "mae": "MAE preset (random masking, coordinate target), pretrained",
        "random": "same encoder, random initialisation (no pretraining)",
        "raw": "raw coordinates (no encoder)",
    }
    rows = []
    for key, label in labels.items():
        accuracies = results[key]
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        per_seed = ", ".join(f"{a:.3f}" for a in accuracies)
        cost = f"{statistics.mean(minutes[key]):.1f}" if key in minutes else "—"
        rows.append(
            f"| {label} | {statistics.mean(accuracies):.3f} ± {spread:.3f} | {per_seed} | {cost} |"
        )
    means = {key: statistics.mean(values) for key, values in results.items()}
    best = max(PRESETS, key=means.__getitem__)
    verdict = (
        f"The best pretrained preset here is **{best}** at {means[best]:.3f}: "
        f"{means[best] - means['random']:+.3f} against the same encoder at random initialisation "
        f"and {means[best] - means['raw']:+.3f} against raw coordinates under the same probe. "
    )
    if means[best] > means["raw"]:
        verdict += "Pretraining beats both baselines at this budget."
    else:
        verdict += (
            "At this CPU budget pretraining helps the encoder but does **not** beat the raw "
            "coordinates: a 128-d mean-pooled feature learned from a few hundred optimiser steps "
            "on 291 clips against a 1920-d input. Closing that gap (longer pretraining, a GPU "
            "run, more seeds) is open work; the numbers are reported as measured."
        )
    command = (
        "python docs/scripts/msr_action3d_results.py --data-root ../shared/data/msr-action3d "
        f"--seeds {' '.join(map(str, args.seeds))} --window {args.window} --epochs {args.epochs} "
        f"--probe-epochs {args.probe_epochs} --probe-batch-size {args.probe_batch_size}"
    )
    text = f"""# Linear probe on MSR Action3D (cross-subject)

MSR Action3D: 20 actions, 20 Kinect v1 joints, odd subjects train and even subjects test
(the standard cross-subject split; files that could not be used are reported, not dropped
silently). Clips are resampled to {args.window} frames; the encoder is the reference skeleton
transformer of `examples/train_hacm.py` at its CPU defaults (width 128, depth 4, temporal patch
4). Each preset is pretrained for {args.epochs} epochs on the training split, then the frozen
encoder gets a linear probe (BatchNorm without affine + linear layer, SGD, lr 0.1,
{args.probe_epochs} epochs, batch {args.probe_batch_size}, with the training augmentations). **Accuracy is the last epoch's**: no checkpoint, epoch or hyperparameter was selected on
the test split. Seeds {", ".join(map(str, args.seeds))}; pretraining wall time is per run on
the 2-core CPU development machine. Rerunning the script reuses runs whose `summary.json`
exists under `--runs`.

| encoder | last-epoch accuracy (mean ± sd) | per seed | pretraining minutes (CPU) |
|---|---|---|---|
{chr(10).join(rows)}

{verdict}

How these settings were chosen: a first run with 40 pretraining epochs and a probe of batch 128
for 50 epochs (3 optimiser steps per epoch on 291 clips) left the probe's *training* loss still
falling at its last epoch, so the probe was given batch 32 and 100 epochs and pretraining 80
epochs; nothing was chosen from test accuracy. That first run gave, for seed 0: HA-CM 0.487,
MAE 0.473, MAMP 0.411, random initialisation 0.385, raw coordinates 0.607.

Chance is 0.05. The dataset README puts a plain linear classifier on raw, resampled, centred
coordinates at roughly 0.50–0.71.

Reproduce with:

```bash
{command}
```
"""
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
