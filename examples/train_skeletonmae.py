"""Pretrain a SkeletonMAE-style graph masked autoencoder, then linear-probe (and kNN) its encoder.

Yan et al.'s SkeletonMAE (ICCV 2023) hides whole body parts of every frame, encodes each frame's
skeleton graph with a GIN and rebuilds the hidden joints under a scaled cosine error. With no
arguments this pretrains it on skelmask's built-in procedural dataset and linear-probes the
encoder, on CUDA when present and on CPU otherwise, in a few minutes::

    python examples/train_skeletonmae.py
    python examples/train_skeletonmae.py --data msr-action3d --data-root ../shared/data/msr-action3d
    python examples/train_skeletonmae.py --parts right_arm,right_leg   # the paper's best parts
    torchrun --standalone --nproc_per_node 4 examples/train_skeletonmae.py --epochs 50

Every stage writes JSON lines to ``<output-dir>/metrics.jsonl``; pretraining writes
``checkpoint-last.pt`` (resume with ``--resume``); the run ends with a summary table and
``summary.json``. Accuracies are the **last epoch's**; the best epoch's is shown for reference
only (selecting it would be tuning on the test split). The paper reports fine-tuning only; the
linear probe here is a quick check of the representation, not a reproduction of its numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from skelmask.data import SkeletonArrays, SkeletonDataset, load_msr_action3d, synthetic_splits
from skelmask.maskers.body_part import BodyPartMasker
from skelmask.models.gin import GINEncoder, SkeletonMAEModel
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
    data.add_argument("--train-samples", type=int, default=600, help="synthetic training clips")
    data.add_argument("--test-samples", type=int, default=200, help="synthetic test clips")
    data.add_argument("--window", type=int, default=16, help="frames per clip fed to the model")
    model = parser.add_argument_group("model")
    model.add_argument("--width", type=int, default=32, help="GIN feature width")
    model.add_argument("--depth", type=int, default=3, help="encoder GIN layers")
    model.add_argument("--decoder-depth", type=int, default=1, help="decoder GIN layers")
    model.add_argument("--segments", type=int, default=4, help="temporal read-out segments")
    model.add_argument("--beta", type=float, default=2.0, help="scaled cosine error exponent")
    model.add_argument(
        "--remask", action="store_true", help="zero hidden joints' codes before decoding (GraphMAE)"
    )
    masking = parser.add_argument_group("masking (one of --parts, --num-parts, --mask-ratio)")
    masking.add_argument("--parts", help="comma-separated body parts hidden in every frame")
    masking.add_argument("--num-parts", type=int, help="random parts hidden (default 2)")
    masking.add_argument("--mask-ratio", type=float, help="hide random parts up to this ratio")
    masking.add_argument("--granularity", choices=("frame", "clip"), default="frame")
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=20, help="pretraining epochs")
    train.add_argument("--batch-size", type=int, default=32, help="per process")
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--min-lr", type=float, default=1e-5)
    train.add_argument("--warmup-epochs", type=int, default=2)
    train.add_argument("--probe-epochs", type=int, default=30)
    train.add_argument("--probe-lr", type=float, default=0.1)
    train.add_argument("--probe-batch-size", type=int, default=128)
    train.add_argument("--grad-clip", type=float)
    train.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    train.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    train.add_argument("--seed", type=int, default=0)
    run = parser.add_argument_group("run")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    run.add_argument("--output-dir", type=Path, default=Path("runs/train_skeletonmae"))
    run.add_argument("--resume", type=Path, help="pretraining checkpoint to continue from")
    args = parser.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"--stages: unknown stage(s) {unknown}; choose from {list(STAGES)}")
    args.stages = stages
    chosen = [
        flag for flag in ("parts", "num_parts", "mask_ratio") if getattr(args, flag) is not None
    ]
    if len(chosen) > 1:
        parser.error(f"give one of --parts, --num-parts, --mask-ratio; got {chosen}")
    if not chosen:
        args.num_parts = 2
    if args.data == "msr-action3d" and args.data_root is None:
        parser.error("--data msr-action3d needs --data-root (the folder holding index.csv)")
    return args


def load_data(args: argparse.Namespace) -> tuple[SkeletonArrays, SkeletonArrays, list[str]]:
    """Train and test arrays of the chosen source, and the problems found while reading."""
    if args.data == "msr-action3d":
        return load_msr_action3d(args.data_root)
    train, test = synthetic_splits(
        num_train=args.train_samples,
        num_test=args.test_samples,
        layout=args.layout,
        seed=args.seed,
    )
    return train, test, []


def build_model(args: argparse.Namespace, layout: str, channels: int) -> SkeletonMAEModel:
    """The GIN encoder and its SkeletonMAE pretraining model; evaluation uses ``.encoder``."""
    encoder = GINEncoder(
        layout,
        in_channels=channels,
        width=args.width,
        depth=args.depth,
        temporal_segments=args.segments,
    )
    masker = BodyPartMasker(
        args.mask_ratio,
        layout=layout,
        parts=args.parts.split(",") if args.parts else None,
        num_parts=args.num_parts,
        granularity=args.granularity,
    )
    return SkeletonMAEModel(
        encoder,
        masker,
        decoder_depth=args.decoder_depth,
        remask=args.remask,
        beta=args.beta,
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
    model = build_model(args, train_arrays.layout, channels)
    summary: dict[str, Any] = {
        "model": "skeletonmae-gin",
        "masker": repr(model.masker),
        "data": args.data,
        "train_samples": len(train_set),
        "test_samples": len(test_set),
        "num_classes": train_arrays.num_classes,
        "seed": args.seed,
        "device": str(context.device),
        "world_size": context.world_size,
        "skipped_files": len(problems),
    }
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
                grad_clip=args.grad_clip,
                amp=not args.no_amp,
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
    encoder = model.encoder
    probe_config = ProbeConfig(
        epochs=args.probe_epochs,
        batch_size=args.probe_batch_size,
        lr=args.probe_lr,
        seed=args.seed,
        num_workers=args.workers,
    )

    def probe(model_encoder: GINEncoder, key: str) -> None:
        result = linear_probe(
            model_encoder,
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
        probe(build_model(args, train_arrays.layout, channels).encoder, "baseline_probe")
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
