"""Pretrain a SkeletonMAE-style graph masked autoencoder, then linear-probe (and kNN) its encoder.

Yan et al.'s SkeletonMAE (ICCV 2023) hides whole body parts of every frame, encodes each frame's
skeleton graph with a GIN and rebuilds the hidden joints under a scaled cosine error. With no
arguments this pretrains it on skelmask's built-in procedural dataset and linear-probes the
encoder, on CUDA when present and on CPU otherwise, in a few minutes::

    python examples/train_skeletonmae.py
    python examples/train_skeletonmae.py --data msr-action3d --data-root ../shared/data/msr-action3d
    python examples/train_skeletonmae.py --parts right_arm,right_leg   # the paper's best parts
    torchrun --standalone --nproc_per_node 4 examples/train_skeletonmae.py --epochs 50

Every run writes into its own folder: ``--output-dir``, or a new
``runs/skeletonmae-<date>-<time>``; a folder that already holds a run is refused unless
``--overwrite`` (or ``--resume`` of its checkpoint). Every stage writes JSON lines to
``metrics.jsonl``; pretraining writes ``checkpoint-last.pt`` (resume with ``--resume``, or
evaluate it without the pretrain stage); the run ends with a summary table and ``summary.json``. Accuracies are the **last epoch's**; the best epoch's is shown for reference
only (selecting it would be tuning on the test split). The paper reports fine-tuning only; the
linear probe here is a quick check of the representation, not a reproduction of its numbers.
"""

from __future__ import annotations

import argparse
from typing import Any

import common

from skelmask.maskers.body_part import BodyPartMasker
from skelmask.models.gin import GINEncoder, GINSkeletonMAE
from skelmask.training import DistributedContext

STAGES = ("pretrain", "probe", "knn", "baseline", "raw")
MODEL_OPTIONS = (
    "window",
    "width",
    "depth",
    "decoder_depth",
    "segments",
    "beta",
    "remask",
    "parts",
    "num_parts",
    "mask_ratio",
    "draw_per",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults give a few-minute CPU run on the built-in data."""
    defaults = common.Defaults(method="skeletonmae", window=16, min_lr=1e-5)
    parser = common.build_parser(__doc__, STAGES, defaults)
    model = parser.add_argument_group("model")
    model.add_argument("--width", type=common.at_least(1), default=32, help="GIN feature width")
    model.add_argument("--depth", type=common.at_least(1), default=3, help="encoder GIN layers")
    model.add_argument(
        "--decoder-depth", type=common.at_least(1), default=1, help="decoder GIN layers"
    )
    model.add_argument(
        "--segments", type=common.at_least(1), default=4, help="temporal read-out segments"
    )
    model.add_argument(
        "--beta", type=common.positive, default=2.0, help="scaled cosine error exponent"
    )
    model.add_argument(
        "--remask", action="store_true", help="zero hidden joints' codes before decoding (GraphMAE)"
    )
    masking = parser.add_argument_group("masking (one of --parts, --num-parts, --mask-ratio)")
    masking.add_argument("--parts", help="comma-separated body parts hidden in every frame")
    masking.add_argument(
        "--num-parts", type=common.at_least(1), help="random parts hidden (default 2)"
    )
    masking.add_argument(
        "--mask-ratio", type=common.positive, help="hide random parts up to this ratio"
    )
    masking.add_argument(
        "--draw-per",
        choices=("time_patch", "clip"),
        default="time_patch",
        help="draw the hidden parts per time patch or once per clip",
    )
    args = parser.parse_args(argv)
    chosen = [
        flag for flag in ("parts", "num_parts", "mask_ratio") if getattr(args, flag) is not None
    ]
    if len(chosen) > 1:
        parser.error(f"give one of --parts, --num-parts, --mask-ratio; got {chosen}")
    # The default goes in before common.parse, so that checkpoints store the parts that ran.
    defaults = {} if chosen else {"num_parts": 2}
    parser.set_defaults(**defaults)
    return common.parse(parser, argv, STAGES, MODEL_OPTIONS)


def build_model(args: argparse.Namespace, layout: str, channels: int) -> GINSkeletonMAE:
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
        draw_per=args.draw_per,
    )
    return GINSkeletonMAE(
        encoder,
        masker,
        decoder_depth=args.decoder_depth,
        remask=args.remask,
        beta=args.beta,
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the requested stages and returns the summary (also written to summary.json)."""
    return common.launch(parse_args(argv), run)


def run(args: argparse.Namespace, context: DistributedContext) -> dict[str, Any]:
    """The pipeline: data, pretraining, then each evaluation stage."""
    state = common.start(args, context)
    layout = state.train_arrays.layout
    model = common.build(lambda: build_model(args, layout, state.channels))
    state.summary["masker"] = repr(model.masker)
    common.pretrain_stage(state, model)
    common.evaluation_stages(
        state, model.encoder, lambda: build_model(args, layout, state.channels).encoder
    )
    return common.finish(state)


if __name__ == "__main__":
    main()
