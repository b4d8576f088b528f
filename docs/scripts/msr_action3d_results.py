"""Linear-probe results on MSR Action3D (cross-subject), written to docs/results-msr-action3d.md.

Run from the repository root (CPU is fine; every number is the last epoch's, nothing is tuned on
the test split)::

    python docs/scripts/msr_action3d_results.py --data-root ../shared/data/msr-action3d

The defaults (200 pretraining epochs, seeds 0, 1 and 2) are the page's; they take about two
hours on a 2-core CPU. ``--earlier-runs`` adds the comparison with a shorter budget's runs that
``msr_action3d_validation.py`` makes on the training subjects. For each seed it pretrains the HA-CM, MAMP and MAE presets with ``examples/train_hacm.py``,
SkeleMixCLR (ST-GCN) with ``examples/train_skelemixclr.py`` and SkeletonMAE (GIN) with
``examples/train_skeletonmae.py``, and linear-probes each encoder. The same probe is also
trained on every encoder left at random initialisation and on the raw coordinates.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import train_hacm
import train_skelemixclr
import train_skeletonmae
from msr_action3d_validation import Validation, by_budget, validate_runs, validation_table

from skelmask.data import SkeletonDataset, load_msr_action3d
from skelmask.training import (
    ProbeConfig,
    RawCoordinates,
    linear_probe,
    seed_everything,
    setup_distributed,
)


@dataclass(frozen=True)
class Method:
    """One pretraining method of the table and how to run it."""

    label: str
    short: str
    encoder: str
    script: Any
    extra: tuple[str, ...] = ()


METHODS = {
    "hacm": Method(
        "HA-CM (cross masking, motion target, cross-contrast)",
        "HA-CM",
        "transformer",
        train_hacm,
        ("--preset", "hacm"),
    ),
    "mamp": Method(
        "MAMP (motion-aware masking, motion target)",
        "MAMP",
        "transformer",
        train_hacm,
        ("--preset", "mamp"),
    ),
    "mae": Method(
        "MAE (random masking, coordinate target)",
        "MAE",
        "transformer",
        train_hacm,
        ("--preset", "mae"),
    ),
    "skelemixclr": Method(
        "SkeleMixCLR (SkeleMix mixing, MoCo contrast)", "SkeleMixCLR", "ST-GCN", train_skelemixclr
    ),
    "skeletonmae": Method(
        "SkeletonMAE-style (body-part masking, scaled cosine error)",
        "SkeletonMAE-style",
        "GIN",
        train_skeletonmae,
    ),
}
ENCODERS = {
    "transformer": ("hacm", "the reference transformer (width 128, depth 4, temporal patch 4)"),
    "ST-GCN": ("skelemixclr", "a compact ST-GCN (widths 16, 32, 64)"),
    "GIN": ("skeletonmae", "a per-frame GIN (width 32, depth 3, 4 temporal segments)"),
}


def run_folder(runs: Path, name: str, stages: str, seed: int) -> Path:
    """Where one example run writes: ``<runs>/<method>-<stages>-seed<N>``."""
    return runs / f"{name}-{stages.replace(',', '-')}-seed{seed}"


def run_once(args: argparse.Namespace, seed: int, name: str, stages: str) -> dict[str, Any]:
    """One example run, or its summary when an earlier invocation already finished it."""
    output = run_folder(args.runs, name, stages, seed)
    finished = output / "summary.json"
    if finished.is_file():
        summary: dict[str, Any] = json.loads(finished.read_text())
        return summary
    method = METHODS[name]
    argv = [
        *method.extra,
        "--data", "msr-action3d", "--data-root", str(args.data_root),
        "--window", str(args.window), "--epochs", str(args.epochs),
        "--probe-epochs", str(args.probe_epochs), "--probe-batch-size", str(args.probe_batch_size),
        "--seed", str(seed), "--device", "cpu", "--stages", stages, "--output-dir", str(output),
        "--overwrite",  # an unfinished run of an earlier invocation starts again
    ]  # fmt: skip
    return dict(method.script.main(argv))


def raw_baseline(args: argparse.Namespace, seed: int) -> float:
    """Last-epoch accuracy of the same linear probe on raw, resampled, centred coordinates."""
    finished = args.runs / f"raw-seed{seed}.json"
    if finished.is_file():
        return float(json.loads(finished.read_text())["probe_last_accuracy"])
    context = setup_distributed("cpu")
    seed_everything(seed)
    train, test, _ = load_msr_action3d(args.data_root)
    train_set = SkeletonDataset(train, window=args.window, train=True)
    test_set = SkeletonDataset(test, window=args.window, train=False)
    width = int(train_set[0][0].numel())
    config = ProbeConfig(epochs=args.probe_epochs, batch_size=args.probe_batch_size, seed=seed)
    accuracy = linear_probe(
        RawCoordinates(width), train_set, test_set, train.num_classes, config, context=context
    ).last_accuracy
    finished.parent.mkdir(parents=True, exist_ok=True)
    finished.write_text(json.dumps({"probe_last_accuracy": accuracy}) + "\n")
    return accuracy


def row(label: str, accuracies: list[float], minutes: list[float] | None, *gains: str) -> str:
    """One markdown table row: mean ± sd, per seed, gains over the baselines, pretraining minutes."""
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    per_seed = ", ".join(f"{a:.3f}" for a in accuracies)
    cost = f"{statistics.mean(minutes):.1f}" if minutes else "—"
    mean = statistics.mean(accuracies)
    columns = " | ".join(gains or ("—", "—"))
    return f"| {label} | {mean:.3f} ± {spread:.3f} | {per_seed} | {columns} | {cost} |"


def verdict_of(name: str, results: dict[str, list[float]], means: dict[str, float]) -> str:
    """One sentence per method: its gains over both baselines and in how many seeds it wins."""
    encoder = METHODS[name].encoder
    ours = results[name]
    seeds = len(ours)
    over_random = sum(a > b for a, b in zip(ours, results[encoder], strict=True))
    over_raw = sum(a > b for a, b in zip(ours, results["raw"], strict=True))
    return (
        f"**{METHODS[name].short}** ({encoder}): {means[name] - means[encoder]:+.3f} against its "
        f"encoder at random initialisation (ahead in {over_random} of {seeds} seeds) and "
        f"{means[name] - means['raw']:+.3f} against raw coordinates (ahead in {over_raw} of "
        f"{seeds} seeds)."
    )


def reproduce_command(args: argparse.Namespace, seeds: list[int], epochs: int) -> str:
    """The command line that regenerates the runs of one budget (default paths)."""
    return (
        "python docs/scripts/msr_action3d_results.py --data-root ../shared/data/msr-action3d \\\n"
        f"    --seeds {' '.join(map(str, seeds))} --window {args.window} --epochs {epochs} "
        f"--probe-epochs {args.probe_epochs} --probe-batch-size {args.probe_batch_size} \\\n"
        f"    --runs runs/msr-{epochs}"
    )


def budget_validation(args: argparse.Namespace) -> tuple[str, list[str]]:
    """The validation table of both budgets' transformer runs and the commands behind it.

    Returns:
        The markdown table (or a note when ``--earlier-runs`` was not given) and the commands
        that reproduce the page: the shorter budget's first, when there is one.
    """
    command = reproduce_command(args, args.seeds, args.epochs)
    if args.earlier_runs is None:
        return "(Run the script with `--earlier-runs` to compare budgets here.)", [command]
    candidates = [
        run_folder(folder, name, "pretrain,probe", seed)
        for folder in (args.earlier_runs, args.runs)
        for name in args.methods
        if METHODS[name].encoder == "transformer"
        for seed in args.seeds
    ]
    runs = [run for run in candidates if (run / "checkpoint-last.pt").is_file()]
    scores = validate_runs(args.data_root, runs, args.window)
    earlier = [entry for entry in scores if entry.epochs not in (0, args.epochs)]
    if not earlier:
        raise SystemExit(f"--earlier-runs {args.earlier_runs} holds no transformer checkpoints")
    earlier_seeds = sorted({entry.seed for entry in earlier})
    earlier_command = reproduce_command(args, earlier_seeds, earlier[0].epochs)
    earlier_command += " --out /tmp/shorter-budget.md"
    command += f" --earlier-runs runs/msr-{earlier[0].epochs}"
    return validation_table(scores) + "\n\n" + budget_verdict(scores, args.epochs), [
        earlier_command,
        command,
    ]


def budget_verdict(scores: list[Validation], epochs: int) -> str:
    """Which budget the training-subject validation favours, preset by preset (linear column)."""
    linear = {
        key: statistics.mean(entry.linear for entry in entries)
        for key, entries in by_budget(scores).items()
    }
    changes = [
        (label, before, linear[label, epochs])
        for (label, budget), before in linear.items()
        if label not in ("random", "raw") and budget != epochs and (label, epochs) in linear
    ]
    ahead = "ahead" if all(after > before for _, before, after in changes) else "not ahead"
    listed = ", ".join(f"{label} {before:.3f} → {after:.3f}" for label, before, after in changes)
    return (
        f"The {epochs}-epoch budget is {ahead} on the training subjects for every preset "
        f"(linear, shorter → longer budget: {listed})."
    )


def main() -> None:
    """Runs every method and seed, then writes the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data/msr-action3d"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--probe-epochs", type=int, default=100)
    parser.add_argument(
        "--probe-batch-size",
        type=int,
        default=32,
        help="MSR Action3D has 291 training clips: 32 gives the probe 9 steps per epoch",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/results-msr-action3d.md"))
    parser.add_argument("--runs", type=Path, default=Path("runs/msr-action3d"))
    parser.add_argument(
        "--earlier-runs",
        type=Path,
        help="a --runs folder of a shorter budget: the page then compares both budgets by "
        "validation on the training subjects (msr_action3d_validation.py)",
    )
    args = parser.parse_args()

    results: dict[str, list[float]] = {}
    minutes: dict[str, list[float]] = {}
    for seed in args.seeds:
        for name in args.methods:
            summary = run_once(args, seed, name, "pretrain,probe")
            results.setdefault(name, []).append(summary["probe_last_accuracy"])
            minutes.setdefault(name, []).append(summary["pretrain_seconds"] / 60)
        for encoder, (name, _) in ENCODERS.items():
            if any(METHODS[m].encoder == encoder for m in args.methods):
                summary = run_once(args, seed, name, "baseline")
                results.setdefault(encoder, []).append(summary["baseline_probe_last_accuracy"])
        results.setdefault("raw", []).append(raw_baseline(args, seed))

    means = {key: statistics.mean(values) for key, values in results.items()}
    rows = [
        row(
            f"{METHODS[name].label}, {METHODS[name].encoder}, pretrained",
            results[name],
            minutes[name],
            f"{means[name] - means[METHODS[name].encoder]:+.3f}",
            f"{means[name] - means['raw']:+.3f}",
        )
        for name in args.methods
    ]
    rows += [
        row(f"{encoder}, random initialisation (no pretraining)", results[encoder], None)
        for encoder in ENCODERS
        if encoder in results
    ]
    rows.append(row("raw coordinates (no encoder)", results["raw"], None))
    verdict = "\n".join(f"- {verdict_of(name, results, means)}" for name in args.methods)
    validation, commands = budget_validation(args)
    encoders = "; ".join(f"{name}: {text}" for name, (_, text) in ENCODERS.items())
    text = f"""# Linear probe on MSR Action3D (cross-subject)

MSR Action3D: 20 actions, 20 Kinect v1 joints, odd subjects train and even subjects test
(the standard cross-subject split; files that could not be used are reported, not dropped
silently). Clips are resampled to {args.window} frames. Encoders are the example scripts' CPU
defaults ({encoders}). Each method is pretrained for {args.epochs} epochs on the training split
with its example's optimiser settings, then the frozen encoder gets the same linear probe
(BatchNorm without affine + linear layer, SGD, lr 0.1, {args.probe_epochs} epochs, batch
{args.probe_batch_size}, with the training augmentations). **Accuracy is the last epoch's**: no
checkpoint, epoch or hyperparameter was selected on the test split. Seeds
{", ".join(map(str, args.seeds))}; pretraining wall time is per run on the 2-core CPU
development machine, where most runs went two at a time with one thread each and other work
was running, so times are indicative. Rerunning the script reuses the finished runs under
`--runs` (example runs and raw baselines).

| encoder | last-epoch accuracy (mean ± sd) | per seed | vs random init | vs raw coordinates | pretraining minutes (CPU) |
|---|---|---|---|---|---|
{chr(10).join(rows)}

{verdict}

## How these settings were chosen

**The probe.** A first run with 40 pretraining epochs and a probe of batch 128 for 50 epochs
(3 optimiser steps per epoch on 291 clips) left the probe's *training* loss still falling at its
last epoch, so the probe was given batch 32 and 100 epochs; nothing was chosen from test
accuracy. That first run gave, for seed 0 of the transformer presets: HA-CM 0.487, MAE 0.473,
MAMP 0.411, random initialisation 0.385, raw coordinates 0.607.

**The pretraining budget.** The previous version of this page pretrained for 80 epochs (seeds 0
and 1): HA-CM 0.587, MAE 0.591, MAMP 0.491, SkeleMixCLR 0.547, SkeletonMAE-style 0.578, against
0.658 for the raw coordinates, so no pretrained encoder beat them. The papers pretrain for 400
epochs, so a longer budget was the obvious next step, but choosing it from those test numbers
would be tuning on the test split. The budget is therefore compared on the training subjects
alone with `docs/scripts/msr_action3d_validation.py`: each of five folds holds out one training
subject (1, 3, 5, 7, 9), trains a linear classifier (and a kNN) on the frozen, un-augmented
features of the other four and scores the held-out one; the table gives the mean over folds and
seeds. The test subjects are not used.

{validation}

The table above uses the longer budget; {args.epochs} epochs is what the CPU budget allowed (the papers' 400 would double it). The peer methods
(ST-GCN, GIN) get the same budget so that every method has the same pretraining epochs.
Disclosure: two exploratory 200-epoch HA-CM runs (seeds 0 and 1, the same runs as in the table)
were scored on the test split before the validation script was written; seed 2 was run only
after the budget was fixed.

Chance is 0.05. The dataset README puts a plain linear classifier on raw, resampled, centred
coordinates at roughly 0.50–0.71.

Reproduce with:

```bash
{(chr(10) * 2).join(commands)}
```
"""
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
