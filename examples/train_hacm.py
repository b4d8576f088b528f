"""Pretrain a skeleton MAE, then evaluate it: linear probe, kNN and optionally fine-tuning.

With no arguments it pretrains the HA-CM preset on skelmask's built-in procedural dataset and
linear-probes it, on CUDA when present (bf16 autocast) and on CPU otherwise, in a few minutes::

    python examples/train_hacm.py
    python examples/train_hacm.py --preset mamp --data msr-action3d --data-root ../shared/data/msr-action3d
    python examples/train_hacm.py --data prepared --window 120 \
        --train-file prepared/ntu60-xsub-train.npz --test-file prepared/ntu60-xsub-test.npz
    torchrun --standalone --nproc_per_node 4 examples/train_hacm.py --epochs 400 --batch-size 32

Every stage writes JSON lines to ``<output-dir>/metrics.jsonl``; pretraining writes
``checkpoint-last.pt`` (resume with ``--resume``); the run ends with a summary table and
``summary.json``. Accuracies are the **last epoch's**; the best epoch's is shown for reference
only (selecting it would be tuning on the test split).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import torch

from skelmask.data import (
    SkeletonArrays,
    SkeletonDataset,
    load_msr_action3d,
    load_prepared,
    synthetic_splits,
)
from skelmask.models import SkeletonClassifier, SkeletonEncoder, SkeletonMAE, create_mae
from skelmask.training import (
    DistributedContext,
    FinetuneConfig,
    MetricLogger,
    PretrainConfig,
    ProbeConfig,
    cleanup_distributed,
    extract_features,
    finetune,
    knn_accuracy,
    linear_probe,
    pretrain,
    seed_everything,
    setup_distributed,
)

STAGES = ("pretrain", "probe", "knn", "finetune", "baseline")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults give a few-minute CPU run on the built-in data."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=("hacm", "mamp", "mae"), default="hacm")
    parser.add_argument(
        "--stages",
        default="pretrain,probe,knn",
        help=f"comma-separated subset of {', '.join(STAGES)}; 'baseline' probes the same "
        "encoder at random initialisation",
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data", choices=("synthetic", "msr-action3d", "prepared"), default="synthetic"
    )
    data.add_argument("--data-root", type=Path, help="dataset folder (msr-action3d)")
    data.add_argument(
        "--train-file", type=Path, help="training split written by `skelmask prepare` (prepared)"
    )
    data.add_argument("--test-file", type=Path, help="test split written by `skelmask prepare`")
    data.add_argument("--layout", default="nturgb+d", help="layout of the synthetic data")
    data.add_argument("--window", type=int, default=32, help="frames per clip fed to the model")
    model = parser.add_argument_group("model")
    model.add_argument("--t-patch", type=int, default=4)
    model.add_argument("--embed-dim", type=int, default=128)
    model.add_argument("--depth", type=int, default=4)
    model.add_argument("--heads", type=int, default=4)
    model.add_argument("--decoder-dim", type=int, default=128)
    model.add_argument("--decoder-depth", type=int, default=2)
    model.add_argument("--mask-ratio", type=float, default=0.9)
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=20, help="pretraining epochs")
    train.add_argument("--batch-size", type=int, default=32, help="per process")
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--min-lr", type=float, default=5e-4)
    train.add_argument("--warmup-epochs", type=int, default=2)
    train.add_argument("--probe-epochs", type=int, default=30)
    train.add_argument("--probe-lr", type=float, default=0.1)
    train.add_argument("--probe-batch-size", type=int, default=128)
    train.add_argument("--finetune-epochs", type=int, default=30)
    train.add_argument(
        "--labelled-ratio", type=float, help="fine-tune on this class-balanced share"
    )
    train.add_argument("--grad-clip", type=float)
    train.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    train.add_argument("--compile", action="store_true", help="torch.compile the model")
    train.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    train.add_argument("--seed", type=int, default=0)
    run = parser.add_argument_group("run")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    run.add_argument("--output-dir", type=Path, default=Path("runs/train_hacm"))
    run.add_argument("--resume", type=Path, help="pretraining checkpoint to continue from")
    args = parser.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"--stages: unknown stage(s) {unknown}; choose from {list(STAGES)}")
    args.stages = stages
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
    train, test = synthetic_splits(layout=args.layout, seed=args.seed)
    return train, test, []


def build_mae(args: argparse.Namespace, layout: str, channels: int) -> SkeletonMAE:
    """The preset's MAE; its encoder is what every evaluation stage uses."""
    return create_mae(
        args.preset,
        layout=layout,
        num_frames=args.window,
        t_patch=args.t_patch,
        in_channels=channels,
        embed_dim=args.embed_dim,
        depth=args.depth,
        num_heads=args.heads,
        decoder_dim=args.decoder_dim,
        decoder_depth=args.decoder_depth,
        mask_ratio=args.mask_ratio,
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the requested stages and returns the summary (also written to summary.json)."""
    args = parse_args(argv)
    context = setup_distributed(args.device)
    try:
        return run(args, context)
    finally:
        cleanup_distributed()


def run(args: argparse.Namespace, context: DistributedContext) -> dict[str, Any]:
    """The pipeline: data, pretraining, then each evaluation stage."""
    seed_everything(args.seed, context.rank)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    logger = MetricLogger(args.output_dir / "metrics.jsonl", enabled=context.is_main)
    train_arrays, test_arrays, problems = load_data(args)
    for problem in problems:
        logger.log({"stage": "data", "problem": problem})
    channels = train_arrays.data.shape[1]
    # Augmentations draw from the global RNG, which checkpoints save and restore (exact resume).
    train_set = SkeletonDataset(train_arrays, window=args.window, train=True)
    train_eval_set = SkeletonDataset(train_arrays, window=args.window, train=False)
    test_set = SkeletonDataset(test_arrays, window=args.window, train=False)
    summary: dict[str, Any] = {
        "preset": args.preset,
        "data": args.data,
        "layout": train_arrays.layout,
        "train_samples": len(train_set),
        "test_samples": len(test_set),
        "num_classes": train_arrays.num_classes,
        "seed": args.seed,
        "device": str(context.device),
        "world_size": context.world_size,
        "skipped_files": len(problems),
    }
    mae = build_mae(args, train_arrays.layout, channels)
    amp = not args.no_amp
    if "pretrain" in args.stages:
        started = time.perf_counter()
        history = pretrain(
            mae,
            train_set,
            PretrainConfig(
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                min_lr=args.min_lr,
                warmup_epochs=args.warmup_epochs,
                grad_clip=args.grad_clip,
                amp=amp,
                compile=args.compile,
                seed=args.seed,
                num_workers=args.workers,
            ),
            context=context,
            output_dir=args.output_dir,
            resume=args.resume,
            logger=logger,
        )
        summary["pretrain_final_loss"] = history[-1]["loss"] if history else float("nan")
        summary["pretrain_seconds"] = time.perf_counter() - started
    encoder = mae.encoder
    probe_config = ProbeConfig(
        epochs=args.probe_epochs,
        batch_size=args.probe_batch_size,
        lr=args.probe_lr,
        seed=args.seed,
        num_workers=args.workers,
    )

    def probe(model: SkeletonEncoder, key: str) -> None:
        result = linear_probe(
            model,
            train_set,
            test_set,
            train_arrays.num_classes,
            probe_config,
            context=context,
            logger=logger,
        )
        summary[f"{key}_last_accuracy"] = result.last_accuracy
        summary[f"{key}_best_accuracy"] = result.best_accuracy

    if "probe" in args.stages:
        probe(encoder, "probe")
    if "knn" in args.stages:
        train_features, train_labels = extract_features(
            encoder, train_eval_set, batch_size=args.batch_size, context=context
        )
        test_features, test_labels = extract_features(
            encoder, test_set, batch_size=args.batch_size, context=context
        )
        summary["knn_accuracy"] = knn_accuracy(
            train_features, train_labels, test_features, test_labels
        )
    if "baseline" in args.stages:
        torch.manual_seed(args.seed)
        probe(build_mae(args, train_arrays.layout, channels).encoder, "baseline_probe")
    if "finetune" in args.stages:
        classifier = SkeletonClassifier(
            copy.deepcopy(encoder), train_arrays.num_classes, head="finetune", dropout=0.3
        )
        result = finetune(
            classifier,
            train_set,
            test_set,
            FinetuneConfig(
                epochs=args.finetune_epochs,
                batch_size=args.batch_size,
                amp=amp,
                seed=args.seed,
                num_workers=args.workers,
                labelled_ratio=args.labelled_ratio,
            ),
            context=context,
            logger=logger,
        )
        summary["finetune_last_accuracy"] = result.last_accuracy
        summary["finetune_best_accuracy"] = result.best_accuracy
    if context.is_main:
        (args.output_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print_summary(summary)
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    """A two-column table of the run's configuration and results."""
    width = max(len(key) for key in summary)
    print("\n" + "=" * (width + 14))
    for key, value in summary.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    print("=" * (width + 14))


if __name__ == "__main__":
    main()
