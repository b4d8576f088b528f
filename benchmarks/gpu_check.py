"""The GPU check: skelmask's whole CUDA path and its NTU-scale throughput, in one prepared run.

One command, planned to finish inside 8 minutes on one H100/H200, runs in turn (each stage a
subprocess with its own time budget, so one failing or hanging stage is recorded and the rest
still run):

``ceiling``
    the machine: device, driver, clocks (``nvidia-smi`` queried, never set), a bf16 matrix
    product's TFLOP/s and a device-to-device copy's bandwidth, measured on random data;
``cuda-tests``
    ``pytest -m cuda``, every test that needs a GPU;
``pretrain-eager``
    ``bench_pretrain.py``: the ``hacm``, ``mamp`` and ``mae`` presets at MAMP's size (width 256,
    depth 8, decoder 256 × 3, T = 120, t_patch 4, mask ratio 0.9, M = 2) in bf16 autocast,
    eager, at 128, 256 and 32 clips per batch, with peak memory and FLOPs;
``baseline``
    the straightforward baseline (``naive_mae.py``) beside the ``mae`` preset in float32 eager;
``host-syncs``
    how often one eager forward and backward pass of each preset would make the host wait for
    the GPU (``harness.count_host_syncs``) and, on CUDA, the synchronisations of a whole step
    that ``torch.cuda.set_sync_debug_mode`` reports, with the lines that caused them;
``torchrun``
    ``torchrun --standalone --nproc_per_node 1 examples/train_hacm.py`` with bf16 and
    ``--compile``, a short run that proves the example's path;
``maskers``
    ``bench_maskers.py``, every masker's time and share of its preset's step;
``pretrain-compile``
    as ``pretrain-eager`` through ``torch.compile``; last, since compiling takes the longest
    (a minute or more per preset and batch size), with whatever time is left.

At the end it prints a short report: one line per stage, the throughput table with achieved
TFLOP/s against the bf16 matrix ceiling, and the NTU-60 estimate (clips/s → hours for 400
epochs of 40,091 clips, against the one-hour goal). With ``$OUT`` set (or ``--out``) it writes
there ``gpu_check.json`` (everything), ``gpu_check.md`` (the report), ``gpu_check.log`` (every
stage's output), and ``pretrain-<device>.json`` and ``maskers-<device>.json`` in the format of
``benchmarks/results/``.

It changes none of the card's settings. ``--device cpu --tiny`` runs every stage at a
seconds-long size on the CPU (what the tests run; compilation is switched off there, its numbers
mean nothing). ``benchmarks/README.md`` says how to run it on a lent GPU.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import harness
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NTU60_XSUB_TRAIN_CLIPS = 40_091
EPOCHS = 400
GOAL_HOURS = 1.0
GOAL_CLIPS_PER_S = NTU60_XSUB_TRAIN_CLIPS * EPOCHS / (GOAL_HOURS * 3600)
# The bf16 dense matrix-product rate measured on the lent H100/H200 machines (random data);
# the ``ceiling`` stage measures it again and its figure is used when present.
BF16_CEILING_TFLOPS = 790.0
PRESETS = ("hacm", "mamp", "mae")
MAMP_ARGS = shlex.split(
    "--width 256 --depth 8 --heads 8 --decoder-width 256 --decoder-depth 3 --frames 120 "
    "--t-patch 4 --persons 2"
)
# The whole check's time: within 8 minutes with room for Python's start and the report.
DEADLINE_S = 450.0
TINY_DEADLINE_S = 300.0
# Seconds left at the deadline for the report itself.
RESERVE_S = 5.0


@dataclass
class Stage:
    """One step of the check: a command, its time budget and how to read its result.

    Attributes:
        name: Short name, also the key in the JSON.
        argv: The command.
        budget_s: Longest it may run; None for whatever time is left.
        read: Turns the stage's work folder into ``(one-line result, data for the JSON)``.
        env: Extra environment variables.
        note: Said in the report next to the stage.
    """

    name: str
    argv: list[str]
    budget_s: float | None
    read: Callable[[Path], tuple[str, dict[str, Any]]]
    env: dict[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass
class StageResult:
    """What became of one stage: ``ok``, ``failed``, ``timeout`` or ``skipped``."""

    name: str
    status: str
    seconds: float
    cpu_seconds: float
    returncode: int | None
    summary: str
    data: dict[str, Any]
    note: str = ""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--tiny", action="store_true", help="seconds-long sizes, for tests and smoke runs"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the JSON, the report and the logs (default: $OUT when set, else none)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=None,
        help="seconds for the whole check (default 450, or 300 with --tiny)",
    )
    parser.add_argument(
        "--stages",
        type=harness.parse_name_list,
        default=list(STAGE_NAMES),
        help=f"comma-separated subset of {', '.join(STAGE_NAMES)}, run in that order",
    )
    parser.add_argument(
        "--batch-sizes",
        type=harness.parse_int_list,
        default=None,
        help="clips per batch of the pretraining stages, first the most wanted "
        "(default 128,256,32; 2 with --tiny)",
    )
    parser.add_argument("--worker", choices=tuple(WORKERS), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.deadline is not None and args.deadline <= 0:
        parser.error(f"--deadline must be > 0 seconds, got {args.deadline}")
    unknown = sorted(set(args.stages) - set(STAGE_NAMES))
    if unknown:
        parser.error(f"--stages: unknown {unknown}; choose from {list(STAGE_NAMES)}")
    return args


# --- the stages -------------------------------------------------------------------------------


def plan(args: argparse.Namespace, device: torch.device, work: Path) -> list[Stage]:
    """Every stage, in the order they run (the most wanted evidence first)."""
    python, tiny = sys.executable, args.tiny
    batches = ",".join(map(str, args.batch_sizes or ([2] if tiny else [128, 256, 32])))
    size = ["--tiny"] if tiny else MAMP_ARGS
    pretrain = ["--device", device.type, *size, "--batch-sizes", batches]
    budgets = dict.fromkeys(STAGE_NAMES, 60.0) if tiny else CUDA_BUDGETS

    def script(name: str, path: str, options: str, *extra: str) -> list[str]:
        argv = [python, str(HERE / path), *shlex.split(options), *extra]
        return [*argv, "--json", str(work / f"{name}.json")]

    def worker(name: str) -> list[str]:
        tiny_flag = ["--tiny"] if tiny else []
        return script(name, "gpu_check.py", f"--worker {name} --device {device.type}", *tiny_flag)

    presets = ",".join(PRESETS)
    tests = [python, "-m", "pytest", *shlex.split("-q -p no:cacheprovider -m cuda --junitxml")]
    tests += [str(work / "cuda-tests.xml")]
    tests += [str(REPO / "tests" / "test_benchmarks.py")] if tiny else []
    torchrun = [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]
    torchrun += [str(REPO / "examples" / "train_hacm.py"), "--device", device.type]
    torchrun += shlex.split(
        "--compile --stages pretrain,knn --epochs 2 --warmup-epochs 1 --workers 2"
    )
    torchrun += ["--output-dir", str(work / "train_hacm"), *TRAIN_SIZE["tiny" if tiny else "gpu"]]
    maskers = ["--tiny", "--batch-sizes", batches] if tiny else []
    eager = f"--presets {presets} --precisions bf16 --modes eager --no-baseline"
    compiled = f"--presets {presets} --precisions bf16 --modes compile --no-baseline"
    baseline = "--presets mae --precisions float32 --modes eager"
    commands = {
        "ceiling": worker("ceiling"),
        "cuda-tests": tests,
        "pretrain-eager": script("pretrain-eager", "bench_pretrain.py", eager, *pretrain),
        "baseline": script("baseline", "bench_pretrain.py", baseline, *pretrain),
        "host-syncs": worker("host-syncs"),
        "torchrun": torchrun,
        "maskers": script("maskers", "bench_maskers.py", f"--device {device.type}", *maskers),
        "pretrain-compile": script("pretrain-compile", "bench_pretrain.py", compiled, *pretrain),
    }
    # The tiny CPU run checks the plumbing only: one thread per stage keeps it quick on a shared
    # machine, and compiling would take minutes, so dynamo is switched off there.
    cpu_tiny = tiny and device.type == "cpu"
    threads = {"OMP_NUM_THREADS": "1"} if cpu_tiny else {}
    stages = []
    for name in STAGE_NAMES:
        compiles = cpu_tiny and name in ("torchrun", "pretrain-compile")
        stages.append(
            Stage(
                name,
                commands[name],
                budgets[name],
                READERS[name],
                env={**threads, "TORCHDYNAMO_DISABLE": "1"} if compiles else threads,
                note="TORCHDYNAMO_DISABLE=1: ran eagerly" if compiles else "",
            )
        )
    return stages


# The example's run in the torchrun stage: on a GPU a 2-block model at T = 120 (compiling the
# full MAMP size here would take the pretrain-compile stage's time twice).
TRAIN_SIZE = {
    "tiny": shlex.split(
        "--window 16 --embed-dim 16 --depth 1 --heads 2 --decoder-dim 16 --decoder-depth 1 "
        "--batch-size 16 --train-samples 64 --test-samples 32"
    ),
    "gpu": shlex.split(
        "--window 120 --embed-dim 128 --depth 2 --heads 4 --decoder-dim 128 --decoder-depth 1 "
        "--batch-size 64 --train-samples 512 --test-samples 128"
    ),
}
STAGE_NAMES = (
    "ceiling",
    "cuda-tests",
    "pretrain-eager",
    "baseline",
    "host-syncs",
    "torchrun",
    "maskers",
    "pretrain-compile",
)
# Longest each stage may take on a GPU (None: whatever is left). Expected: about 10, 60, 35,
# 45, 20, 60 and 40 s, which leaves some 3 minutes for compiling, about one compilation of each
# preset at one batch size. Stages that finish early leave their time to the last one, and the
# deadline cuts whatever overruns; bench_pretrain.py writes its JSON after every row, so a stage
# cut short keeps what it measured.
CUDA_BUDGETS: dict[str, float | None] = {
    "ceiling": 45,
    "cuda-tests": 150,
    "pretrain-eager": 90,
    "baseline": 75,
    "host-syncs": 45,
    "torchrun": 120,
    "maskers": 75,
    "pretrain-compile": None,
}
# The fewest seconds worth starting a stage with.
MIN_STAGE_S = {"cpu": 1.0, "cuda": 20.0}


def run_stages(
    stages: Sequence[Stage],
    *,
    deadline_s: float,
    work: Path,
    log: Path,
    min_stage_s: float,
    echo: Callable[[str], None] = lambda line: print(line, flush=True),
) -> list[StageResult]:
    """Runs the stages in order, each within its budget and the time left before the deadline.

    A stage that fails, times out or cannot be read is recorded and the next one runs. Each
    command starts its own process group, so a stage that times out is stopped with all of its
    children (compile workers, torchrun's worker).

    Args:
        stages: What to run.
        deadline_s: Seconds from now by which every stage must have ended.
        work: The folder the stages write their results into, passed to ``Stage.read``.
        log: File that receives every stage's output, one section per stage.
        min_stage_s: A stage with less time than this left is skipped.
        echo: Prints one progress line per stage start and end.

    Returns:
        One result per stage, in order.
    """
    started = time.monotonic()
    results: list[StageResult] = []
    for stage in stages:
        left = deadline_s - (time.monotonic() - started) - RESERVE_S
        timeout = left if stage.budget_s is None else min(stage.budget_s, left)
        if timeout < min_stage_s:
            results.append(
                StageResult(stage.name, "skipped", 0.0, 0.0, None, "no time left", {}, stage.note)
            )
            echo(f"[{time.monotonic() - started:5.0f}s] {stage.name}: skipped, no time left")
            continue
        echo(f"[{time.monotonic() - started:5.0f}s] {stage.name}: start (up to {timeout:.0f} s)")
        result = _run_one(stage, timeout, work, log)
        results.append(result)
        echo(
            f"[{time.monotonic() - started:5.0f}s] {stage.name}: {result.status} in "
            f"{result.seconds:.0f} s: {result.summary}"
        )
        if result.status != "ok":
            echo(_tail(log, 20))
    return results


def _run_one(stage: Stage, timeout: float, work: Path, log: Path) -> StageResult:
    env = {**os.environ, **stage.env, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    with log.open("a") as sink:
        sink.write(f"\n===== {stage.name}: {' '.join(stage.argv)}\n")
        sink.flush()
        began, used = time.monotonic(), _children_cpu_seconds()
        process = subprocess.Popen(
            stage.argv,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
            start_new_session=True,
        )
        try:
            returncode: int | None = process.wait(timeout=timeout)
            status = "ok" if returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            returncode, status = None, "timeout"
        seconds, cpu_seconds = time.monotonic() - began, _children_cpu_seconds() - used
        sink.write(
            f"===== {stage.name}: {status} after {seconds:.1f} s ({cpu_seconds:.1f} s CPU)\n"
        )
    try:
        summary, data = stage.read(work)
    except (OSError, ValueError, KeyError, ET.ParseError) as error:
        summary, data = f"no result ({type(error).__name__}: {error})", {}
        if status == "ok":
            status = "failed"
    return StageResult(
        stage.name, status, seconds, cpu_seconds, returncode, summary, data, stage.note
    )


def _children_cpu_seconds() -> float:
    """CPU time of the finished child processes so far (user and system)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tail(path: Path, lines: int) -> str:
    text = path.read_text(errors="replace").splitlines()
    return "\n".join("    " + line for line in text[-lines:])


# --- reading each stage's result ---------------------------------------------------------------


def read_ceiling(work: Path) -> tuple[str, dict[str, Any]]:
    data = json.loads((work / "ceiling.json").read_text())
    summary = (
        f"{data['environment']['device_name']}: bf16 matmul {data['matmul_tflops']:.3g} "
        f"TFLOP/s, copy {data['copy_tb_per_s']:.3g} TB/s"
    )
    return summary, data


def read_pytest(work: Path) -> tuple[str, dict[str, Any]]:
    root = ET.parse(work / "cuda-tests.xml").getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        raise ValueError("the JUnit file holds no testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    failed = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in suite.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    summary = (
        f"{passed} passed, {counts['failures'] + counts['errors']} failed, "
        f"{counts['skipped']} skipped"
    )
    return summary, {**counts, "passed": passed, "failed_tests": failed}


def read_pretrain(name: str) -> Callable[[Path], tuple[str, dict[str, Any]]]:
    def read(work: Path) -> tuple[str, dict[str, Any]]:
        data = json.loads((work / f"{name}.json").read_text())
        rows = data["results"]
        best = max(rows, key=lambda row: row["sequences_per_s"], default=None)
        summary = f"{len(rows)} rows"
        if best is not None:
            summary += (
                f"; fastest {best['model']} {best['mode']} N={best['clips']}: "
                f"{best['sequences_per_s']:.0f} clips/s"
            )
        return summary, data

    return read


def read_host_syncs(work: Path) -> tuple[str, dict[str, Any]]:
    data = json.loads((work / "host-syncs.json").read_text())
    parts = [
        f"{row['preset']} {row['syncs_total']}"
        + (
            f" ({row['cuda_syncs_per_step']} CUDA syncs/step)"
            if "cuda_syncs_per_step" in row
            else ""
        )
        for row in data["results"]
    ]
    return "per forward+backward: " + ", ".join(parts), data


def read_torchrun(work: Path) -> tuple[str, dict[str, Any]]:
    data = json.loads((work / "train_hacm" / "summary.json").read_text())
    summary = (
        f"{data['device']}, loss {data['pretrain_final_loss']:.3f}, "
        f"{data['pretrain_seconds']:.0f} s pretraining, kNN {data['knn_accuracy']:.2f}"
    )
    return summary, data


def read_maskers(work: Path) -> tuple[str, dict[str, Any]]:
    data = json.loads((work / "maskers.json").read_text())
    shares = [row["share"] for row in data["results"] if row["share"] is not None]
    summary = f"{len(data['results'])} rows"
    if shares:
        summary += f"; largest share of a step {max(shares):.2%}"
    return summary, data


READERS: dict[str, Callable[[Path], tuple[str, dict[str, Any]]]] = {
    "ceiling": read_ceiling,
    "cuda-tests": read_pytest,
    "pretrain-eager": read_pretrain("pretrain-eager"),
    "baseline": read_pretrain("baseline"),
    "host-syncs": read_host_syncs,
    "torchrun": read_torchrun,
    "maskers": read_maskers,
    "pretrain-compile": read_pretrain("pretrain-compile"),
}


# --- workers (run as subprocesses by the stages above) -----------------------------------------


def ceiling_worker(device: torch.device, tiny: bool) -> dict[str, Any]:
    """The bf16 matrix-product rate and the copy bandwidth, on random data."""
    size = 256 if tiny else 8192
    repeats, warmup = (2, 1) if tiny else (10, 3)
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16, generator=generator)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16, generator=generator)
    matmul = harness.measure(lambda: a @ b, device, repeats=repeats, warmup=warmup)
    elements = (1 << 20) if tiny else (1 << 29)  # 4 MiB or 2 GiB of float32
    source = torch.randn(elements, device=device, generator=generator)
    target = torch.empty_like(source)
    copy = harness.measure(lambda: target.copy_(source), device, repeats=repeats, warmup=warmup)
    copied_bytes = 2 * source.numel() * source.element_size()  # read once, written once
    return {
        "environment": harness.environment(device),
        "nvidia_smi": _nvidia_smi(),
        "matmul_size": size,
        "matmul": harness.measurement_record(matmul),
        "matmul_tflops": 2 * size**3 / (matmul.median_ms / 1e3) / 1e12,
        "copy_bytes": copied_bytes,
        "copy": harness.measurement_record(copy),
        "copy_tb_per_s": copied_bytes / (copy.median_ms / 1e3) / 1e12,
    }


def _nvidia_smi() -> str | None:
    """The card's state as ``nvidia-smi`` reports it (a query; no setting is touched)."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = (
        "name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.draw,"
        "power.limit,temperature.gpu,persistence_mode,compute_mode"
    )
    completed = subprocess.run(
        ["nvidia-smi", f"--query-gpu={query}", "--format=csv"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return completed.stdout.strip() or completed.stderr.strip()


def host_syncs_worker(device: torch.device, tiny: bool) -> dict[str, Any]:
    """Host syncs of one eager bf16 forward+backward per preset, and CUDA's sync report."""
    import workloads  # noqa: PLC0415

    from skelmask.layouts import get_layout  # noqa: PLC0415

    layout = get_layout("nturgb+d")
    size = workloads.TINY_SIZE if tiny else workloads.MAMP_SIZE
    frames, clips = (8, 2) if tiny else (120, 32)
    batches = workloads.skeleton_batches(
        clips, frames=frames, joints=layout.num_joints, persons=2, device=device, seed=0
    )
    results = []
    for preset in PRESETS:
        model = workloads.build_mae(
            preset, layout, frames=frames, t_patch=4, size=size, device=device, seed=0
        )
        call = workloads.forward_backward(
            model, workloads.mae_loss, batches[0], device=device, precision="bf16"
        )
        call()  # lazy initialisation happens once, not per step
        syncs = harness.count_host_syncs(call)
        row: dict[str, Any] = {
            "preset": preset,
            "clips": clips,
            "syncs": syncs,
            "syncs_total": sum(syncs.values()),
        }
        if device.type == "cuda":
            row.update(_cuda_syncs(workloads.training_step(
                model, workloads.mae_loss, batches, device=device, precision="bf16"
            )))  # fmt: skip
        results.append(row)
        del model
    return {"environment": harness.environment(device), "results": results}


def _cuda_syncs(step: Callable[[], None]) -> dict[str, Any]:
    """Synchronisations of one whole training step, as ``set_sync_debug_mode`` warns of them."""
    step()
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    # Each warning names the Python line that synchronised.
    places = Counter(
        f"{_relative(warning.filename)}:{warning.lineno}"
        for warning in caught
        if "synchroniz" in str(warning.message).lower()
    )
    return {"cuda_syncs_per_step": sum(places.values()), "cuda_sync_places": dict(places)}


def _relative(filename: str) -> str:
    path = Path(filename)
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else filename


WORKERS: dict[str, Callable[[torch.device, bool], dict[str, Any]]] = {
    "ceiling": ceiling_worker,
    "host-syncs": host_syncs_worker,
}


# --- the report ----------------------------------------------------------------------------------


def merge_pretrain(results: Sequence[StageResult], device_type: str) -> dict[str, Any] | None:
    """The pretraining stages' rows as one ``bench_pretrain`` payload, targets recomputed."""
    import bench_pretrain  # noqa: PLC0415

    parts = [
        result.data
        for result in results
        if result.name in ("pretrain-eager", "baseline", "pretrain-compile") and result.data
    ]
    if not parts:
        return None
    rows = [row for part in parts for row in part["results"]]
    config = dict(parts[0]["config"])
    for key in ("presets", "precisions", "modes", "batch_sizes"):
        config[key] = list(dict.fromkeys(item for part in parts for item in part["config"][key]))
    config["baseline"] = any(part["config"]["baseline"] for part in parts)
    return {
        "benchmark": "pretrain",
        "environment": parts[0]["environment"],
        "config": config,
        "results": rows,
        "targets": bench_pretrain.evaluate_targets(rows, device_type),
    }


def hours_for(clips_per_s: float) -> float:
    """Hours for ``EPOCHS`` epochs of NTU-60 xsub's training clips at this throughput."""
    return NTU60_XSUB_TRAIN_CLIPS * EPOCHS / clips_per_s / 3600


def estimate(pretrain: dict[str, Any] | None, ceiling_tflops: float) -> dict[str, Any]:
    """Per preset: the fastest bf16 step measured, its NTU-60 hours and its gap to the goal.

    The gap is ``goal clips/s / measured clips/s`` (above 1: slower than the goal). The FLOP
    floor is the throughput at which the step's counted FLOPs would run at ``ceiling_tflops``.
    """
    presets: dict[str, Any] = {}
    rows = [] if pretrain is None else pretrain["results"]
    for preset in PRESETS:
        mine = [row for row in rows if row["model"] == preset and row["precision"] == "bf16"]
        if not mine:
            continue
        best = max(mine, key=lambda row: row["sequences_per_s"])
        flops_per_clip = statistics.median(row["flops"] / row["clips"] for row in mine)
        presets[preset] = {
            "mode": best["mode"],
            "clips": best["clips"],
            "clips_per_s": best["sequences_per_s"],
            "hours": hours_for(best["sequences_per_s"]),
            "times_slower_than_goal": GOAL_CLIPS_PER_S / best["sequences_per_s"],
            "tflops_per_s": best["tflops_per_s"],
            "share_of_ceiling": best["tflops_per_s"] / ceiling_tflops,
            "flops_per_clip": flops_per_clip,
            "ceiling_clips_per_s": ceiling_tflops * 1e12 / flops_per_clip,
        }
    return {
        "clips": NTU60_XSUB_TRAIN_CLIPS,
        "epochs": EPOCHS,
        "goal_hours": GOAL_HOURS,
        "goal_clips_per_s": GOAL_CLIPS_PER_S,
        "ceiling_tflops": ceiling_tflops,
        "presets": presets,
    }


def report(
    results: Sequence[StageResult],
    pretrain: dict[str, Any] | None,
    ntu: dict[str, Any],
    *,
    device_name: str,
    tiny: bool,
) -> str:
    """The Markdown report printed at the end."""
    lines = [f"# GPU check: {device_name}, torch {torch.__version__}"]
    if tiny:
        lines.append("\n--tiny: seconds-long sizes; the numbers mean nothing.")
    lines.append("")
    lines.append(
        harness.markdown_table(
            ["stage", "status", "s", "result"],
            [
                [
                    result.name,
                    result.status,
                    f"{result.seconds:.0f}",
                    result.summary + (f" ({result.note})" if result.note else ""),
                ]
                for result in results
            ],
        )
    )
    if pretrain is not None:
        ceiling = ntu["ceiling_tflops"]
        lines.append(f"\n## Pretraining step (ceiling {ceiling:.0f} TFLOP/s bf16)\n")
        lines.append(
            harness.markdown_table(
                [
                    "model",
                    "prec.",
                    "mode",
                    "N",
                    "ms",
                    "clips/s",
                    "TFLOP/s",
                    "% ceil.",
                    "peak MiB",
                    "warm-up s",
                    "h/400 ep",
                ],
                [
                    [
                        row["model"],
                        row["precision"],
                        row["mode"],
                        row["clips"],
                        harness.format_ms(row["median_ms"]),
                        f"{row['sequences_per_s']:.0f}",
                        f"{row['tflops_per_s']:.3g}",
                        f"{100 * row['tflops_per_s'] / ceiling:.1f}",
                        harness.format_mib(row["peak_mib"]),
                        f"{row['warmup_s']:.1f}",
                        f"{hours_for(row['sequences_per_s']):.3g}",
                    ]
                    for row in pretrain["results"]
                ],
            )
        )
    lines.append(
        f"\n## NTU-60 xsub: {EPOCHS} epochs × {NTU60_XSUB_TRAIN_CLIPS:,} clips in "
        f"≤ {GOAL_HOURS:g} h needs {ntu['goal_clips_per_s']:,.0f} clips/s\n"
    )
    if ntu["presets"]:
        lines.append(
            harness.markdown_table(
                [
                    "preset",
                    "fastest",
                    "clips/s",
                    f"hours (× the {GOAL_HOURS:g} h goal)",
                    "% ceil.",
                    "GFLOP/clip",
                    "clips/s at ceiling",
                ],
                [
                    [
                        preset,
                        f"{entry['mode']} N={entry['clips']}",
                        f"{entry['clips_per_s']:,.0f}",
                        f"{entry['hours']:.3g} ({entry['times_slower_than_goal']:.3g})",
                        f"{100 * entry['share_of_ceiling']:.1f}",
                        f"{entry['flops_per_clip'] / 1e9:.3g}",
                        f"{entry['ceiling_clips_per_s']:,.0f}",
                    ]
                    for preset, entry in ntu["presets"].items()
                ],
            )
        )
        lines.append(
            "\nSynthetic clips, the model's step only (no data loading). 'clips/s at ceiling': "
            "the counted FLOPs at the bf16 matrix ceiling, the most this step could reach."
        )
    else:
        lines.append("No pretraining step was measured.")
    return "\n".join(lines)


def write_outputs(
    out: Path,
    device_type: str,
    summary: dict[str, Any],
    text: str,
    log: Path,
    pretrain: dict[str, Any] | None,
    maskers: dict[str, Any] | None,
) -> list[Path]:
    """Writes the files listed in the module docstring into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "gpu_check.json", out / "gpu_check.md", out / "gpu_check.log"]
    harness.write_json(written[0], summary)
    written[1].write_text(text + "\n")
    shutil.copyfile(log, written[2])
    for name, payload in (
        (f"pretrain-{device_type}", pretrain),
        (f"maskers-{device_type}", maskers),
    ):
        if payload is not None:
            path = out / f"{name}.json"
            harness.write_json(path, payload)
            written.append(path)
    return written


def preflight() -> dict[str, str | None]:
    """Versions of what the stages import; None for a package that is missing."""
    versions: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in ("torch", "numpy", "einops", "geoopt", "pytest", "hypothesis", "skelmask"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = _imported_version(name)
    return versions


def _imported_version(name: str) -> str | None:
    """``__version__`` of a package importable without being installed (skelmask from a checkout)."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    return str(getattr(module, "__version__", "unknown"))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = harness.resolve_device(args.device)
    if args.worker is not None:
        harness.write_json(args.json, WORKERS[args.worker](device, args.tiny))
        return {"stages": []}
    out = args.out
    if out is None and os.environ.get("OUT"):
        out = Path(os.environ["OUT"])
    deadline = args.deadline or (TINY_DEADLINE_S if args.tiny else DEADLINE_S)
    versions = preflight()
    print(" · ".join(f"{name} {version}" for name, version in versions.items()), flush=True)
    if versions["geoopt"] is None:
        print("geoopt is missing: the hacm stages will fail (benchmarks/README.md says how to "
              "carry its wheel)", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as folder:
        work = Path(folder)
        log = work / "gpu_check.log"
        log.touch()
        stages = [stage for stage in plan(args, device, work) if stage.name in args.stages]
        results = run_stages(
            stages, deadline_s=deadline, work=work, log=log, min_stage_s=MIN_STAGE_S[device.type]
        )
        data = {result.name: result.data for result in results}
        ceiling = data.get("ceiling", {})
        measured = ceiling.get("matmul_tflops") if device.type == "cuda" else None
        pretrain = merge_pretrain(results, device.type)
        ntu = estimate(pretrain, measured or BF16_CEILING_TFLOPS)
        device_name = ceiling["environment"]["device_name"] if ceiling else device.type
        text = report(results, pretrain, ntu, device_name=device_name, tiny=args.tiny)
        summary = {
            "benchmark": "gpu_check",
            "device": device.type,
            "device_name": device_name,
            "versions": versions,
            "tiny": args.tiny,
            "deadline_s": deadline,
            "stages": [asdict(result) for result in results],
            "pretrain": pretrain,
            "ntu60_estimate": ntu,
        }
        print("\n" + text, flush=True)
        if out is not None:
            written = write_outputs(
                out, device.type, summary, text, log, pretrain, data.get("maskers") or None
            )
            print(f"\nwrote {', '.join(str(path) for path in written)}")
    return summary


def exit_code(summary: dict[str, Any]) -> int:
    """1 when a stage failed or timed out (skipped ones, for lack of time, do not count)."""
    return int(any(stage["status"] in ("failed", "timeout") for stage in summary["stages"]))


if __name__ == "__main__":
    # On the GPU machine skelmask is not installed: the checkout's own is used, here and in
    # every stage (see _run_one).
    sys.path.insert(1, str(REPO))
    sys.exit(exit_code(main()))
