"""Pretrain a skeleton MAE, then evaluate it: linear probe, kNN and optionally fine-tuning.

With no arguments it pretrains the HA-CM preset on skelmask's built-in procedural dataset and
linear-probes it beside the same probe at random initialisation and on the raw coordinates, on
CUDA when present (bf16 autocast) and on CPU otherwise. ``--masker NAME`` swaps a preset's masker
(keeping its encoder, target and losses), ``--target`` its reconstruction target, ``--recipe NAME``
applies a published protocol::

    python examples/train_hacm.py
    python examples/train_hacm.py --preset mamp --masker tube
    python examples/train_hacm.py --preset mamp --data msr-action3d --data-root ../shared/data/msr-action3d
    python examples/train_hacm.py --data prepared --window 120 \
        --train-file prepared/ntu60-xsub-train.npz --test-file prepared/ntu60-xsub-test.npz
    torchrun --standalone --nproc_per_node 4 examples/train_hacm.py --epochs 400 --batch-size 32

Every run writes into its own folder: ``--output-dir``, or a new ``runs/<preset>-<date>-<time>``.
A folder that already holds a run is refused unless ``--overwrite`` (or ``--resume`` of its
checkpoint). Every stage writes JSON lines to ``metrics.jsonl``; pretraining writes
``checkpoint-last.pt`` (resume with ``--resume``, or evaluate it without the pretrain stage);
the run ends with a summary table and ``summary.json``. Accuracies are the **last epoch's**; the best epoch's is shown for reference
only (selecting it would be tuning on the test split).
"""

from __future__ import annotations

import argparse
import copy
from typing import Any, get_args

import common

from skelmask.maskers import ScoreGuidedMasker
from skelmask.models import (
    PRESET_MASKERS,
    PRESET_TARGETS,
    MaskerName,
    SkeletonClassifier,
    Target,
    TransformerMAE,
    create_mae,
    create_masker,
)
from skelmask.training import (
    DistributedContext,
    FinetuneConfig,
    finetune,
)

STAGES = ("pretrain", "probe", "knn", "finetune", "baseline", "raw")
MODEL_OPTIONS = (
    "window",
    "t_patch",
    "embed_dim",
    "depth",
    "heads",
    "decoder_dim",
    "decoder_depth",
    "mask_ratio",
    "masker",
    "target",
    "mask_temperature",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults give a few-minute CPU run on the built-in data."""
    parser = common.build_parser(__doc__, STAGES, common.Defaults(method="hacm", min_lr=5e-4))
    parser.add_argument("--preset", dest="method", choices=("hacm", "mamp", "mae"), default="hacm")
    model = parser.add_argument_group("model")
    model.add_argument("--t-patch", type=common.at_least(1), default=4)
    model.add_argument("--embed-dim", type=common.at_least(1), default=128)
    model.add_argument("--depth", type=common.at_least(1), default=4)
    model.add_argument("--heads", type=common.at_least(1), default=4)
    model.add_argument("--decoder-dim", type=common.at_least(1), default=128)
    model.add_argument("--decoder-depth", type=common.at_least(1), default=2)
    model.add_argument("--mask-ratio", type=common.positive, default=0.9)
    model.add_argument(
        "--masker",
        choices=get_args(MaskerName),
        help="replace the preset's masker, keeping its encoder, target and losses "
        "(--preset hacm takes hacm-cross only: its contrast loss compares the cross branches); "
        "joint-tube and frame hide random whole joints or time patches, tube is SLiM's semantic "
        "tubes",
    )
    model.add_argument(
        "--target",
        choices=get_args(Target),
        help="replace the preset's reconstruction target (mae: coords; mamp, hacm: motion), "
        "keeping its masker, encoder and losses",
    )
    model.add_argument(
        "--target-eps",
        type=common.positive,
        default=1e-6,
        help="variance floor of the per-patch target normalisation, in squared coordinate "
        "units (MAMP, HA-CM: 1e-6)",
    )
    model.add_argument(
        "--mask-temperature",
        type=common.positive,
        help="sampling temperature tau of a score-guided masker (mamp: motion, 0.8 by default; "
        "MAMP uses 0.75 on NTU-120)",
    )
    finetuning = parser.add_argument_group("fine-tuning")
    finetuning.add_argument("--finetune-epochs", type=common.at_least(1), default=30)
    finetuning.add_argument(
        "--finetune-batch-size",
        type=common.at_least(1),
        help="per process, like --batch-size (default: --batch-size); MAMP fine-tunes with 24",
    )
    finetuning.add_argument(
        "--drop-path",
        type=common.probability,
        default=0.0,
        help="stochastic depth of the fine-tuned encoder: the last block's drop probability, "
        "growing linearly from 0 at the first (MAMP: 0.3); pretraining never uses it",
    )
    finetuning.add_argument(
        "--labelled-ratio", type=common.fraction, help="fine-tune on this class-balanced share"
    )
    args = common.parse(parser, argv, STAGES, MODEL_OPTIONS, explicit=explicit_model_config)
    if args.finetune_batch_size is None:  # config.json records the batch fine-tuning uses
        args.finetune_batch_size = args.batch_size
    if args.method == "hacm" and args.masker not in (None, "hacm-cross"):
        parser.error(
            f"--masker {args.masker} with --preset hacm: HA-CM's cross-contrast loss needs the "
            "hacm-cross masker; use --preset mamp for the same target without that loss"
        )
    masker = args.masker or PRESET_MASKERS[args.method]
    if args.mask_temperature is not None and not _score_guided(masker):
        guided = [name for name in get_args(MaskerName) if _score_guided(name)]
        parser.error(
            f"--mask-temperature {args.mask_temperature}: the {masker} masker does not "
            f"sample from scores; it applies to {', '.join(guided)}"
        )
    return args


def explicit_model_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the masker, target and temperature it leaves to the preset filled in.

    A run without ``--target`` and one with ``--target motion`` train the same MAMP model; with
    the defaults written out, a checkpoint of one resumes in the other.
    """
    preset = config["method"]
    masker = config.get("masker") or PRESET_MASKERS[preset]
    temperature = config.get("mask_temperature")
    if temperature is None:
        built = create_masker(masker)
        temperature = built.temperature if isinstance(built, ScoreGuidedMasker) else None
    return {
        **config,
        "masker": masker,
        "target": config.get("target") or PRESET_TARGETS[preset],
        "mask_temperature": temperature,
    }


def _score_guided(name: MaskerName) -> bool:
    """Whether the named masker samples from scores (and so has a temperature)."""
    return isinstance(create_masker(name), ScoreGuidedMasker)


def build_mae(args: argparse.Namespace, layout: str, channels: int) -> TransformerMAE:
    """The preset's MAE; its encoder is what every evaluation stage uses."""
    return create_mae(
        args.method,
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
        masker=args.masker,
        target=args.target,
        target_eps=args.target_eps,
        mask_temperature=args.mask_temperature,
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the requested stages and returns the summary (also written to summary.json)."""
    return common.launch(parse_args(argv), run)


def run(args: argparse.Namespace, context: DistributedContext) -> dict[str, Any]:
    """The pipeline: data, pretraining, then each evaluation stage."""
    state = common.start(args, context)
    layout = state.train_arrays.layout
    mae = common.build(lambda: build_mae(args, layout, state.channels))
    common.pretrain_stage(state, mae)
    common.evaluation_stages(
        state, mae.encoder, lambda: build_mae(args, layout, state.channels).encoder
    )
    if "finetune" in args.stages:
        classifier = SkeletonClassifier(
            copy.deepcopy(mae.encoder),
            state.train_arrays.num_classes,
            head="finetune",
            dropout=0.3,
            drop_path=args.drop_path,
        )
        state.logger.scope = "finetune"
        result = finetune(
            classifier,
            state.train_set,
            state.test_set,
            FinetuneConfig(
                epochs=args.finetune_epochs,
                batch_size=args.finetune_batch_size,
                amp=not args.no_amp,
                seed=args.seed,
                num_workers=args.workers,
                labelled_ratio=args.labelled_ratio,
            ),
            context=context,
            logger=state.logger,
        )
        state.summary["finetune_last_accuracy"] = result.last_accuracy
        state.summary["finetune_best_accuracy"] = result.best_accuracy
    return common.finish(state)


if __name__ == "__main__":
    main()
