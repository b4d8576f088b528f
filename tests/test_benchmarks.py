"""The benchmark scripts run end to end in ``--tiny`` mode, and the naive baseline is faithful.

Nothing here asserts a timing: the scripts' numbers depend on the machine. The tests check the
tables and the JSON, the bookkeeping (shares, ratios, verdicts), and that the straightforward
baseline of ``benchmarks/naive_mae.py`` computes the same loss and gradients as the library's
``"mae"`` preset, so the speed-up it measures compares like with like.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from skelmask import _poincare
from skelmask.layouts import get_layout
from skelmask.losses import ScaledCosineError
from skelmask.maskers.random import RandomMasker
from skelmask.maskers.skelemix import SkeleMix
from skelmask.models.presets import create_mae

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
EXAMPLES = BENCHMARKS.parent / "examples"
CORE_MASKERS = [
    "RandomMasker",
    "MotionAwareMasker",
    "HyperbolicHierarchyMasker",
    "GlobalAttentionMasker",
    "CrossMasker.hacm",
]
# The 2025–26 maskers, measured after the presets' against the plain "mae" step.
NEW_MASKERS = ["SemanticTubeMasker", "DegreeMotionMasker", "SaliencyMasker"]
MEASUREMENT_KEYS = {"median_ms", "iqr_ms", "repeats", "peak_mib", "peak_total_mib", "warmup_s"}
ENVIRONMENT_KEYS = {"torch", "cuda", "python", "platform", "device", "device_name", "threads"}


@pytest.fixture(scope="module")
def bench() -> Iterator[dict[str, ModuleType]]:
    """The benchmark modules, imported from ``benchmarks/`` (they import one another flat)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield {
            name: importlib.import_module(name)
            for name in (
                "harness",
                "naive_mae",
                "workloads",
                "bench_maskers",
                "bench_pretrain",
                "bench_scaling",
                "gpu_check",
            )
        }
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    """The scripts' ``--threads`` sets torch's global thread count; give it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table in ``text`` as rows of cells, the separator line dropped."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            if not set(line) <= {"|", "-"}:
                current.append([cell.strip() for cell in line.strip("|").split("|")])
        elif current:
            found.append(current)
            current = []
    return found


def test_bench_maskers_tiny(
    bench: dict[str, ModuleType], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "maskers.json"
    bench["bench_maskers"].main(
        ["--tiny", "--device", "cpu", "--threads", "1", "--batch-sizes", "2,3", "--json", str(path)]
    )
    out = capsys.readouterr().out
    written = json.loads(path.read_text())
    assert set(written) == {
        "benchmark",
        "environment",
        "config",
        "share_target",
        "results",
        "notes",
    }
    assert set(written["environment"]) >= ENVIRONMENT_KEYS
    assert written["environment"]["threads"] == 1
    names = [row["masker"] for row in written["results"]]
    assert names[: len(CORE_MASKERS) + len(NEW_MASKERS)] == CORE_MASKERS + NEW_MASKERS
    per_batch = len(names) // 2
    assert len(names) == 2 * per_batch
    assert [row["clips"] for row in written["results"]] == [2] * per_batch + [3] * per_batch
    for row in written["results"]:
        assert set(row) >= MEASUREMENT_KEYS
        assert row["batch"] == 2 * row["clips"]
        assert row["median_ms"] > 0
        assert row["iqr_ms"] >= 0
        assert row["repeats"] == 2
        assert row["share"] == pytest.approx(row["median_ms"] / row["step_ms"])
        assert row["share_pass"] == (row["share"] <= 0.05)
        assert row["preset"] == {"RandomMasker": "mae", "MotionAwareMasker": "mamp"}.get(
            row["masker"], "hacm" if row["masker"] in CORE_MASKERS else "mae"
        )
    (table,) = tables(out)
    assert table[0][:3] == ["masker", "N (B=N·M)", "median ms"]
    assert [line[0] for line in table[1:]] == names
    assert all(line[-1] in {"pass", "FAIL"} for line in table[1:])


def test_bench_maskers_without_steps_reports_no_share(
    bench: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    payload = bench["bench_maskers"].main(["--tiny", "--threads", "1", "--no-step"])
    assert {row["share"] for row in payload["results"]} == {None}
    (table,) = tables(capsys.readouterr().out)
    assert all(line[-2:] == ["n/a", "n/a"] for line in table[1:])


def test_bench_pretrain_tiny(
    bench: dict[str, ModuleType], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pretrain.json"
    bench["bench_pretrain"].main(
        [
            "--tiny",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--presets",
            "mae,hacm",
            "--precisions",
            "float32,bf16",
            "--json",
            str(path),
        ]
    )
    out = capsys.readouterr().out
    written = json.loads(path.read_text())
    assert set(written) == {"benchmark", "environment", "config", "results", "targets"}
    assert written["config"]["model"] == {
        "width": 16,
        "depth": 1,
        "heads": 2,
        "decoder_width": 16,
        "decoder_depth": 1,
    }
    variants = [(row["model"], row["precision"], row["mode"]) for row in written["results"]]
    assert variants == [
        ("mae", "float32", "eager"),
        ("mae", "bf16", "eager"),
        ("hacm", "float32", "eager"),
        ("hacm", "bf16", "eager"),
        ("naive", "float32", "eager"),
    ]
    flops = {}
    for row in written["results"]:
        assert set(row) >= MEASUREMENT_KEYS
        assert row["sequences_per_s"] == pytest.approx(2 / (row["median_ms"] / 1e3))
        assert row["flops"] > 0
        assert row["tflops_per_s"] == pytest.approx(row["flops"] / (row["median_ms"] / 1e3) / 1e12)
        flops.setdefault(row["model"], set()).add(row["flops"])
    # Counted once per model and batch, whatever the precision; the baseline computes what the
    # mae preset computes, except that its attention backward does not recompute the scores.
    assert all(len(counts) == 1 for counts in flops.values())
    assert flops["hacm"] != flops["mae"]
    times = {(row["model"], row["precision"]): row["median_ms"] for row in written["results"]}
    targets = {(row["target"], row["compared"]): row for row in written["targets"]}
    hacm = targets[("hacm step / mae step", "bf16 eager")]
    assert hacm["ratio"] == pytest.approx(times[("hacm", "bf16")] / times[("mae", "bf16")])
    assert hacm["passed"] == (hacm["ratio"] <= 1.15)
    like = targets[("baseline step / mae step (like-for-like)", "float32 eager")]
    assert like["ratio"] == pytest.approx(times[("naive", "float32")] / times[("mae", "float32")])
    assert like["threshold"] == 1.5
    fastest = next(row for row in written["targets"] if "(fastest)" in row["target"])
    assert fastest["ratio"] == pytest.approx(
        times[("naive", "float32")] / min(times[("mae", "float32")], times[("mae", "bf16")])
    )
    steps, verdicts = tables(out)
    assert steps[0][:3] == ["model", "precision", "mode"]
    assert [tuple(line[:3]) for line in steps[1:]] == variants
    assert len(verdicts) == 1 + len(written["targets"])
    assert all(line[-1] in {"pass", "FAIL"} for line in verdicts[1:])


def test_bench_pretrain_rejects_an_unknown_preset(bench: dict[str, ModuleType]) -> None:
    with pytest.raises(SystemExit):
        bench["bench_pretrain"].main(["--tiny", "--presets", "mae,bert"])


def test_bench_pretrain_rejects_an_unknown_mode(
    bench: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        bench["bench_pretrain"].main(["--tiny", "--modes", "eager,jit"])
    assert "--modes: expected names from ['eager', 'compile'], got 'jit'" in capsys.readouterr().err


def test_bench_pretrain_without_baseline_has_no_baseline_targets(
    bench: dict[str, ModuleType], tmp_path: Path
) -> None:
    path = tmp_path / "pretrain.json"
    payload = bench["bench_pretrain"].main(
        ["--tiny", "--device", "cpu", "--threads", "1", "--presets", "mae,hacm", "--precisions",
         "float32", "--no-baseline", "--batch-sizes", "2,3", "--json", str(path)]
    )  # fmt: skip
    assert {row["model"] for row in payload["results"]} == {"mae", "hacm"}
    assert [row["target"] for row in payload["targets"]] == ["hacm step / mae step"] * 2
    assert payload["config"]["baseline"] is False
    # The file is rewritten after every row; the last write is the whole run.
    assert json.loads(path.read_text()) == json.loads(json.dumps(payload))


def test_bench_scaling_tiny(
    bench: dict[str, ModuleType], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scaling.json"
    bench["bench_scaling"].main(
        [
            "--tiny",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--frames",
            "8,12",
            "--joints",
            "17,50",
            "--batch-sizes",
            "2",
            "--json",
            str(path),
        ]
    )
    out = capsys.readouterr().out
    written = json.loads(path.read_text())
    assert set(written) == {"benchmark", "environment", "config", "results"}
    points = [(row["axis"], row["value"]) for row in written["results"]]
    assert points == [("frames", 8), ("frames", 12), ("joints", 17), ("joints", 50), ("batch", 2)]
    by_point = {(row["axis"], row["value"]): row for row in written["results"]}
    assert by_point[("joints", 17)]["layout"] == "coco"
    assert by_point[("joints", 50)]["layout"] == "synthetic-50"
    assert by_point[("frames", 12)]["tokens"] == 3 * 25
    for row in written["results"]:
        assert set(row["step"]) >= MEASUREMENT_KEYS
        assert list(row["maskers"])[: len(CORE_MASKERS) + len(NEW_MASKERS)] == (
            CORE_MASKERS + NEW_MASKERS
        )
    frames, joints, batch = tables(out)
    assert frames[0][:3] == ["frames", "tokens L", "step ms"]
    assert [line[0] for line in frames[1:]] == ["8", "12"]
    assert frames[1][5] == "1.00"
    assert [line[0] for line in joints[1:]] == ["17", "50"]
    assert [line[0] for line in batch[1:]] == ["2"]


def test_bench_scaling_rejects_frames_not_divisible_by_the_patch(
    bench: dict[str, ModuleType],
) -> None:
    with pytest.raises(SystemExit, match="multiple of --t-patch=4"):
        bench["bench_scaling"].main(["--tiny", "--frames", "10"])


def test_naive_baseline_matches_the_library_mae(bench: dict[str, ModuleType]) -> None:
    torch.manual_seed(0)
    sizes = {"embed_dim": 32, "depth": 2, "num_heads": 4, "decoder_dim": 16, "decoder_depth": 2}
    library = create_mae("mae", layout="coco", num_frames=12, t_patch=3, **sizes)
    naive = bench["naive_mae"].NaiveMAE(num_joints=17, num_frames=12, t_patch=3, **sizes)
    naive.load_state_dict(library.state_dict())
    x = torch.randn(3, 3, 12, 17, 2)
    out = library(x, generator=torch.Generator().manual_seed(1))
    naive_loss = naive(x, mask=out.mask)
    assert naive_loss.item() == pytest.approx(out.loss.item(), rel=1e-5)
    out.loss.backward()
    naive_loss.backward()
    naive_grads = dict(naive.named_parameters())
    for name, parameter in library.named_parameters():
        assert parameter.grad is not None
        torch.testing.assert_close(naive_grads[name].grad, parameter.grad, rtol=1e-4, atol=1e-6)


def test_naive_baseline_differs_for_another_mask(bench: dict[str, ModuleType]) -> None:
    torch.manual_seed(0)
    naive = bench["naive_mae"].NaiveMAE(
        num_joints=20, num_frames=8, embed_dim=16, depth=1, num_heads=2, decoder_dim=8
    )
    x = torch.randn(2, 3, 8, 20, 1)
    first = naive.random_mask(2, x.device)
    second = first.roll(1, dims=1)
    assert naive(x, mask=first).item() != pytest.approx(naive(x, mask=second).item())


def test_naive_random_mask_keeps_the_library_count(bench: dict[str, ModuleType]) -> None:
    naive = bench["naive_mae"].NaiveMAE(
        num_joints=25, num_frames=120, embed_dim=8, depth=1, num_heads=2, decoder_dim=8
    )
    mask = naive.random_mask(4, torch.device("cpu"))
    library = RandomMasker(0.9)(torch.randn(1, 30, 25, 8))
    assert mask.shape == (4, 750)
    assert (~mask).sum(dim=1).tolist() == [library.num_keep] * 4 == [75] * 4
    assert len({tuple(row.tolist()) for row in mask}) == 4


def test_count_flops_counts_the_cpu_attention_kernel(bench: dict[str, ModuleType]) -> None:
    batch, heads, length, width = 2, 3, 10, 8
    q, k, v = (torch.randn(batch, heads, length, width, requires_grad=True) for _ in range(3))

    def attention() -> None:
        torch.nn.functional.scaled_dot_product_attention(q, k, v).sum().backward()

    # Forward: q·kᵀ and weights·v, 2·B·H·L·L·d each. Backward: five products of that size.
    product = 2 * batch * heads * length * length * width
    assert bench["harness"].count_flops(attention) == 2 * product + 5 * product


def test_count_flops_is_the_same_for_fused_and_materialised_attention(
    bench: dict[str, ModuleType],
) -> None:
    torch.manual_seed(0)
    sizes = {"embed_dim": 16, "depth": 2, "num_heads": 2, "decoder_dim": 8, "decoder_depth": 1}
    library = create_mae("mae", layout="coco", num_frames=8, t_patch=4, **sizes)
    naive = bench["naive_mae"].NaiveMAE(num_joints=17, num_frames=8, t_patch=4, **sizes)
    x = torch.randn(2, 3, 8, 17, 2)
    count = bench["harness"].count_flops
    library_flops, naive_flops = count(lambda: library(x)), count(lambda: naive(x))
    # The linear layers of both models, by hand: encoder on K = 3 visible tokens of L = 34,
    # decoder on all L, batch B = 4 sequences, P = t_patch·C = 12 values per token.
    batch, tokens, kept, width, dec, patch = 4, 34, 3, 16, 8, 12
    linear = (
        2
        * batch
        * (
            tokens * patch * width  # patch embedding (every token, before masking)
            + kept * 2 * 12 * width * width  # two encoder blocks: qkv, proj, fc1, fc2 = 12·D²
            + kept * width * dec  # decoder embedding
            + tokens * 12 * dec * dec  # one decoder block
            + tokens * dec * patch  # prediction
        )
    )
    attention = 2 * 2 * batch * (2 * kept * kept * width + tokens * tokens * dec)
    assert library_flops == naive_flops == linear + attention


def test_count_host_syncs_sees_what_would_stall_a_gpu(bench: dict[str, ModuleType]) -> None:
    count = bench["harness"].count_host_syncs
    values = torch.randn(16)
    assert count(lambda: torch.as_tensor(3, device=values.device)) == {"lift_fresh": 1}
    assert count(lambda: values.clamp(max=3)) == {}

    def mask_assignment() -> None:
        values.clone()[values > 0] = values.new_zeros(())

    assert count(lambda: (values * 2).sum().exp()) == {}
    assert count(lambda: bool(values.isfinite().all())) == {"_local_scalar_dense": 1}
    assert count(lambda: values[values > 0]) == {"index": 1}
    assert count(mask_assignment) == {"index_put_": 1}
    assert count(lambda: (values.nonzero(), values.argmax().item())) == {
        "nonzero": 1,
        "_local_scalar_dense": 1,
    }


def test_hot_paths_build_no_tensor_from_host_data(bench: dict[str, ModuleType]) -> None:
    # Regression: SkeleMix, ScaledCosineError without a mask and the Poincaré midpoint each made
    # a tensor from a Python number on the input's device, a blocking host-to-GPU copy per call.
    count = bench["harness"].count_host_syncs
    mix = SkeleMix(get_layout("nturgb+d"), t_patch=4)
    clips = torch.randn(3, 3, 16, 25, 2)
    pred, target = torch.randn(4, 6, 3), torch.randn(4, 6, 3)
    points, c = torch.randn(2, 5, 3) * 0.1, torch.tensor(1.0)
    assert count(lambda: mix(clips)) == {}
    assert count(lambda: ScaledCosineError()(pred, target)) == {}
    assert count(lambda: ScaledCosineError()(pred, target, mask=torch.rand(4, 6) > 0.5)) == {}
    assert count(lambda: _poincare.midpoint(points, c)) == {}


@pytest.mark.parametrize("preset", ["mae", "mamp", "hacm"])
def test_eager_pretraining_pass_neither_copies_host_data_nor_sizes_by_data(
    bench: dict[str, ModuleType], preset: str
) -> None:
    # On the CPU the input checks read values back (off the CPU most are queued on the device;
    # tests/models/test_mae.py runs the pass on a device that cannot read back). Nothing else may
    # wait for the device: no tensor from host data, no output sized by the data.
    torch.manual_seed(0)
    model = create_mae(preset, layout="nturgb+d", num_frames=8, embed_dim=16, depth=1,
                       num_heads=2, decoder_dim=16, decoder_depth=1)  # fmt: skip
    x = (torch.randn(2, 3, 8, 25, 2) * 0.02).cumsum(dim=2)

    def forward_backward() -> None:
        model(x).loss.backward()

    assert set(bench["harness"].count_host_syncs(forward_backward)) <= {"_local_scalar_dense"}


def test_measure_summarises_every_repeat(bench: dict[str, ModuleType]) -> None:
    calls: list[int] = []
    measured = bench["harness"].measure(
        lambda: calls.append(1), torch.device("cpu"), repeats=4, warmup=2
    )
    assert len(calls) == 6
    assert measured.repeats == 4
    assert measured.warmup_s >= 0
    assert measured.median_ms >= 0
    assert measured.iqr_ms >= 0


def test_markdown_table_has_a_header_and_one_line_per_row(bench: dict[str, ModuleType]) -> None:
    text = bench["harness"].markdown_table(["a", "b"], [[1, "x"], [2, "y"]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1 | x |", "| 2 | y |"]


@pytest.mark.parametrize("text", ["", "3,x", "0,4"])
def test_int_lists_reject_bad_values(bench: dict[str, ModuleType], text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected"):
        bench["harness"].parse_int_list(text)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error(bench: dict[str, ModuleType]) -> None:
    with pytest.raises(SystemExit, match=r"torch\.cuda\.is_available"):
        bench["bench_maskers"].main(["--tiny", "--device", "cuda"])


@pytest.mark.cuda
def test_benchmarks_run_on_cuda(bench: dict[str, ModuleType]) -> None:
    maskers = bench["bench_maskers"].main(["--tiny", "--device", "cuda"])
    pretrain = bench["bench_pretrain"].main(["--tiny", "--device", "cuda", "--presets", "mae"])
    assert maskers["environment"]["device"] == pretrain["environment"]["device"] == "cuda"
    for row in maskers["results"] + pretrain["results"]:
        assert row["median_ms"] > 0
        assert row["peak_mib"] is not None
    assert {row["threshold"] for row in pretrain["targets"]} == {3.0}


GPU_CHECK_STAGES = [
    "ceiling",
    "cuda-tests",
    "pretrain-eager",
    "baseline",
    "host-syncs",
    "torchrun",
    "maskers",
    "pretrain-compile",
]


def test_gpu_check_runs_every_stage_tiny_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHONPATH": str(BENCHMARKS.parent)}
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu_check.py"), "--device", "cpu", "--tiny"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    stages, steps, estimate = tables(completed.stdout)
    assert [line[0] for line in stages[1:]] == GPU_CHECK_STAGES
    assert {line[1] for line in stages[1:]} == {"ok"}
    assert "needs 4,455 clips/s" in completed.stdout
    assert sorted(path.name for path in out.iterdir()) == [
        "gpu_check.json",
        "gpu_check.log",
        "gpu_check.md",
        "maskers-cpu.json",
        "pretrain-cpu.json",
    ]
    assert (out / "gpu_check.md").read_text() in completed.stdout
    log = (out / "gpu_check.log").read_text()
    assert all(f"===== {name}: ok after" in log for name in GPU_CHECK_STAGES)

    summary = json.loads((out / "gpu_check.json").read_text())
    assert [stage["name"] for stage in summary["stages"]] == GPU_CHECK_STAGES
    data = {stage["name"]: stage["data"] for stage in summary["stages"]}
    assert data["ceiling"]["matmul_tflops"] > 0
    assert data["ceiling"]["copy_tb_per_s"] > 0
    assert data["cuda-tests"]["failures"] == data["cuda-tests"]["errors"] == 0
    assert data["cuda-tests"]["tests"] >= 1
    assert [row["preset"] for row in data["host-syncs"]["results"]] == ["hacm", "mamp", "mae"]
    assert data["torchrun"]["device"] == "cpu"
    assert data["torchrun"]["knn_accuracy"] >= 0
    assert summary["versions"]["geoopt"] is not None

    pretrain = json.loads((out / "pretrain-cpu.json").read_text())
    assert pretrain == summary["pretrain"]
    variants = [(row["model"], row["precision"], row["mode"]) for row in pretrain["results"]]
    assert variants == [
        ("hacm", "bf16", "eager"),
        ("mamp", "bf16", "eager"),
        ("mae", "bf16", "eager"),
        ("mae", "float32", "eager"),
        ("naive", "float32", "eager"),
        ("hacm", "bf16", "compile"),
        ("mamp", "bf16", "compile"),
        ("mae", "bf16", "compile"),
    ]
    assert [tuple(line[:3]) for line in steps[1:]] == variants
    assert pretrain["config"]["modes"] == ["eager", "compile"]
    # Targets are recomputed over every stage's rows: the baseline against the fastest mae step.
    fastest = next(row for row in pretrain["targets"] if "(fastest)" in row["target"])
    mae_ms = min(row["median_ms"] for row in pretrain["results"] if row["model"] == "mae")
    naive_ms = next(row["median_ms"] for row in pretrain["results"] if row["model"] == "naive")
    assert fastest["ratio"] == pytest.approx(naive_ms / mae_ms)
    ntu = summary["ntu60_estimate"]
    assert [line[0] for line in estimate[1:]] == list(ntu["presets"]) == ["hacm", "mamp", "mae"]
    for entry in ntu["presets"].values():
        assert entry["hours"] == pytest.approx(40_091 * 400 / entry["clips_per_s"] / 3600)
    maskers = json.loads((out / "maskers-cpu.json").read_text())
    assert maskers["benchmark"] == "maskers"


def _stage(gpu_check: ModuleType, name: str, code: str, budget: float | None) -> object:
    def read(work: Path) -> tuple[str, dict[str, object]]:
        return "read", json.loads((work / f"{name}.json").read_text())

    return gpu_check.Stage(name, [sys.executable, "-c", code], budget, read)


def test_gpu_check_isolates_a_failing_and_a_hanging_stage(
    bench: dict[str, ModuleType], tmp_path: Path
) -> None:
    gpu_check = bench["gpu_check"]
    pid_file, result_file = tmp_path / "child.pid", tmp_path / "works.json"
    hang = (
        "import subprocess, sys, time; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(pid_file)!r}, 'w').write(str(child.pid)); time.sleep(60)"
    )
    stages = [
        _stage(gpu_check, "fails", "import sys; print('boom'); sys.exit(3)", 30),
        _stage(gpu_check, "hangs", hang, 3),
        _stage(gpu_check, "unreadable", "pass", 30),
        _stage(gpu_check, "works", f"open({str(result_file)!r}, 'w').write('{{\"ok\": 1}}')", None),
    ]
    lines: list[str] = []
    results = gpu_check.run_stages(
        stages, deadline_s=60, work=tmp_path, log=tmp_path / "log", min_stage_s=1, echo=lines.append
    )
    assert [(r.name, r.status, r.returncode) for r in results] == [
        ("fails", "failed", 3),
        ("hangs", "timeout", None),
        ("unreadable", "failed", 0),
        ("works", "ok", 0),
    ]
    assert results[1].seconds < 30
    assert results[2].summary.startswith("no result (FileNotFoundError")
    assert results[3].data == {"ok": 1}
    log = (tmp_path / "log").read_text()
    assert "boom" in log
    assert "===== hangs: timeout after" in log
    assert len(lines) == 2 * len(stages) + 3  # start and end of each, the tails of the failures
    # The hanging stage's own child went with it (the whole process group is stopped).
    child = int(pid_file.read_text())
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"process {child} of the timed-out stage is still running")


def test_gpu_check_skips_stages_past_the_deadline(
    bench: dict[str, ModuleType], tmp_path: Path
) -> None:
    gpu_check = bench["gpu_check"]
    stage = _stage(gpu_check, "late", "pass", 30)
    # 5.5 s minus the 5 s kept for the report leaves less than the 1 s a stage needs.
    (result,) = gpu_check.run_stages(
        [stage], deadline_s=5.5, work=tmp_path, log=tmp_path / "log", min_stage_s=1,
        echo=lambda line: None,
    )  # fmt: skip
    assert (result.status, result.summary) == ("skipped", "no time left")
    assert gpu_check.exit_code({"stages": [{"status": "skipped"}, {"status": "ok"}]}) == 0
    assert gpu_check.exit_code({"stages": [{"status": "timeout"}]}) == 1


def test_gpu_check_estimate_against_the_one_hour_goal(bench: dict[str, ModuleType]) -> None:
    gpu_check = bench["gpu_check"]
    goal = 40_091 * 400 / 3600
    needed = gpu_check.GOAL_CLIPS_PER_S
    assert needed == pytest.approx(goal)
    rows = [
        {"model": "hacm", "precision": "bf16", "mode": "eager", "clips": 100,
         "sequences_per_s": goal / 4, "flops": 100e9, "tflops_per_s": 79.0},
        {"model": "hacm", "precision": "bf16", "mode": "compile", "clips": 100,
         "sequences_per_s": goal / 2, "flops": 100e9, "tflops_per_s": 158.0},
        {"model": "hacm", "precision": "float32", "mode": "eager", "clips": 100,
         "sequences_per_s": goal * 10, "flops": 100e9, "tflops_per_s": 1.0},
    ]  # fmt: skip
    ntu = gpu_check.estimate({"results": rows}, 790.0)
    assert list(ntu["presets"]) == ["hacm"]
    hacm = ntu["presets"]["hacm"]
    assert hacm["mode"] == "compile"  # the fastest bf16 row; float32 is not the bf16 estimate
    assert hacm["hours"] == pytest.approx(2.0)
    assert hacm["times_slower_than_goal"] == pytest.approx(2.0)
    assert hacm["share_of_ceiling"] == pytest.approx(0.2)
    assert hacm["flops_per_clip"] == pytest.approx(1e9)
    assert hacm["ceiling_clips_per_s"] == pytest.approx(790e12 / 1e9)
    assert gpu_check.estimate(None, 790.0)["presets"] == {}


def test_gpu_check_rejects_an_unknown_stage(
    bench: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        bench["gpu_check"].parse_args(["--stages", "ceiling,warp-drive"])
    assert "--stages: unknown ['warp-drive']" in capsys.readouterr().err


def test_gpu_check_plans_the_cuda_run_with_options_its_scripts_accept(
    bench: dict[str, ModuleType], tmp_path: Path
) -> None:
    # The CUDA run differs from the tiny one only in its options; check that every script takes
    # them, so that a lent GPU is not spent on a typo.
    gpu_check = bench["gpu_check"]
    stages = {
        stage.name: stage
        for stage in gpu_check.plan(gpu_check.parse_args([]), torch.device("cuda"), tmp_path)
    }
    assert list(stages) == GPU_CHECK_STAGES
    assert all(stage.env == {} for stage in stages.values())
    parsers = {
        "bench_pretrain.py": bench["bench_pretrain"].parse_args,
        "bench_maskers.py": bench["bench_maskers"].parse_args,
        "gpu_check.py": gpu_check.parse_args,
    }
    for name in (
        "ceiling",
        "pretrain-eager",
        "baseline",
        "host-syncs",
        "maskers",
        "pretrain-compile",
    ):
        argv = stages[name].argv
        args = parsers[Path(argv[1]).name](argv[2:])
        assert args.device == "cuda"
        assert args.json == tmp_path / f"{name}.json"
    eager = bench["bench_pretrain"].parse_args(stages["pretrain-eager"].argv[2:])
    assert (eager.width, eager.depth, eager.heads) == (256, 8, 8)
    assert (eager.decoder_width, eager.decoder_depth, eager.frames, eager.t_patch) == (
        256, 3, 120, 4
    )  # fmt: skip
    assert eager.batch_sizes == [128, 256, 32]
    assert (eager.presets, eager.precisions, eager.modes) == (
        ["hacm", "mamp", "mae"], ["bf16"], ["eager"]
    )  # fmt: skip
    compiled = bench["bench_pretrain"].parse_args(stages["pretrain-compile"].argv[2:])
    assert (compiled.modes, compiled.no_baseline) == (["compile"], True)
    torchrun = stages["torchrun"].argv
    script = torchrun.index(str(EXAMPLES / "train_hacm.py"))
    assert torchrun[1:script] == [
        "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"
    ]  # fmt: skip
    sys.path.insert(0, str(EXAMPLES))
    try:
        train_hacm = importlib.import_module("train_hacm")
    finally:
        sys.path.remove(str(EXAMPLES))
    example = train_hacm.parse_args(torchrun[script + 1 :])
    assert (example.device, example.compile, example.no_amp) == ("cuda", True, False)
    assert example.output_dir == tmp_path / "train_hacm"
    # Budgets are upper bounds; the deadline keeps the whole run inside 8 minutes, and the last
    # stage takes whatever time is left.
    assert stages["pretrain-compile"].budget_s is None
    assert gpu_check.DEADLINE_S + gpu_check.RESERVE_S < 8 * 60
