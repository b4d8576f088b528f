"""What the training examples share: options, data, pretraining, evaluation and the summary.

``train_hacm.py``, ``train_skelemixclr.py`` and ``train_skeletonmae.py`` each define their model
and their defaults; everything else goes through this module, so that the three methods read the
same data, train with the same engine and are evaluated by the same probe.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from skelmask.data import (
    SkeletonArrays,
    SkeletonDataset,
    load_msr_action3d,
    load_prepared,
    synthetic_splits,
)
from skelmask.training import (
    DistributedContext,
    MetricLogger,
    PretrainConfig,
    ProbeConfig,
    cleanup_distributed,
    extract_features,
    knn_accuracy,
    linear_probe,
    pretrain,
    seed_everything,
    setup_distributed,
)

DATA_SOURCES = ("synthetic", "msr-action3d", "prepared")


@dataclass(frozen=True)
class Defaults:
    """An example's defaults: each gives a few-minute CPU run on the built-in data."""

    output_dir: str
    window: int = 32
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    min_lr: float = 5e-4
    weight_decay: float = 0.05
    warmup_epochs: int = 2
    probe_epochs: int = 30
    probe_batch_size: int = 128


def build_parser(
    description: str, stages: Sequence[str], defaults: Defaults
) -> argparse.ArgumentParser:
    """The options every example has; the example adds its model options to the result."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--stages",
        default="pretrain,probe,knn",
        help=f"comma-separated subset of {', '.join(stages)}; 'baseline' probes the same "
        "encoder at random initialisation",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data", choices=DATA_SOURCES, default="synthetic")
    data.add_argument("--data-root", type=Path, help="dataset folder (msr-action3d)")
    data.add_argument(
        "--train-file", type=Path, help="training split written by `skelmask prepare` (prepared)"
    )
    data.add_argument("--test-file", type=Path, help="test split written by `skelmask prepare`")
    data.add_argument("--layout", default="nturgb+d", help="layout of the synthetic data")
    data.add_argument("--train-samples", type=int, default=600, help="synthetic training clips")
    data.add_argument("--test-samples", type=int, default=200, help="synthetic test clips")
    data.add_argument(
        "--window", type=int, default=defaults.window, help="frames per clip fed to the model"
    )
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=defaults.epochs, help="pretraining epochs")
    train.add_argument("--batch-size", type=int, default=defaults.batch_size, help="per process")
    train.add_argument("--lr", type=float, default=defaults.lr)
    train.add_argument("--min-lr", type=float, default=defaults.min_lr)
    train.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    train.add_argument("--warmup-epochs", type=int, default=defaults.warmup_epochs)
    train.add_argument("--probe-epochs", type=int, default=defaults.probe_epochs)
    train.add_argument("--probe-lr", type=float, default=0.1)
    train.add_argument("--probe-batch-size", type=int, default=defaults.probe_batch_size)
    train.add_argument("--grad-clip", type=float)
    train.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    train.add_argument("--compile", action="store_true", help="torch.compile the model")
    train.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    train.add_argument("--seed", type=int, default=0)
    run = parser.add_argument_group("run")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    run.add_argument("--output-dir", type=Path, default=Path(defaults.output_dir))
    run.add_argument("--resume", type=Path, help="pretraining checkpoint to continue from")
    return parser


def parse(
    parser: argparse.ArgumentParser, argv: list[str] | None, stages: Sequence[str]
) -> argparse.Namespace:
    """Parses ``argv`` and checks the options of ``build_parser``; ``stages`` becomes a list."""
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(stages))
    if unknown:
        parser.error(f"--stages: unknown stage(s) {unknown}; choose from {list(stages)}")
    args.stages = chosen
    if args.data == "msr-action3d" and args.data_root is None:
        parser.error("--data msr-action3d needs --data-root (the folder holding index.csv)")
    if args.data == "prepared" and (args.train_file is None or args.test_file is None):
        parser.error("--data prepared needs --train-file and --test-file (from skelmask prepare)")
    return args


def load_data(args: argparse.Namespace) -> tuple[SkeletonArrays, SkeletonArrays, list[str]]:
    """Train and test arrays of the chosen source, and the problems found while reading."""
    if args.data == "msr-action3d":
        return load_msr_action3d(args.data_root)
    if args.data == "prepared":
        train, test = load_prepared(args.train_file), load_prepared(args.test_file)
        if (train.layout, train.num_classes) != (test.layout, test.num_classes):
            raise SystemExit(
                f"--train-file and --test-file disagree: layout/classes "
                f"{train.layout}/{train.num_classes} against {test.layout}/{test.num_classes}"
            )
        return train, test, []
    train, test = synthetic_splits(
        num_train=args.train_samples,
        num_test=args.test_samples,
        layout=args.layout,
        seed=args.seed,
    )
    return train, test, []


@dataclass
class Run:
    """One example run's data, logger and summary (the summary grows stage by stage)."""

    args: argparse.Namespace
    context: DistributedContext
    logger: MetricLogger
    train_arrays: SkeletonArrays
    train_set: SkeletonDataset
    train_eval_set: SkeletonDataset
    test_set: SkeletonDataset
    summary: dict[str, Any]

    @property
    def channels(self) -> int:
        """Input channels ``C`` of the data."""
        return int(self.train_arrays.data.shape[1])


def launch(
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace, DistributedContext], dict[str, Any]],
) -> dict[str, Any]:
    """Joins the process group (under ``torchrun``) or not, runs ``run`` and always leaves it."""
    context = setup_distributed(args.device)
    try:
        return run(args, context)
    finally:
        cleanup_distributed()


def start(args: argparse.Namespace, context: DistributedContext, method: str) -> Run:
    """Seeds, opens the metrics log, loads the data and starts the summary."""
    seed_everything(args.seed, context.rank)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    logger = MetricLogger(args.output_dir / "metrics.jsonl", enabled=context.is_main)
    train_arrays, test_arrays, problems = load_data(args)
    for problem in problems:
        logger.log({"stage": "data", "problem": problem})
    # Augmentations draw from the global RNG, which checkpoints save and restore (exact resume).
    train_set = SkeletonDataset(train_arrays, window=args.window, train=True)
    summary: dict[str, Any] = {
        "method": method,
        "data": args.data,
        "layout": train_arrays.layout,
        "train_samples": len(train_set),
        "test_samples": len(test_arrays),
        "num_classes": train_arrays.num_classes,
        "seed": args.seed,
        "device": str(context.device),
        "world_size": context.world_size,
        "skipped_files": len(problems),
    }
    return Run(
        args=args,
        context=context,
        logger=logger,
        train_arrays=train_arrays,
        train_set=train_set,
        train_eval_set=SkeletonDataset(train_arrays, window=args.window, train=False),
        test_set=SkeletonDataset(test_arrays, window=args.window, train=False),
        summary=summary,
    )


def pretrain_stage(run: Run, model: nn.Module) -> None:
    """Pretrains ``model`` (``model(x).loss``) when the stage is chosen, with checkpoints."""
    args = run.args
    if "pretrain" not in args.stages:
        return
    started = time.perf_counter()
    history = pretrain(
        model,
        run.train_set,
        PretrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            min_lr=args.min_lr,
            weight_decay=args.weight_decay,
            warmup_epochs=args.warmup_epochs,
            grad_clip=args.grad_clip,
            amp=not args.no_amp,
            compile=args.compile,
            seed=args.seed,
            num_workers=args.workers,
        ),
        context=run.context,
        output_dir=args.output_dir,
        resume=args.resume,
        logger=run.logger,
    )
    run.summary["pretrain_final_loss"] = history[-1]["loss"] if history else float("nan")
    run.summary["pretrain_seconds"] = time.perf_counter() - started


def evaluation_stages(run: Run, encoder: nn.Module, fresh_encoder: Callable[[], nn.Module]) -> None:
    """The linear probe, kNN and random-initialisation baseline stages that were chosen.

    Args:
        run: The run.
        encoder: The (pretrained) encoder; it has ``forward_features``.
        fresh_encoder: Builds the same encoder at random initialisation, for the baseline.
    """
    args = run.args
    probe_config = ProbeConfig(
        epochs=args.probe_epochs,
        batch_size=args.probe_batch_size,
        lr=args.probe_lr,
        seed=args.seed,
        num_workers=args.workers,
    )

    def probe(probed: nn.Module, key: str) -> None:
        result = linear_probe(
            probed,
            run.train_set,
            run.test_set,
            run.train_arrays.num_classes,
            probe_config,
            context=run.context,
            logger=run.logger,
        )
        run.summary[f"{key}_last_accuracy"] = result.last_accuracy
        run.summary[f"{key}_best_accuracy"] = result.best_accuracy

    if "probe" in args.stages:
        probe(encoder, "probe")
    if "knn" in args.stages:
        train_features, train_labels = extract_features(
            encoder, run.train_eval_set, batch_size=args.batch_size, context=run.context
        )
        test_features, test_labels = extract_features(
            encoder, run.test_set, batch_size=args.batch_size, context=run.context
        )
        run.summary["knn_accuracy"] = knn_accuracy(
            train_features, train_labels, test_features, test_labels
        )
    if "baseline" in args.stages:
        torch.manual_seed(args.seed)
        probe(fresh_encoder(), "baseline_probe")


def finish(run: Run) -> dict[str, Any]:
    """Writes ``summary.json`` and prints the summary table (rank 0); returns the summary."""
    if run.context.is_main:
        summary_file = run.args.output_dir / "summary.json"
        summary_file.write_text(json.dumps(run.summary, indent=2) + "\n")
        print_summary(run.summary)
    return run.summary


def print_summary(summary: dict[str, Any]) -> None:
    """A two-column table of the run's configuration and results."""
    width = max(len(key) for key in summary)
    print("\n" + "=" * (width + 14))
    for key, value in summary.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    print("=" * (width + 14))
