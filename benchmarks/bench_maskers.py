"""Time of every masker per batch, and its share of a full pretraining step of its preset.

Configuration (NTU-60, MAMP): T = 120 frames, V = 25 joints (``nturgb+d``), temporal patch 4
(a Tp × Vp = 30 × 25 token grid), token width D = 256, ``M = 2`` persons per clip. A batch of
``N`` clips is a masker input of ``B = N·M`` token grids, exactly what the masker sees inside
``skelmask.models.TransformerMAE``. The share is

    masker time / time of one AdamW step (forward, backward, update) of
    ``create_mae(preset, ...)`` at the same configuration and batch,

with each masker's preset: RandomMasker → ``mae``, MotionAwareMasker → ``mamp``, the HA-CM
maskers → ``hacm``, the 2025–26 maskers (SemanticTubeMasker, DegreeMotionMasker, SaliencyMasker)
and the contributed ones (BodyPartMasker, SkeleMix, when present) → ``mae``. SaliencyMasker gets a
saliency map made beforehand, so its time excludes computing one. The target is a share ≤ 5 %.

Run ``python benchmarks/bench_maskers.py --help`` for the options.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import harness
import workloads

from skelmask.layouts import get_layout

SHARE_TARGET = 0.05


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_common_arguments(parser)
    parser.add_argument("--frames", type=int, default=None, help="T (default 120)")
    parser.add_argument("--t-patch", type=int, default=4)
    parser.add_argument("--layout", default="nturgb+d")
    parser.add_argument("--persons", type=int, default=2, help="M, persons per clip")
    parser.add_argument(
        "--no-step", action="store_true", help="skip the pretraining steps (no share column)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = harness.setup(args)
    batch_sizes = harness.pick(args.batch_sizes, tiny=[2], cuda=[32, 128], cpu=[32, 128], args=args)
    repeats = harness.pick(args.repeats, tiny=2, cuda=50, cpu=10, args=args)
    warmup = harness.pick(args.warmup, tiny=1, cuda=10, cpu=2, args=args)
    step_repeats = harness.pick(args.repeats, tiny=2, cuda=20, cpu=3, args=args)
    frames = harness.pick(args.frames, tiny=8, cuda=120, cpu=120, args=args)
    size = workloads.TINY_SIZE if args.tiny else workloads.MAMP_SIZE
    layout = get_layout(args.layout)
    cases = workloads.core_maskers(layout, t_patch=args.t_patch)
    extra, notes = workloads.optional_maskers(layout, t_patch=args.t_patch)
    cases += extra
    info = harness.environment(device)

    results: list[dict[str, Any]] = []
    for clips in batch_sizes:
        step_ms: dict[str, float] = {}
        if not args.no_step:
            batches = workloads.skeleton_batches(
                clips,
                frames=frames,
                joints=layout.num_joints,
                persons=args.persons,
                device=device,
                seed=args.seed,
            )
            for preset in sorted({case.preset for case in cases}):
                model = workloads.build_mae(
                    preset,
                    layout,
                    frames=frames,
                    t_patch=args.t_patch,
                    size=size,
                    device=device,
                    seed=args.seed,
                )
                step = workloads.training_step(model, workloads.mae_loss, batches, device=device)
                measured = harness.measure(step, device, repeats=step_repeats, warmup=warmup)
                step_ms[preset] = measured.median_ms
                del model, step
        inputs = workloads.masker_inputs(
            clips * args.persons,
            frames=frames,
            joints=layout.num_joints,
            t_patch=args.t_patch,
            width=size.width,
            device=device,
            seed=args.seed,
        )
        for case in cases:
            call = workloads.masker_call(case, inputs, persons=args.persons)
            measured = harness.measure(call, device, repeats=repeats, warmup=warmup)
            preset_ms = step_ms.get(case.preset)
            share = None if preset_ms is None else measured.median_ms / preset_ms
            results.append(
                {
                    "masker": case.name,
                    "clips": clips,
                    "batch": clips * args.persons,
                    "preset": case.preset,
                    **harness.measurement_record(measured),
                    "step_ms": preset_ms,
                    "share": share,
                    "share_pass": None if share is None else share <= SHARE_TARGET,
                }
            )

    config = {
        "frames": frames,
        "joints": layout.num_joints,
        "layout": layout.name,
        "t_patch": args.t_patch,
        "grid": [frames // args.t_patch, layout.num_joints],
        "width": size.width,
        "model": vars(size),
        "persons": args.persons,
        "batch_sizes": batch_sizes,
        "repeats": repeats,
        "step_repeats": step_repeats,
        "warmup": warmup,
        "seed": args.seed,
        "tiny": args.tiny,
    }
    payload = {
        "benchmark": "maskers",
        "environment": info,
        "config": config,
        "share_target": SHARE_TARGET,
        "results": results,
        "notes": notes,
    }
    print(f"# Masker cost ({harness.describe_environment(info)})\n")
    print(
        f"T={frames}, V={layout.num_joints} ({layout.name}), t_patch={args.t_patch} → grid "
        f"{frames // args.t_patch}×{layout.num_joints}, D={size.width}, M={args.persons}; "
        f"model {vars(size)}; {repeats} repeats (steps {step_repeats}), {warmup} warm-up\n"
    )
    print(
        harness.markdown_table(
            [
                "masker",
                "N (B=N·M)",
                "median ms",
                "IQR ms",
                "peak MiB",
                "preset",
                "step ms",
                "share",
                f"≤ {SHARE_TARGET:.0%}",
            ],
            [
                [
                    row["masker"],
                    f"{row['clips']} ({row['batch']})",
                    harness.format_ms(row["median_ms"]),
                    harness.format_ms(row["iqr_ms"]),
                    harness.format_mib(row["peak_mib"]),
                    row["preset"],
                    "n/a" if row["step_ms"] is None else harness.format_ms(row["step_ms"]),
                    "n/a" if row["share"] is None else f"{row['share']:.2%}",
                    "n/a" if row["share_pass"] is None else harness.verdict(row["share_pass"]),
                ]
                for row in results
            ],
        )
    )
    for note in notes:
        print(f"\nnote: {note}")
    harness.write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
