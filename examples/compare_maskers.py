r"""Compare maskers: the same encoder, target, loss and budget, pretrained once per masker and seed.

Every run is ``examples/train_hacm.py`` with one preset (``--preset``, default ``mamp``: the
Euclidean transformer, motion target, reconstruction loss only) and one ``--masker``; nothing
else changes between runs, and every masker gets the same ratio (``--mask-ratio``, default 0.9,
passed to every run: a masker's own default in ``create_masker`` is not used). Most maskers then
hide exactly ``round(ratio · Tp·V)`` tokens; ``joint-tube`` and ``frame`` hide whole joints or
time patches, so theirs is the ratio rounded to whole units: at 0.9, 7 of the 8 time patches of
``--window 32 --t-patch 4`` (87.5 %), 3 of ``--tiny``'s 4 (75 %), 23 of NTU's 25 joints (92 %),
18 of MSR Action3D's 20 (90 %). ``tube`` is SLiM's semantic tubes (runs of one body part's
joints over runs of time), not ``joint-tube``. ``--targets`` repeats every masker on other
reconstruction targets (``coords``, ``motion``, ``acceleration``) for a target ablation at a
fixed masker. Each run is probed on the test split (linear probe and kNN, the last epoch's
accuracy); with ``--data msr-action3d`` its frozen features are also scored by
leave-one-subject-out validation on the training subjects
(``docs/scripts/msr_action3d_validation.py``), which is what choices should be made on. Once per
seed, the same probe is trained on the encoder at random initialisation and on the raw
coordinates::

    python examples/compare_maskers.py --tiny                      # seconds, built-in data
    python examples/compare_maskers.py --maskers random,motion,tube --seeds 0,1,2 --jobs 2 \
        --output runs/maskers --data msr-action3d --data-root ../shared/data/msr-action3d

Every option this tool does not define goes to ``train_hacm.py`` unchanged (data source, window,
widths, epochs, device, ...); ``--output-dir``, ``--seed``, ``--stages``, ``--masker``,
``--target``, ``--overwrite`` and ``--resume`` are set per run and refused here. Each run is a
``train_hacm.py`` process (its output in the run folder's ``log.txt``), ``--jobs`` of them at
once. Runs go to ``<output>/runs/<masker>-seed<N>`` (``<masker>-<target>-seed<N>`` for a target
other than the preset's; baselines: ``baselines-seed<N>``); a run folder holding
``summary.json`` is read, not run again, so an interrupted comparison continues where it stopped
and maskers, targets or seeds can be added later with the same options (``<output>/options.json``
records them; other options are refused). An unfinished run is started again. The results are
``<output>/comparison.md``, ``comparison.json`` and ``comparison.png`` (mean ± sd over seeds;
the chart needs matplotlib: ``pip install skelmask[viz]``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, get_args

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import train_hacm
from msr_action3d_validation import leave_one_subject_out, subjects_of

from skelmask.data import SkeletonDataset, load_msr_action3d
from skelmask.models import PRESET_TARGETS, MaskerName, Target
from skelmask.training import DistributedContext, extract_features, seed_everything

MASKERS: tuple[str, ...] = get_args(MaskerName)
"""Every masker ``create_mae`` builds by name; all of them work with the ``mae`` and ``mamp``
presets."""
TARGETS: tuple[str, ...] = get_args(Target)
TRAIN_SCRIPT = Path(__file__).resolve().parent / "train_hacm.py"

# train_hacm.py options that this tool sets for each run.
RESERVED = (
    "--output-dir", "--seed", "--stages", "--masker", "--target", "--overwrite", "--resume",
    "--preset",
)  # fmt: skip

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
REFERENCE_COLOUR = "tab:orange"
"""Chart colour of ``random``, the reference every masker is compared with."""
WHOLE_UNIT_COLOUR = "#fdbf6f"
"""Chart colour of random masking of whole units (``joint-tube``, ``frame``): a lighter orange."""
RANDOM_INIT = "random initialisation"
RAW = "raw coordinates"


@dataclass(frozen=True)
class Scores:
    """One run's accuracies; None where the metric does not apply.

    Attributes:
        label: A masker name, ``RANDOM_INIT`` or ``RAW``.
        seed: Seed of the run.
        target: The reconstruction target the encoder was pretrained on (None for baselines).
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
    target: str | None = field(default=None, kw_only=True)


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
        help=f"comma-separated, from {', '.join(MASKERS)} (default: all; joint-tube and frame "
        "hide random whole joints or time patches, tube is SLiM's semantic tubes)",
    )
    parser.add_argument(
        "--targets",
        help=f"comma-separated reconstruction targets, from {', '.join(TARGETS)}; every masker "
        "is pretrained on each (default: the preset's, mamp: motion, mae: coords)",
    )
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--preset", choices=("mamp", "mae"), default="mamp")
    parser.add_argument("--output", type=Path, default=Path("runs/compare-maskers"))
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs trained at once, each in its own process with cores/jobs threads (default 1)",
    )
    parser.add_argument("--tiny", action="store_true", help="a seconds-long configuration")
    args, passed = parser.parse_known_args(argv)
    args.maskers = _names(parser, "--maskers", args.maskers)
    unknown = [name for name in args.maskers if name not in MASKERS]
    if unknown:
        parser.error(f"--maskers: unknown masker(s) {unknown}; choose from {list(MASKERS)}")
    args.targets = _names(parser, "--targets", args.targets or PRESET_TARGETS[args.preset])
    unknown = [name for name in args.targets if name not in TARGETS]
    if unknown:
        parser.error(f"--targets: unknown target(s) {unknown}; choose from {list(TARGETS)}")
    if args.jobs < 1:
        parser.error(f"--jobs: expected an integer >= 1, got {args.jobs}")
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
        normalize_view: Whether the clips are view-normalised, as in pretraining.
        velocity: Whether the clips are frame differences (``--velocity-input``), as in
            pretraining; the raw-coordinate scores then read them too.
    """

    def __init__(
        self, data_root: Path, window: int, normalize_view: bool = False, velocity: bool = False
    ) -> None:
        train, _, _ = load_msr_action3d(data_root)
        self.arrays = train
        self.subjects = subjects_of(train)
        self.dataset = SkeletonDataset(
            train, window=window, train=False, normalize_view=normalize_view, velocity=velocity
        )

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


@dataclass(frozen=True)
class Run:
    """One ``train_hacm.py`` run of the comparison.

    Attributes:
        folder: Its output folder; it is finished when it holds ``summary.json``.
        argv: Its ``train_hacm.py`` options, without ``--output-dir`` and ``--overwrite``.
        what: How the progress lines name it.
    """

    folder: Path
    argv: list[str]
    what: str


def run_folder(runs: Path, preset: str, masker: str, target: str, seed: int) -> Path:
    """``<masker>-seed<N>`` for the preset's own target, ``<masker>-<target>-seed<N>`` else."""
    name = masker if target == PRESET_TARGETS[preset] else f"{masker}-{target}"
    return runs / f"{name}-seed{seed}"


def train_all(pending: Sequence[Run], jobs: int) -> None:
    """Runs every unfinished run, ``jobs`` at a time, and prints one line as each ends.

    Each run is a ``train_hacm.py`` process writing its output to ``<folder>/log.txt``; with
    ``jobs > 1`` each process gets ``cores // jobs`` threads (unless ``OMP_NUM_THREADS`` is set).

    Raises:
        RuntimeError: If a run fails, naming it and its log; runs not yet started are dropped,
            runs already going are waited for.
    """
    total = len(pending)
    environment = dict(os.environ)
    if jobs > 1:
        environment.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_train, run, environment): run for run in pending}
        for index, future in enumerate(as_completed(futures), start=1):
            run = futures[future]
            try:
                seconds = future.result()
            except RuntimeError:
                pool.shutdown(cancel_futures=True)
                raise
            print(f"[{index}/{total}] {run.what}: ran, {seconds:.1f} s", flush=True)


def _train(run: Run, environment: dict[str, str]) -> float:
    """One run in its own process; returns its wall time in seconds."""
    run.folder.mkdir(parents=True, exist_ok=True)
    for stale in VALIDATION_FILES:  # scores of an unfinished run's checkpoint
        (run.folder / stale).unlink(missing_ok=True)
    # --overwrite: an unfinished run of an earlier invocation starts again.
    command = [sys.executable, str(TRAIN_SCRIPT), *run.argv]
    command += ["--output-dir", str(run.folder), "--overwrite"]
    started = time.perf_counter()
    log = run.folder / "log.txt"
    with log.open("w") as output:
        finished = subprocess.run(
            command, stdout=output, stderr=subprocess.STDOUT, env=environment, check=False
        )
    if finished.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(
            f"{run.what} failed with exit status {finished.returncode}; its log is {log}:\n{tail}"
        )
    return time.perf_counter() - started


def read_summary(run: Run) -> dict[str, Any]:
    """The ``summary.json`` of a finished run."""
    summary: dict[str, Any] = json.loads((run.folder / "summary.json").read_text())
    return summary


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
    """Runs what is unfinished, then scores every run.

    The runs are every masker on every target and seed, then the baselines of each seed.
    """
    runs = args.output / "runs"
    pretrained = [
        (
            masker,
            target,
            seed,
            Run(
                run_folder(runs, args.preset, masker, target, seed),
                [*passed, "--preset", args.preset, "--masker", masker, "--target", target,
                 "--seed", str(seed), "--stages", "pretrain,probe,knn"],
                f"{masker}" + ("" if len(args.targets) == 1 else f", {target} target")
                + f" seed {seed}",
            ),
        )
        for seed in args.seeds
        for target in args.targets
        for masker in args.maskers
    ]  # fmt: skip
    baselines = [
        (
            seed,
            Run(
                runs / f"baselines-seed{seed}",
                [*passed, "--preset", args.preset, "--seed", str(seed), "--stages", "baseline,raw"],
                f"baselines seed {seed}",
            ),
        )
        for seed in args.seeds
    ]
    every_run = [run for *_, run in pretrained] + [run for _, run in baselines]
    pending = [run for run in every_run if not (run.folder / "summary.json").is_file()]
    for run in every_run:
        if run not in pending:
            print(f"{run.what}: reused", flush=True)
    train_all(pending, args.jobs)

    validation = None
    if args.options.data == "msr-action3d":
        validation = SubjectValidation(
            args.options.data_root, args.options.window, **common.dataset_options(args.options)
        )
    scores: list[Scores] = []
    for masker, target, seed, run in pretrained:
        summary = read_summary(run)
        loso: tuple[float | None, float | None] = (None, None)
        if validation is not None:
            loso = cached_validation(
                run.folder / VALIDATION_FILES[0],
                functools.partial(
                    validation.score_run, run.argv, run.folder / "checkpoint-last.pt", seed
                ),
            )
        probe, knn = summary["probe_last_accuracy"], summary["knn_accuracy"]
        scores.append(Scores(masker, seed, probe, knn, *loso, target=target))
    for seed, run in baselines:
        summary = read_summary(run)
        random_loso: tuple[float | None, float | None] = (None, None)
        raw_loso: tuple[float | None, float | None] = (None, None)
        if validation is not None:
            random_loso = cached_validation(
                run.folder / VALIDATION_FILES[0],
                functools.partial(validation.score_run, run.argv, None, seed),
            )
            raw_loso = cached_validation(
                run.folder / VALIDATION_FILES[1], lambda: validation.score(None)
            )
        scores.append(
            Scores(RANDOM_INIT, seed, summary["baseline_probe_last_accuracy"], None, *random_loso)
        )
        scores.append(Scores(RAW, seed, summary["raw_probe_last_accuracy"], None, *raw_loso))
    return scores


def row_name(entry: Scores, several_targets: bool) -> str:
    """A row of the table: the masker, ``"<masker> / <target>"`` when targets differ.

    Baselines keep their label.
    """
    if entry.target is None or not several_targets:
        return entry.label
    return f"{entry.label} / {entry.target}"


def aggregate(scores: Sequence[Scores]) -> dict[str, dict[str, dict[str, Any]]]:
    """Mean, sample standard deviation (None for one seed) and seeds per row and metric."""
    several_targets = len({entry.target for entry in scores if entry.target is not None}) > 1
    names = [row_name(entry, several_targets) for entry in scores]
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for name in dict.fromkeys(names):
        entries = [entry for entry, own in zip(scores, names, strict=True) if own == name]
        table[name] = {}
        for key, _ in METRICS:
            values = [getattr(entry, key) for entry in entries]
            if any(value is None for value in values):
                continue
            table[name][key] = {
                "mean": statistics.mean(values),
                "sd": statistics.stdev(values) if len(values) > 1 else None,
                "n": len(values),
            }
    return table


def _masker_of(name: str) -> str:
    return name.partition(" / ")[0]


def markdown(
    table: dict[str, dict[str, dict[str, Any]]],
    preset: str,
    targets: list[str],
    seeds: list[int],
    velocity: bool = False,
) -> str:
    """The comparison as a markdown table: mean ± sd over seeds, baselines last.

    With ``velocity`` (``--velocity-input``) a line under the table says that the raw baseline
    read frame differences, as the encoders did.
    """
    shown = [
        (key, heading) for key, heading in METRICS if any(key in row for row in table.values())
    ]
    lines = [
        (
            f"Preset `{preset}` for every masker, reconstruction target "
            f"{', '.join(f'`{target}`' for target in targets)}; seeds {', '.join(map(str, seeds))}; "
            "mean ± sample standard deviation over seeds (last-epoch accuracies)."
        ),
        "",
        "| masker | " + " | ".join(heading for _, heading in shown) + " |",
        "|---|" + "---|" * len(shown),
    ]
    for label, row in table.items():
        masker, _, target = label.partition(" / ")
        if masker not in MASKERS:
            name = f"*{label}* (baseline)"
        else:
            name = f"`{masker}`" + (f", `{target}` target" if target else "")
            name += " (reference)" if masker == "random" else ""
        cells = [mean_sd(row.get(key)) for key, _ in shown]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if velocity and RAW in table:
        lines += ["", f"*{RAW}*: the frame differences the encoders read (`--velocity-input`)."]
    return "\n".join(lines) + "\n"


def mean_sd(stats: dict[str, Any] | None) -> str:
    """A table cell: ``"mean ± sd"`` of one metric (the mean alone for one seed, "—" for none)."""
    if stats is None:
        return "—"
    sd = "" if stats["sd"] is None else f" ± {stats['sd']:.3f}"
    return f"{stats['mean']:.3f}{sd}"


def chart(table: dict[str, dict[str, dict[str, Any]]], path: Path) -> None:
    """Mean ± sd bars per masker, one panel per metric; random masking and both baselines marked.

    ``random`` is orange; ``joint-tube`` and ``frame``, random masking of whole joints or time
    patches, are a lighter orange; the baselines are lines.

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
    maskers = [label for label in table if _masker_of(label) in MASKERS]
    panels = [key for key, _ in METRICS if any(key in table[label] for label in maskers)]
    headings = dict(METRICS)
    figure, axes = plt.subplots(
        len(panels), 1, figsize=(max(6.0, 0.8 * len(maskers) + 2), 3.2 * len(panels)), squeeze=False
    )
    colours = [_colour(_masker_of(label)) for label in maskers]
    legend = "orange: random masking"
    if WHOLE_UNIT_COLOUR in colours:
        legend += "; light orange: whole joints or time patches"
    for axis, key in zip(axes[:, 0], panels, strict=True):
        means = [table[label][key]["mean"] for label in maskers]
        errors = [table[label][key]["sd"] or 0.0 for label in maskers]
        axis.bar(range(len(maskers)), means, yerr=errors, color=colours, capsize=4)
        for label, style in ((RAW, "--"), (RANDOM_INIT, ":")):
            if key in table.get(label, {}):
                axis.axhline(table[label][key]["mean"], color="black", linestyle=style, label=label)
        axis.set_xticks(range(len(maskers)), maskers, rotation=30, ha="right")
        axis.set_ylabel("accuracy")
        axis.set_title(headings[key])
        if axis.get_legend_handles_labels()[0]:
            axis.legend(loc="lower right", fontsize="small")
    # Once for the figure: repeated in every panel's title, it pushed the longer ones off the page.
    figure.suptitle(legend)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _colour(masker: str) -> str:
    """A masker's bar colour: the random maskers in orange, the others in blue."""
    if masker == "random":
        return REFERENCE_COLOUR
    if masker in ("joint-tube", "frame"):
        return WHOLE_UNIT_COLOUR
    return "tab:blue"


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
        "targets": args.targets,
        "seeds": args.seeds,
        "summary": table,
        "runs": [asdict(entry) for entry in scores],
    }
    (args.output / "comparison.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(table, args.preset, args.targets, args.seeds, args.options.velocity_input)
    (args.output / "comparison.md").write_text(text)
    chart(table, args.output / "comparison.png")
    print(text)
    print(f"written: {args.output / 'comparison.md'}, comparison.json, comparison.png")
    return results


if __name__ == "__main__":
    main()
