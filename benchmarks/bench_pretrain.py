"""Pretraining-step throughput and peak memory of the MAE, MAMP and HA-CM presets.

Every measured step is one AdamW update of ``create_mae(preset, ...)`` (forward, backward,
optimiser step) on random-walk clips ``(N, C, T, V, M)``, in float32 and in bf16 autocast, eager
and (with ``--modes eager,compile``) through ``torch.compile``. In the same run the
straightforward baseline of ``naive_mae`` (the ``"mae"`` architecture with materialised
attention, a per-sample ``torch.randperm`` masking loop, float32, eager) is measured, so every
speed-up is a ratio of two numbers taken minutes apart on the same machine (``--no-baseline``
leaves it out).

Each row also gives the step's FLOPs (matrix products and attention of the forward and backward
passes, counted once per model and batch by ``harness.count_flops``) and the achieved TFLOP/s.
With ``--json`` the file is rewritten after every row, so a run stopped early keeps what it
measured.

Targets, per batch size:

* HA-CM step time ≤ 1.15 × MAE step time (same precision and mode);
* baseline step time / fastest ``mae`` step time ≥ 1.5 on CPU, ≥ 3 on CUDA. The like-for-like
  ratio (``mae`` in float32 eager) is printed beside it.

Sizes: on CUDA the MAMP encoder (width 256, depth 8, 8 heads, decoder 256 × 3); on the CPU a
smaller default (width 128, depth 4, 4 heads, decoder 128 × 2) so that a run takes minutes;
``--width`` and friends override either, and the sizes are printed with the results.

Run ``python benchmarks/bench_pretrain.py --help`` for the options.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import harness
import torch
import workloads
from naive_mae import NaiveMAE

from skelmask.layouts import get_layout

HACM_OVER_MAE_TARGET = 1.15
SPEEDUP_TARGETS = {"cpu": 1.5, "cuda": 3.0}
NAIVE = "naive"
MODES = ("eager", "compile")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_common_arguments(parser)
    parser.add_argument("--presets", type=harness.parse_name_list, default=list(workloads.PRESETS))
    parser.add_argument(
        "--precisions", type=harness.parse_name_list, default=list(workloads.PRECISIONS)
    )
    parser.add_argument(
        "--modes",
        type=harness.parse_name_list,
        default=["eager"],
        help="comma-separated subset of eager,compile (compile: torch.compile the model)",
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="do not measure the straightforward baseline"
    )
    parser.add_argument("--frames", type=int, default=None, help="T (default 120)")
    parser.add_argument("--t-patch", type=int, default=4)
    parser.add_argument("--layout", default="nturgb+d")
    parser.add_argument("--persons", type=int, default=2, help="M, persons per clip")
    workloads.add_model_arguments(parser)
    args = parser.parse_args(argv)
    for preset in args.presets:
        if preset not in workloads.PRESETS:
            parser.error(
                f"--presets: expected names from {list(workloads.PRESETS)}, got {preset!r}"
            )
    for precision in args.precisions:
        if precision not in workloads.PRECISIONS:
            parser.error(
                f"--precisions: expected names from {list(workloads.PRECISIONS)}, got {precision!r}"
            )
    for mode in args.modes:
        if mode not in MODES:
            parser.error(f"--modes: expected names from {list(MODES)}, got {mode!r}")
    return args


def naive_loss(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    loss: torch.Tensor = model(x)
    return loss


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = harness.setup(args)
    batch_sizes = harness.pick(args.batch_sizes, tiny=[2], cuda=[32, 128], cpu=[16], args=args)
    repeats = harness.pick(args.repeats, tiny=2, cuda=20, cpu=5, args=args)
    warmup = harness.pick(args.warmup, tiny=1, cuda=5, cpu=2, args=args)
    frames = harness.pick(args.frames, tiny=8, cuda=120, cpu=120, args=args)
    size = workloads.model_size(args)
    layout = get_layout(args.layout)
    info = harness.environment(device)
    config = {
        "frames": frames,
        "joints": layout.num_joints,
        "layout": layout.name,
        "t_patch": args.t_patch,
        "persons": args.persons,
        "model": vars(size),
        "presets": args.presets,
        "precisions": args.precisions,
        "modes": args.modes,
        "baseline": not args.no_baseline,
        "batch_sizes": batch_sizes,
        "repeats": repeats,
        "warmup": warmup,
        "seed": args.seed,
        "tiny": args.tiny,
    }

    results: list[dict[str, Any]] = []

    def payload() -> dict[str, Any]:
        return {
            "benchmark": "pretrain",
            "environment": info,
            "config": config,
            "results": results,
            "targets": evaluate_targets(results, device.type),
        }

    flops: dict[tuple[str, int], int] = {}
    for clips in batch_sizes:
        batches = workloads.skeleton_batches(
            clips,
            frames=frames,
            joints=layout.num_joints,
            persons=args.persons,
            device=device,
            seed=args.seed,
        )
        variants: list[tuple[str, str, str]] = [
            (preset, precision, mode)
            for preset in args.presets
            for precision in args.precisions
            for mode in args.modes
        ]
        if not args.no_baseline:
            variants.append((NAIVE, "float32", "eager"))
        for name, precision, mode in variants:
            if name == NAIVE:
                torch.manual_seed(args.seed)
                model: torch.nn.Module = NaiveMAE(
                    num_joints=layout.num_joints,
                    num_frames=frames,
                    t_patch=args.t_patch,
                    embed_dim=size.width,
                    depth=size.depth,
                    num_heads=size.heads,
                    decoder_dim=size.decoder_width,
                    decoder_depth=size.decoder_depth,
                ).to(device)
                loss_of = naive_loss
            else:
                model = workloads.build_mae(
                    name,
                    layout,
                    frames=frames,
                    t_patch=args.t_patch,
                    size=size,
                    device=device,
                    seed=args.seed,
                )
                loss_of = workloads.mae_loss
            if (name, clips) not in flops:
                # Counted eagerly: compilation and precision change the kernels, not the maths.
                flops[(name, clips)] = harness.count_flops(
                    workloads.forward_backward(model, loss_of, batches[0], device=device)
                )
                model.zero_grad(set_to_none=True)
            if mode == "compile":
                # Every compiled model starts from empty caches: one static-shape compilation, as
                # in a training run with a fixed batch, and no recompile limit reached across
                # presets and batch sizes (which would silently fall back to eager).
                torch.compiler.reset()
            step = workloads.training_step(
                model,
                loss_of,
                batches,
                device=device,
                precision=precision,  # type: ignore[arg-type]
                compile_model=mode == "compile",
            )
            measured = harness.measure(step, device, repeats=repeats, warmup=warmup)
            seconds = measured.median_ms / 1e3
            results.append(
                {
                    "model": name,
                    "precision": precision,
                    "mode": mode,
                    "clips": clips,
                    "batch": clips * args.persons,
                    **harness.measurement_record(measured),
                    "sequences_per_s": clips / seconds,
                    "flops": flops[(name, clips)],
                    "tflops_per_s": flops[(name, clips)] / seconds / 1e12,
                }
            )
            harness.write_json(args.json, payload())
            del model, step
            if device.type == "cuda":
                torch.cuda.empty_cache()

    final = payload()
    print(f"# Pretraining step ({harness.describe_environment(info)})\n")
    print(
        f"T={frames}, V={layout.num_joints} ({layout.name}), t_patch={args.t_patch}, "
        f"M={args.persons}; model {vars(size)}; {repeats} repeats, {warmup} warm-up\n"
    )
    print(
        harness.markdown_table(
            [
                "model",
                "precision",
                "mode",
                "N (B=N·M)",
                "median ms",
                "IQR ms",
                "sequences/s",
                "TFLOP/s",
                "peak MiB",
            ],
            [
                [
                    row["model"],
                    row["precision"],
                    row["mode"],
                    f"{row['clips']} ({row['batch']})",
                    harness.format_ms(row["median_ms"]),
                    harness.format_ms(row["iqr_ms"]),
                    f"{row['sequences_per_s']:.1f}",
                    f"{row['tflops_per_s']:.3g}",
                    harness.format_mib(row["peak_mib"]),
                ]
                for row in results
            ],
        )
    )
    print("\n## Targets\n")
    print(
        harness.markdown_table(
            ["target", "N", "compared", "ratio", "threshold", "result"],
            [
                [
                    row["target"],
                    row["clips"],
                    row["compared"],
                    f"{row['ratio']:.2f}",
                    f"{row['op']} {row['threshold']}",
                    harness.verdict(row["passed"]),
                ]
                for row in final["targets"]
            ],
        )
    )
    harness.write_json(args.json, final)
    return final


def evaluate_targets(results: Sequence[dict[str, Any]], device_type: str) -> list[dict[str, Any]]:
    """The ratios against the targets, per batch size (rows whose models were not run are left out)."""
    times = {
        (row["model"], row["precision"], row["mode"], row["clips"]): row["median_ms"]
        for row in results
    }
    targets: list[dict[str, Any]] = []
    for (name, precision, mode, clips), hacm_ms in times.items():
        mae_ms = times.get(("mae", precision, mode, clips))
        if name == "hacm" and mae_ms is not None:
            ratio = hacm_ms / mae_ms
            targets.append(
                {
                    "target": "hacm step / mae step",
                    "clips": clips,
                    "compared": f"{precision} {mode}",
                    "ratio": ratio,
                    "op": "≤",
                    "threshold": HACM_OVER_MAE_TARGET,
                    "passed": ratio <= HACM_OVER_MAE_TARGET,
                }
            )
    threshold = SPEEDUP_TARGETS[device_type]
    for clips in sorted({row["clips"] for row in results}):
        naive_ms = times.get((NAIVE, "float32", "eager", clips))
        if naive_ms is None:
            continue
        ours = {
            (precision, mode): ms
            for (name, precision, mode, batch), ms in times.items()
            if name == "mae" and batch == clips
        }
        if not ours:
            continue
        fastest = min(ours, key=ours.__getitem__)
        for label, key in (("like-for-like", ("float32", "eager")), ("fastest", fastest)):
            if key not in ours:
                continue
            ratio = naive_ms / ours[key]
            targets.append(
                {
                    "target": f"baseline step / mae step ({label})",
                    "clips": clips,
                    "compared": f"{key[0]} {key[1]}",
                    "ratio": ratio,
                    "op": "≥",
                    "threshold": threshold,
                    "passed": ratio >= threshold,
                }
            )
    return targets


if __name__ == "__main__":
    main()
