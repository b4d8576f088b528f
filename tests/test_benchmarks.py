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
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from skelmask.maskers.random import RandomMasker
from skelmask.models.presets import create_mae

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
CORE_MASKERS = [
    "RandomMasker",
    "MotionAwareMasker",
    "HyperbolicHierarchyMasker",
    "GlobalAttentionMasker",
    "CrossMasker.hacm",
]
# The 2025–26 maskers, measured after the presets' against the plain "mae" step.
NEW_MASKERS = ["SemanticTubeMasker", "DegreeMotionMasker", "SaliencyMasker"]
MEASUREMENT_KEYS = {"median_ms", "iqr_ms", "repeats", "peak_mib", "peak_total_mib"}
ENVIRONMENT_KEYS = {"torch", "cuda", "python", "platform", "device", "device_name", "threads"}


@pytest.fixture(scope="module")
def bench() -> Iterator[dict[str, ModuleType]]:
    """The benchmark modules, imported from ``benchmarks/`` (they import one another flat)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield {
            name: importlib.import_module(name)
            for name in ("harness", "naive_mae", "bench_maskers", "bench_pretrain", "bench_scaling")
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
    for row in written["results"]:
        assert set(row) >= MEASUREMENT_KEYS
        assert row["sequences_per_s"] == pytest.approx(2 / (row["median_ms"] / 1e3))
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


def test_measure_summarises_every_repeat(bench: dict[str, ModuleType]) -> None:
    calls: list[int] = []
    measured = bench["harness"].measure(
        lambda: calls.append(1), torch.device("cpu"), repeats=4, warmup=2
    )
    assert len(calls) == 6
    assert measured.repeats == 4
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
