r"""Compare maskers: the same encoder, target, loss and budget, pretrained once per masker and seed.

Every run is ``examples/train_hacm.py`` with one preset (``--preset``, default ``mamp``: the
Euclidean transformer, motion target, reconstruction loss only) and one ``--masker``; nothing
else changes between runs, and every masker hides the same share of tokens (``--mask-ratio``,
default 0.9). Each run is probed on the test split (linear probe and kNN, the last epoch's
accuracy); with ``--data msr-action3d`` its frozen features are also scored by leave-one-subject-out
validation on the training subjects (``docs/scripts/msr_action3d_validation.py``), which is
what choices should be made on. Once per seed, the same probe is trained on the encoder at random
initialisation and on the raw coordinates::

    python examples/compare_maskers.py --tiny                      # seconds, built-in data
    python examples/compare_maskers.py --maskers random,motion,tube --seeds 0,1,2 \
        --output runs/maskers --data msr-action3d --data-root ../shared/data/msr-action3d

Every option this tool does not define goes to ``train_hacm.py`` unchanged (data source, window,
widths, epochs, device, ...); ``--output-dir``, ``--seed``, ``--stages``, ``--masker``,
``--overwrite`` and ``--resume`` are set per run and refused here. Runs go to
``<output>/runs/<masker>-seed<N>`` (baselines: ``baselines-seed<N>``); a run folder holding
``summary.json`` is read, not run again, so an interrupted comparison continues where it stopped
and maskers or seeds can be added later with the same options (``<output>/options.json``
records them; other options are refused). An unfinished run is started again. The results are
``<output>/comparison.md``, ``comparison.json`` and ``comparison.png`` (mean ± sd over seeds;
the chart needs matplotlib: ``pip install skelmask[viz]``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, get_args

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_hacm
from msr_action3d_validation import leave_one_subject_out, subjects_of

from skelmask.data import SkeletonDataset, load_msr_action3d
from skelmask.models import MaskerName
from skelmask.training import DistributedContext, extract_features, seed_everything

MASKERS: tuple[str, ...] = get_args(MaskerName)
"""Every masker ``create_mae`` builds by name; all of them work with the ``mae`` and ``mamp``
presets."""

# train_hacm.py options that this tool sets for each run.
RESERVED = ("--output-dir", "--seed", "--stages", "--masker", "--overwrite", "--resume", "--preset")

TINY = [
    "--window", "16", "--t-patch", "4", "--embed-dim", "16", "--depth", "1", "--heads", "2",
    "--decoder-dim", "16", "--decoder-depth", "1", "--epochs", "1", "--warmup-epochs", "0",
    "--probe-epochs", "2", "--probe-batch-size", "32", "--batch-size", "32", "--train-samples", "64", "--test-samples",
    "32", "--device", "cpu",
]  # fmt: skip
"""``--tiny``: a seconds-long configuration, for trying the tool (the numbers mean nothing)."""

# (key in a run's scores, column heading); the LOSO columns only with subjects.
METRICS = (
    ("probe", "linear probe (test)"),
    ("knn", "kNN (test)"),
    ("loso_linear", "linear, leave-one-subject-out (train subjects)"),
    ("loso_knn", "kNN, leave-one-subject-out (train subjects)"),
)
OPTIONS_FILE = "options.json"
"""The options of a comparison's runs, written before the first run: later invocations must match."""
VALIDATION_FILES = ("validation.json", "validation-raw.json")
RANDOM_INIT = "random initialisation"
RAW = "raw coordinates"


@dataclass(frozen=True)
class Scores:
    """One run's accuracies; None where the metric does not apply.

    Attributes:
        label: A masker name, ``RANDOM_INIT`` or ``RAW``.
        seed: Seed of the run.
        probe: Last-epoch linear-probe test accuracy.
        knn: kNN test accuracy (pretrained encoders only).
        loso_linear: Mean leave-one-subject-out linear accuracy on the training subjects.
        loso_knn: The same with kNN.
    """

    label: str
    seed: int
    probe: float
    knn: float | None = None
    loso_linear: float | None = None
    loso_knn: float | None = None


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """This tool's options, and the rest (for ``train_hacm.py``), checked before any run."""
    # No abbreviations: "--seed 3" is train_hacm.py's option, refused below, not "--seeds 3".
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--maskers",
        default=",".join(MASKERS),
        help=f"comma-separated, from {', '.join(MASKERS)} (default: all)",
    )
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--preset", choices=("mamp", "mae"), default="mamp")
    parser.add_argument("--output", type=Path, default=Path("runs/compare-maskers"))
    parser.add_argument("--tiny", action="store_true", help="a seconds-long configuration")
    args, passed = parser.parse_known_args(argv)
    args.maskers = _names(parser, "--maskers", args.maskers)
    unknown = [name for name in args.maskers if name not in MASKERS]
    if unknown:
        parser.error(f"--maskers: unknown masker(s) {unknown}; choose from {list(MASKERS)}")
    try:
        args.seeds = [int(seed) for seed in _names(parser, "--seeds", args.seeds)]
    except ValueError:
        parser.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    if any(seed < 0 for seed in args.seeds):
        parser.error(f"--seeds: seeds must be >= 0, got {args.seeds}")
    reserved = [arg.split("=")[0] for arg in passed if arg.split("=")[0] in RESERVED]
    if reserved:
        parser.error(f"{reserved[0]} is set by compare_maskers.py for each run; leave it out")
    if args.output.exists() and not args.output.is_dir():
        parser.error(f"--output {args.output} exists and is not a folder")
    passed = [*(TINY if args.tiny else []), *passed]
    # Any bad option for train_hacm.py is reported now, not after the first runs.
    args.options = train_hacm.parse_args([*passed, "--preset", args.preset])
    _check_same_options(parser, args.output / OPTIONS_FILE, args.preset, passed)
    return args, passed


def _names(parser: argparse.ArgumentParser, option: str, text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        parser.error(f"{option}: expected at least one value, got {text!r}")
    if len(set(names)) != len(names):
        parser.error(f"{option}: repeated value in {text!r}")
    return names


def _check_same_options(
    parser: argparse.ArgumentParser, stored: Path, preset: str, passed: list[str]
) -> None:
    """Refuses to mix runs made with other options into an earlier comparison's folder."""
    if not stored.is_file():
        return
    earlier = json.loads(stored.read_text())
    if earlier.get("preset") != preset or earlier.get("train_options") != passed:
        parser.error(
            f"--output {stored.parent} holds a comparison made with other options "
            f"(--preset {earlier.get('preset')} {' '.join(earlier.get('train_options', []))}); "
            "choose another --output, or repeat those options to add maskers or seeds"
        )


class SubjectValidation:
    """Leave-one-subject-out scores of frozen features on MSR Action3D's training subjects.

    Args:
        data_root: The MSR Action3D folder; only its training split is read.
        window: Frames per clip, as in pretraining.
    """

    def __init__(self, data_root: Path, window: int) -> None:
        train, _, _ = load_msr_action3d(data_root)
        self.arrays = train
        self.subjects = subjects_of(train)
        self.dataset = SkeletonDataset(train, window=window, train=False)

    def score(self, encoder: torch.nn.Module | None) -> tuple[float, float]:
        """Mean linear and kNN accuracy over the folds; ``encoder=None`` scores raw coordinates."""
        if encoder is None:
            features = torch.stack([self.dataset[i][0] for i in range(len(self.dataset))])
            features, labels = features.flatten(1), torch.as_tensor(self.arrays.labels)
        else:
            features, labels = extract_features(
                encoder, self.dataset, batch_size=64, context=DistributedContext()
            )
        linear, knn = leave_one_subject_out(
            features, labels, self.subjects, self.arrays.num_classes
        )
        return float(linear), float(knn)

    def score_run(self, argv: list[str], checkpoint: Path | None, seed: int) -> tuple[float, float]:
        """``score`` of a run's encoder: its checkpoint's weights, or random initialisation."""
        seed_everything(seed)
        options = train_hacm.parse_args(argv)
        mae = train_hacm.build_mae(options, self.arrays.layout, int(self.arrays.data.shape[1]))
        if checkpoint is not None:
            state = torch.load(checkpoint, weights_only=True, map_location="cpu")
            mae.load_state_dict(state["model"])
        return self.score(mae.encoder)


def run_once(folder: Path, argv: list[str]) -> tuple[dict[str, Any], bool]:
    """A finished run's summary, or the summary of running it now (with ``True``)."""
    finished = folder / "summary.json"
    if finished.is_file():
        summary: dict[str, Any] = json.loads(finished.read_text())
        return summary, False
    folder.mkdir(parents=True, exist_ok=True)
    for stale in VALIDATION_FILES:  # scores of an unfinished run's checkpoint
        (folder / stale).unlink(missing_ok=True)
    # The run's own summary table goes to its log; the terminal gets one line per run.
    with (folder / "log.txt").open("w") as log, contextlib.redirect_stdout(log):
        # --overwrite: an unfinished run of an earlier invocation starts again.
        summary = train_hacm.main([*argv, "--output-dir", str(folder), "--overwrite"])
    return dict(summary), True


def cached_validation(
    stored: Path, compute: Callable[[], tuple[float, float]]
) -> tuple[float, float]:
    """Leave-one-subject-out scores, computed once and kept in ``stored`` (a run's folder)."""
    if stored.is_file():
        linear, knn = json.loads(stored.read_text())
        return float(linear), float(knn)
    scores = compute()
    stored.write_text(json.dumps(list(scores)) + "\n")
    return scores


def compare(args: argparse.Namespace, passed: list[str]) -> list[Scores]:
    """Runs (or reads) every masker and seed, then the baselines of each seed."""
    runs = args.output / "runs"
    validation = None
    if args.options.data == "msr-action3d":
        validation = SubjectValidation(args.options.data_root, args.options.window)
    jobs = [(masker, seed) for seed in args.seeds for masker in args.maskers]
    total = len(jobs) + len(args.seeds)
    scores: list[Scores] = []
    for index, (masker, seed) in enumerate(jobs, start=1):
        started = time.perf_counter()
        argv = [*passed, "--preset", args.preset, "--masker", masker, "--seed", str(seed)]
        folder = runs / f"{masker}-seed{seed}"
        summary, ran = run_once(folder, [*argv, "--stages", "pretrain,probe,knn"])
        loso: tuple[float | None, float | None] = (None, None)
        if validation is not None:
            checkpoint = folder / "checkpoint-last.pt"
            loso = cached_validation(
                folder / VALIDATION_FILES[0],
                functools.partial(validation.score_run, argv, checkpoint, seed),
            )
        scores.append(
            Scores(masker, seed, summary["probe_last_accuracy"], summary["knn_accuracy"], *loso)
        )
        _progress(index, total, f"{masker} seed {seed}", ran, started)
    for index, seed in enumerate(args.seeds, start=len(jobs) + 1):
        started = time.perf_counter()
        argv = [*passed, "--preset", args.preset, "--seed", str(seed)]
        folder = runs / f"baselines-seed{seed}"
        summary, ran = run_once(folder, [*argv, "--stages", "baseline,raw"])
        random_loso: tuple[float | None, float | None] = (None, None)
        raw_loso: tuple[float | None, float | None] = (None, None)
        if validation is not None:
            random_loso = cached_validation(
                folder / VALIDATION_FILES[0],
                functools.partial(validation.score_run, argv, None, seed),
            )
            raw_loso = cached_validation(
                folder / VALIDATION_FILES[1], lambda: validation.score(None)
            )
        scores.append(
            Scores(RANDOM_INIT, seed, summary["baseline_probe_last_accuracy"], None, *random_loso)
        )
        scores.append(Scores(RAW, seed, summary["raw_probe_last_accuracy"], None, *raw_loso))
        _progress(index, total, f"baselines seed {seed}", ran, started)
    return scores


def _progress(index: int, total: int, what: str, ran: bool, started: float) -> None:
    done = "ran" if ran else "reused"
    print(f"[{index}/{total}] {what}: {done}, {time.perf_counter() - started:.1f} s", flush=True)


def aggregate(scores: Sequence[Scores]) -> dict[str, dict[str, dict[str, Any]]]:
    """Mean, sample standard deviation (None for one seed) and seeds per label and metric."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for label in dict.fromkeys(entry.label for entry in scores):
        entries = [entry for entry in scores if entry.label == label]
        table[label] = {}
        for key, _ in METRICS:
            values = [getattr(entry, key) for entry in entries]
            if any(value is None for value in values):
                continue
            table[label][key] = {
                "mean": statistics.mean(values),
                "sd": statistics.stdev(values) if len(values) > 1 else None,
                "n": len(values),
            }
    return table


def markdown(table: dict[str, dict[str, dict[str, Any]]], preset: str, seeds: list[int]) -> str:
    """The comparison as a markdown table: mean ± sd over seeds, baselines last."""
    shown = [
        (key, heading) for key, heading in METRICS if any(key in row for row in table.values())
    ]
    lines = [
        (
            f"Preset `{preset}` for every masker; seeds {', '.join(map(str, seeds))}; "
            "mean ± sample standard deviation over seeds (last-epoch accuracies)."
        ),
        "",
        "| masker | " + " | ".join(heading for _, heading in shown) + " |",
        "|---|" + "---|" * len(shown),
    ]
    for label, row in table.items():
        name = f"`{label}`" if label in MASKERS else f"*{label}* (baseline)"
        if label == "random":
            name += " (reference)"
        cells = [_cell(row.get(key)) for key, _ in shown]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(stats: dict[str, Any] | None) -> str:
    if stats is None:
        return "—"
    sd = "" if stats["sd"] is None else f" ± {stats['sd']:.3f}"
    return f"{stats['mean']:.3f}{sd}"


def chart(table: dict[str, dict[str, dict[str, Any]]], path: Path) -> None:
    """Mean ± sd bars per masker, one panel per metric; random masking and both baselines marked.

    Raises:
        ImportError: Without matplotlib, naming the extra that installs it.
    """
    try:
        import matplotlib  # noqa: PLC0415  (optional: the viz extra)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError as error:
        raise ImportError(
            "the comparison chart needs matplotlib: pip install skelmask[viz]"
        ) from error
    maskers = [label for label in table if label in MASKERS]
    panels = [key for key, _ in METRICS if any(key in table[label] for label in maskers)]
    headings = dict(METRICS)
    figure, axes = plt.subplots(
        len(panels), 1, figsize=(max(6.0, 0.8 * len(maskers) + 2), 3.2 * len(panels)), squeeze=False
    )
    for axis, key in zip(axes[:, 0], panels, strict=True):
        means = [table[label][key]["mean"] for label in maskers]
        errors = [table[label][key]["sd"] or 0.0 for label in maskers]
        colours = ["tab:orange" if label == "random" else "tab:blue" for label in maskers]
        axis.bar(range(len(maskers)), means, yerr=errors, color=colours, capsize=4)
        for label, style in ((RAW, "--"), (RANDOM_INIT, ":")):
            if key in table.get(label, {}):
                axis.axhline(table[label][key]["mean"], color="black", linestyle=style, label=label)
        axis.set_xticks(range(len(maskers)), maskers, rotation=30, ha="right")
        axis.set_ylabel("accuracy")
        axis.set_title(f"{headings[key]} (orange: random masking)")
        if axis.get_legend_handles_labels()[0]:
            axis.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the comparison and writes ``comparison.{md,json,png}``; returns the JSON's content."""
    args, passed = parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    options = {"preset": args.preset, "train_options": passed}
    (args.output / OPTIONS_FILE).write_text(json.dumps(options, indent=2) + "\n")
    scores = compare(args, passed)
    table = aggregate(scores)
    results = {
        **options,
        "maskers": args.maskers,
        "seeds": args.seeds,
        "summary": table,
        "runs": [asdict(entry) for entry in scores],
    }
    (args.output / "comparison.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(table, args.preset, args.seeds)
    (args.output / "comparison.md").write_text(text)
    chart(table, args.output / "comparison.png")
    print(text)
    print(f"written: {args.output / 'comparison.md'}, comparison.json, comparison.png")
    return results


if __name__ == "__main__":
    main()
