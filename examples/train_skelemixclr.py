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

Every run writes into its own folder: ``--output-dir``, or a new
``runs/skelemixclr-<date>-<time>``; a folder that already holds a run is refused unless
``--overwrite`` (or ``--resume`` of its checkpoint). Every stage writes JSON lines to
``metrics.jsonl``; pretraining writes ``checkpoint-last.pt`` (resume with ``--resume``, or
evaluate it without the pretrain stage); the run ends with a summary table and ``summary.json``. Accuracies are the **last epoch's**; the best epoch's is shown for reference
only (selecting it would be tuning on the test split).
"""

from __future__ import annotations

import argparse
from typing import Any

import common

from skelmask.layouts import get_layout
from skelmask.models.skelemixclr import SkeleMixCLR
from skelmask.models.stgcn import STGCN
from skelmask.training import DistributedContext

STAGES = ("pretrain", "probe", "knn", "baseline", "raw")
MODEL_OPTIONS = (
    "window",
    "channels",
    "strides",
    "dropout",
    "feature_dim",
    "queue_size",
    "momentum",
    "temperature",
    "mix_weight",
    "shear",
)


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
    defaults = common.Defaults(
        method="skelemixclr",
        epochs=5,
        batch_size=64,
        min_lr=1e-5,
        weight_decay=1e-4,
        warmup_epochs=1,
        probe_epochs=10,
    )
    parser = common.build_parser(__doc__, STAGES, defaults)
    model = parser.add_argument_group("model")
    model.add_argument(
        "--channels", type=_int_list, default=[16, 32, 64], help="ST-GCN block widths"
    )
    model.add_argument(
        "--strides", type=_int_list, default=[1, 2, 2], help="ST-GCN temporal strides"
    )
    model.add_argument("--dropout", type=common.non_negative, default=0.5)
    model.add_argument("--feature-dim", type=common.at_least(1), default=128)
    model.add_argument("--queue-size", type=common.at_least(1), default=512)
    model.add_argument("--momentum", type=common.non_negative, default=0.99)
    model.add_argument("--temperature", type=common.positive, default=0.2)
    model.add_argument("--mix-weight", type=common.positive, default=1.0)
    model.add_argument(
        "--shear", type=common.non_negative, default=0.5, help="shear amplitude of the views"
    )
    args = common.parse(parser, argv, STAGES, MODEL_OPTIONS)
    if args.batch_size < 2:
        parser.error(
            f"--batch-size must be at least 2 for SkeleMixCLR (its projector's BatchNorm and the "
            f"mixing need two samples), got {args.batch_size}"
        )
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
    return common.launch(parse_args(argv), run)


def run(args: argparse.Namespace, context: DistributedContext) -> dict[str, Any]:
    """The pipeline: data, pretraining, then each evaluation stage."""
    state = common.start(args, context)
    layout = state.train_arrays.layout
    model = common.build(
        lambda: build_model(args, build_encoder(args, layout, state.channels), layout)
    )
    common.pretrain_stage(state, model)
    common.evaluation_stages(
        state, model.encoder, lambda: build_encoder(args, layout, state.channels)
    )
    return common.finish(state)


if __name__ == "__main__":
    main()
