r"""Pretrain an ST-GCN with SkeleMixCLR, then evaluate it: linear probe and kNN.

With no arguments it pretrains a compact ST-GCN on skelmask's built-in procedural dataset and
linear-probes it, on CUDA when present (bf16 autocast) and on CPU otherwise, in a few minutes::

    python examples/train_skelemixclr.py
    python examples/train_skelemixclr.py --data msr-action3d --data-root ../shared/data/msr-action3d
    python examples/train_skelemixclr.py --window 64 --queue-size 32768 --momentum 0.999 \
        --channels 16,16,16,16,32,32,32,64,64,256 --strides 1,1,1,1,2,1,1,2,1,1

The last command is the 1/4-width ST-GCN and MoCo settings of SkeleMixCLR. Unlike the reference
(SGD, lr 0.1 constant), pretraining uses skelmask's engine: AdamW with warm-up and cosine decay.
The engine hands the model one augmented clip per sample; the model derives its query and key
views from it by two independent random shears (see ``SkeleMixCLR``).

Every stage writes JSON lines to ``<output-dir>/metrics.jsonl``; pretraining writes
``checkpoint-last.pt`` (resume with ``--resume``); the run ends with a summary table and
``summary.json``. Accuracies are the **last epoch's**; the best epoch's is shown for reference
only (selecting it would be tuning on the test split).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from skelmask.data import SkeletonArrays, SkeletonDataset, load_msr_action3d, synthetic_splits
from skelmask.layouts import get_layout
from skelmask.models.skelemixclr import SkeleMixCLR
from skelmask.models.stgcn import STGCN
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

STAGES = ("pretrain", "probe", "knn", "baseline")


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one integer, got {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults give a few-minute CPU run on the built-in data."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--stages",
        default="pretrain,probe,knn",
        help=f"comma-separated subset of {', '.join(STAGES)}; 'baseline' probes the same "
        "encoder at random initialisation",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data", choices=("synthetic", "msr-action3d"), default="synthetic")
    data.add_argument("--data-root", type=Path, help="dataset folder (msr-action3d)")
    data.add_argument("--layout", default="nturgb+d", help="layout of the synthetic data")
    data.add_argument(
        "--window", type=int, default=32, help="frames per clip; a multiple of the total stride"
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--channels", type=_int_list, default=[16, 32, 64], help="ST-GCN block widths"
    )
    model.add_argument(
        "--strides", type=_int_list, default=[1, 2, 2], help="ST-GCN temporal strides"
    )
    model.add_argument("--dropout", type=float, default=0.5)
    model.add_argument("--feature-dim", type=int, default=128)
    model.add_argument("--queue-size", type=int, default=512)
    model.add_argument("--momentum", type=float, default=0.99)
    model.add_argument("--temperature", type=float, default=0.2)
    model.add_argument("--mix-weight", type=float, default=1.0)
    model.add_argument("--shear", type=float, default=0.5, help="shear amplitude of the views")
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=5, help="pretraining epochs")
    train.add_argument("--batch-size", type=int, default=64, help="per process")
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--min-lr", type=float, default=1e-5)
    train.add_argument("--weight-decay", type=float, default=1e-4)
    train.add_argument("--warmup-epochs", type=int, default=1)
    train.add_argument("--probe-epochs", type=int, default=10)
    train.add_argument("--probe-lr", type=float, default=0.1)
    train.add_argument("--probe-batch-size", type=int, default=128)
    train.add_argument("--grad-clip", type=float)
    train.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    train.add_argument("--compile", action="store_true", help="torch.compile the model")
    train.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    train.add_argument("--seed", type=int, default=0)
    run = parser.add_argument_group("run")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    run.add_argument("--output-dir", type=Path, default=Path("runs/train_skelemixclr"))
    run.add_argument("--resume", type=Path, help="pretraining checkpoint to continue from")
    args = parser.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"--stages: unknown stage(s) {unknown}; choose from {list(STAGES)}")
    args.stages = stages
    if args.data == "msr-action3d" and args.data_root is None:
        parser.error("--data msr-action3d needs --data-root (the folder holding index.csv)")
    if len(args.channels) != len(args.strides):
        parser.error(
            f"--channels has {len(args.channels)} blocks but --strides has {len(args.strides)}"
        )
    total_stride = 1
    for stride in args.strides:
        total_stride *= stride
    if args.window % total_stride != 0:
        parser.error(
            f"--window {args.window} must be a multiple of the total temporal stride "
            f"{total_stride} (the product of --strides)"
        )
    return args


def load_data(args: argparse.Namespace) -> tuple[SkeletonArrays, SkeletonArrays, list[str]]:
    """Train and test arrays of the chosen source, and the problems found while reading."""
    if args.data == "msr-action3d":
        return load_msr_action3d(args.data_root)
    train, test = synthetic_splits(layout=args.layout, seed=args.seed)
    return train, test, []


def build_encoder(args: argparse.Namespace, layout: str, channels: int) -> STGCN:
    """The ST-GCN that every evaluation stage uses."""
    return STGCN(
        get_layout(layout),
        in_channels=channels,
        channels=args.channels,
        strides=args.strides,
        dropout=args.dropout,
    )


def build_model(args: argparse.Namespace, encoder: STGCN, layout: str) -> SkeleMixCLR:
    """SkeleMixCLR around ``encoder``; keys are gathered across ranks under ``torchrun``."""
    return SkeleMixCLR(
        encoder,
        get_layout(layout),
        feature_dim=args.feature_dim,
        queue_size=args.queue_size,
        momentum=args.momentum,
        temperature=args.temperature,
        mix_weight=args.mix_weight,
        shear_amplitude=args.shear,
        gather_distributed=True,
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
        "method": "skelemixclr",
        "data": args.data,
        "train_samples": len(train_set),
        "test_samples": len(test_set),
        "num_classes": train_arrays.num_classes,
        "seed": args.seed,
        "device": str(context.device),
        "world_size": context.world_size,
        "skipped_files": len(problems),
    }
    encoder = build_encoder(args, train_arrays.layout, channels)
    model = build_model(args, encoder, train_arrays.layout)
    if "pretrain" in args.stages:
        started = time.perf_counter()
        history = pretrain(
            model,
            train_set,
            PretrainConfig(
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                min_lr=args.min_lr,
                warmup_epochs=args.warmup_epochs,
                weight_decay=args.weight_decay,
                grad_clip=args.grad_clip,
                amp=not args.no_amp,
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
    probe_config = ProbeConfig(
        epochs=args.probe_epochs,
        batch_size=args.probe_batch_size,
        lr=args.probe_lr,
        seed=args.seed,
        num_workers=args.workers,
    )

    def probe(probed: STGCN, key: str) -> None:
        result = linear_probe(
            probed,
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
        probe(model.encoder, "probe")
    if "knn" in args.stages:
        train_features, train_labels = extract_features(
            model.encoder, train_eval_set, batch_size=args.batch_size, context=context
        )
        test_features, test_labels = extract_features(
            model.encoder, test_set, batch_size=args.batch_size, context=context
        )
        summary["knn_accuracy"] = knn_accuracy(
            train_features, train_labels, test_features, test_labels
        )
    if "baseline" in args.stages:
        torch.manual_seed(args.seed)
        probe(build_encoder(args, train_arrays.layout, channels), "baseline_probe")
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
