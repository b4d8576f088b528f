"""How the cost of a pretraining step and of each masker grows with T, V and the batch size.

One axis varies at a time; the others stay at the base point (T = 120 frames, V = 25 joints of
``nturgb+d``, temporal patch 4, M = 2 persons, the device's base batch). Joint counts use the
built-in layout with that many joints (17 ``coco``, 18 ``openpose``, 20 ``msr-action3d``, 25
``nturgb+d``) or, for any other count (50 by default), a synthetic binary-tree layout with five
body parts. Each row times one AdamW step of ``create_mae(--preset, ...)`` and one call of every
masker on the matching ``(B, Tp, V, D)`` token grid, ``B = N·M``; the ``× base`` column is the
step time over the axis's first row.

Run ``python benchmarks/bench_scaling.py --help`` for the options.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import harness
import torch
import workloads

AXES = ("frames", "joints", "batch")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_common_arguments(parser)
    parser.add_argument("--axes", type=harness.parse_name_list, default=list(AXES))
    parser.add_argument("--frames", type=harness.parse_int_list, default=None, help="T values")
    parser.add_argument("--joints", type=harness.parse_int_list, default=None, help="V values")
    parser.add_argument("--base-frames", type=int, default=None, help="T off its axis (120)")
    parser.add_argument("--base-joints", type=int, default=25, help="V off its axis")
    parser.add_argument("--base-batch", type=int, default=None, help="N off its axis")
    parser.add_argument("--t-patch", type=int, default=4)
    parser.add_argument("--persons", type=int, default=2, help="M, persons per clip")
    parser.add_argument("--preset", choices=workloads.PRESETS, default="hacm")
    parser.add_argument("--no-maskers", action="store_true", help="time the steps only")
    workloads.add_model_arguments(parser)
    args = parser.parse_args(argv)
    for axis in args.axes:
        if axis not in AXES:
            parser.error(f"--axes: expected names from {list(AXES)}, got {axis!r}")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = harness.setup(args)
    axis_values = {
        "frames": harness.pick(
            args.frames, tiny=[8, 16], cuda=[32, 64, 120, 200, 300], cpu=[32, 64, 120], args=args
        ),
        "joints": harness.pick(
            args.joints, tiny=[17, 25], cuda=[17, 20, 25, 50], cpu=[17, 20, 25, 50], args=args
        ),
        "batch": harness.pick(
            args.batch_sizes, tiny=[2, 3], cuda=[8, 16, 32, 64, 128], cpu=[2, 4, 8], args=args
        ),
    }
    base = {
        "frames": harness.pick(args.base_frames, tiny=8, cuda=120, cpu=120, args=args),
        "joints": args.base_joints,
        "batch": harness.pick(args.base_batch, tiny=2, cuda=32, cpu=4, args=args),
    }
    repeats = harness.pick(args.repeats, tiny=2, cuda=20, cpu=3, args=args)
    warmup = harness.pick(args.warmup, tiny=1, cuda=5, cpu=1, args=args)
    size = workloads.model_size(args)
    for frames in [base["frames"], *axis_values["frames"]]:
        if frames % args.t_patch:
            raise SystemExit(
                f"every T must be a multiple of --t-patch={args.t_patch}, got {frames}"
            )
    info = harness.environment(device)

    results: list[dict[str, Any]] = []
    for axis in args.axes:
        for value in axis_values[axis]:
            point = {**base, axis: value}
            results.append(
                {
                    "axis": axis,
                    "value": value,
                    **measure_point(point, args, size, device, repeats, warmup),
                }
            )

    payload = {
        "benchmark": "scaling",
        "environment": info,
        "config": {
            "preset": args.preset,
            "base": base,
            "axes": {axis: axis_values[axis] for axis in args.axes},
            "t_patch": args.t_patch,
            "persons": args.persons,
            "model": vars(size),
            "repeats": repeats,
            "warmup": warmup,
            "seed": args.seed,
            "tiny": args.tiny,
        },
        "results": results,
    }
    print(f"# Scaling ({harness.describe_environment(info)})\n")
    print(
        f"preset {args.preset}; base T={base['frames']}, V={base['joints']}, N={base['batch']}, "
        f"t_patch={args.t_patch}, M={args.persons}; model {vars(size)}; {repeats} repeats, "
        f"{warmup} warm-up"
    )
    for axis in args.axes:
        rows = [row for row in results if row["axis"] == axis]
        masker_names = list(rows[0]["maskers"])
        first_ms = rows[0]["step"]["median_ms"]
        print(f"\n## {axis}\n")
        print(
            harness.markdown_table(
                [
                    axis,
                    "tokens L",
                    "step ms",
                    "IQR ms",
                    "peak MiB",
                    "× base",
                    *(f"{name} ms" for name in masker_names),
                ],
                [
                    [
                        row["value"],
                        row["tokens"],
                        harness.format_ms(row["step"]["median_ms"]),
                        harness.format_ms(row["step"]["iqr_ms"]),
                        harness.format_mib(row["step"]["peak_mib"]),
                        f"{row['step']['median_ms'] / first_ms:.2f}",
                        *(
                            harness.format_ms(row["maskers"][name]["median_ms"])
                            for name in masker_names
                        ),
                    ]
                    for row in rows
                ],
            )
        )
    harness.write_json(args.json, payload)
    return payload


def measure_point(
    point: dict[str, int],
    args: argparse.Namespace,
    size: workloads.ModelSize,
    device: torch.device,
    repeats: int,
    warmup: int,
) -> dict[str, Any]:
    """The step and masker measurements at one ``(frames, joints, batch)`` point."""
    layout = workloads.layout_for_joints(point["joints"])
    batches = workloads.skeleton_batches(
        point["batch"],
        frames=point["frames"],
        joints=layout.num_joints,
        persons=args.persons,
        device=device,
        seed=args.seed,
    )
    model = workloads.build_mae(
        args.preset,
        layout,
        frames=point["frames"],
        t_patch=args.t_patch,
        size=size,
        device=device,
        seed=args.seed,
    )
    step = workloads.training_step(model, workloads.mae_loss, batches, device=device)
    step_measurement = harness.measure(step, device, repeats=repeats, warmup=warmup)
    del model, step
    maskers: dict[str, Any] = {}
    if not args.no_maskers:
        inputs = workloads.masker_inputs(
            point["batch"] * args.persons,
            frames=point["frames"],
            joints=layout.num_joints,
            t_patch=args.t_patch,
            width=size.width,
            device=device,
            seed=args.seed,
        )
        cases = workloads.core_maskers(layout, t_patch=args.t_patch)
        cases += workloads.optional_maskers(layout, t_patch=args.t_patch)[0]
        for case in cases:
            call = workloads.masker_call(case, inputs, persons=args.persons)
            measured = harness.measure(call, device, repeats=repeats, warmup=warmup)
            maskers[case.name] = harness.measurement_record(measured)
    return {
        "frames": point["frames"],
        "joints": layout.num_joints,
        "layout": layout.name,
        "clips": point["batch"],
        "tokens": (point["frames"] // args.t_patch) * layout.num_joints,
        "step": harness.measurement_record(step_measurement),
        "maskers": maskers,
    }


if __name__ == "__main__":
    main()
