"""What the training examples share: options, data, pretraining, evaluation and the summary.

``train_hacm.py``, ``train_skelemixclr.py`` and ``train_skeletonmae.py`` each define their model
and their defaults; everything else goes through this module, so that the three methods read the
same data, train with the same engine and are evaluated by the same probe.

Every option is checked before any work starts: numbers by their argparse types, the stages,
the data source and the output folder by ``parse``, the ``--resume`` checkpoint (readable,
undamaged, written for the same model options) by ``parse`` too, and what depends on the data
(batch sizes against the number of samples, classes, the window) by ``start``. An output folder
that holds a run is never written into without ``--overwrite`` (or ``--resume`` of its own
checkpoint), and without ``--output-dir`` every run gets a new folder named after its method.

``--recipe`` (see ``recipe.py``) turns a recipe file's options into the parser's defaults before
the command line is read, so explicit options win; every run saves its resolved options, and the
recipe's name and source, to ``config.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from recipe import Recipe, RecipeError, list_recipes, load_recipe, resolve
from torch import nn

from skelmask.data import (
    SkeletonArrays,
    SkeletonDataset,
    load_msr_action3d,
    load_prepared,
    synthetic_splits,
)
from skelmask.layouts import list_layouts
from skelmask.training import (
    CHECKPOINT_NAME,
    CheckpointError,
    DistributedContext,
    MetricLogger,
    PretrainConfig,
    ProbeConfig,
    RawCoordinates,
    cleanup_distributed,
    extract_features,
    knn_accuracy,
    labelled_subset,
    linear_probe,
    load_checkpoint,
    load_weights,
    model_config_differences,
    pretrain,
    seed_everything,
    setup_distributed,
)

DATA_SOURCES = ("synthetic", "msr-action3d", "prepared")

RUN_FILES = (CHECKPOINT_NAME, "metrics.jsonl", "summary.json", "config.json", "tensorboard")
"""What a run writes into its folder: a folder holding one of them is taken by a run."""

RUNS_ROOT = Path("runs")
"""Parent of the folders made for runs without ``--output-dir``."""

INPUT_OPTIONS = ("velocity_input", "normalize_view")
"""Shared options that change what the encoder is fed (velocity instead of coordinates, clips in
the body's frame instead of the camera's): stored with every example's model options, since an
encoder evaluated on other input than it was pretrained on measures nothing."""

# Stages that evaluate the pretrained encoder, so they need pretraining or a checkpoint.
_TRAINED_STAGES = ("probe", "knn", "finetune")

_M = TypeVar("_M", bound=nn.Module)


@dataclass(frozen=True)
class Defaults:
    """An example's defaults: each gives a few-minute CPU run on the built-in data.

    ``method`` names the run (its default folder is ``runs/<method>-<date>-<time>``) and is
    stored with the model options in checkpoints; ``train_hacm.py`` replaces it by ``--preset``.
    """

    method: str
    window: int = 32
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    min_lr: float = 5e-4
    weight_decay: float = 0.05
    warmup_epochs: int = 2
    probe_epochs: int = 30
    probe_batch_size: int = 128


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer ``>= minimum``."""

    def parse_int(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return value

    return parse_int


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive(text: str) -> float:
    """An argparse type: a finite number ``> 0``."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def non_negative(text: str) -> float:
    """An argparse type: a finite number ``>= 0``."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def probability(text: str) -> float:
    """An argparse type: a number in ``[0, 1)``."""
    value = _finite(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def fraction(text: str) -> float:
    """An argparse type: a number in ``(0, 1]``."""
    value = _finite(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


class RecipeParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that reads ``--recipe`` first and takes its options as defaults.

    Every parse (examples may parse twice) applies the recipe before the command line, so that
    explicit options override it. The parsed namespace gains ``recipe_info``: the recipe's
    name, file and source, or ``None``.
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """``ArgumentParser.parse_known_args`` with the recipe's options as defaults."""
        given = _recipe_argument(args)
        recipe: Recipe | None = None
        if given == "list":
            print("\n".join(list_recipes()))
            self.exit(0)
        if given is not None:
            try:
                recipe = load_recipe(given)
                self.set_defaults(**resolve(self, recipe))
            except RecipeError as error:
                self.error(f"--recipe: {error}")
        parsed, extra = super().parse_known_args(args, namespace)
        if parsed.recipe != given:  # an abbreviated --recipe the pre-parse did not see
            self.error("--recipe: write the option in full (--recipe NAME)")
        parsed.recipe_info = None
        if recipe is not None:
            parsed.recipe_info = {
                "name": recipe.name,
                "file": str(recipe.path),
                "source": recipe.source,
            }
        return parsed, extra


def _recipe_argument(args: Sequence[str] | None) -> str | None:
    """The value of ``--recipe`` in ``args`` (``sys.argv`` when ``None``), read alone."""
    alone = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    alone.add_argument("--recipe")
    known, _ = alone.parse_known_args(args)
    value: str | None = known.recipe
    return value


def build_parser(
    description: str, stages: Sequence[str], defaults: Defaults
) -> argparse.ArgumentParser:
    """The options every example has; the example adds its model options to the result."""
    parser = RecipeParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.set_defaults(method=defaults.method)
    parser.add_argument(
        "--recipe",
        metavar="NAME_OR_FILE",
        help="options of a published protocol, from a JSON file (see examples/recipes/); "
        "options given here override it; 'list' prints the shipped recipes: "
        + ", ".join(list_recipes()),
    )
    parser.add_argument(
        "--stages",
        default="pretrain,probe,knn,baseline,raw",
        help=f"comma-separated subset of {', '.join(stages)}; 'baseline' probes the same "
        "encoder at random initialisation, 'raw' the raw coordinates (the two numbers the "
        "pretrained probe must beat)",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data", choices=DATA_SOURCES, default="synthetic")
    data.add_argument("--data-root", type=Path, help="dataset folder (msr-action3d)")
    data.add_argument(
        "--train-file", type=Path, help="training split written by `skelmask prepare` (prepared)"
    )
    data.add_argument("--test-file", type=Path, help="test split written by `skelmask prepare`")
    data.add_argument(
        "--layout", choices=list_layouts(), default="nturgb+d", help="layout of the synthetic data"
    )
    data.add_argument(
        "--train-samples", type=at_least(1), default=600, help="synthetic training clips"
    )
    data.add_argument("--test-samples", type=at_least(1), default=200, help="synthetic test clips")
    data.add_argument(
        "--normalize-view",
        action="store_true",
        help="put every clip into its first body's frame (centred, spine up, shoulders along "
        "x) before sampling the window; 3D data only",
    )
    data.add_argument(
        "--velocity-input",
        action="store_true",
        help="feed every clip's frame differences (x[t+1] - x[t], the last frame 0) instead of "
        "its coordinates, taken on the sampled window after augmentation, in every stage: "
        "pretraining, probe, kNN, fine-tuning, baseline and the raw-coordinates probe (HA-CM "
        "on NTU-120 and PKU-MMD II); the reconstruction targets are then differences of the "
        "input, so the 'motion' target is the coordinates' acceleration",
    )
    data.add_argument(
        "--window",
        type=at_least(1),
        default=defaults.window,
        help="frames per clip fed to the model",
    )
    train = parser.add_argument_group("training")
    train.add_argument(
        "--epochs", type=at_least(1), default=defaults.epochs, help="pretraining epochs"
    )
    train.add_argument(
        "--batch-size", type=at_least(1), default=defaults.batch_size, help="per process"
    )
    train.add_argument("--lr", type=positive, default=defaults.lr)
    train.add_argument("--min-lr", type=non_negative, default=defaults.min_lr)
    train.add_argument("--weight-decay", type=non_negative, default=defaults.weight_decay)
    train.add_argument("--warmup-epochs", type=at_least(0), default=defaults.warmup_epochs)
    train.add_argument("--probe-epochs", type=at_least(1), default=defaults.probe_epochs)
    train.add_argument("--probe-lr", type=positive, default=0.1)
    train.add_argument(
        "--probe-batch-size",
        type=at_least(2),
        default=defaults.probe_batch_size,
        help="per process; at least 2 (the probe head's BatchNorm needs two samples)",
    )
    train.add_argument("--grad-clip", type=positive)
    train.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    train.add_argument("--compile", action="store_true", help="torch.compile the model")
    train.add_argument("--workers", type=at_least(0), default=0, help="DataLoader workers")
    train.add_argument("--seed", type=at_least(0), default=0)
    run = parser.add_argument_group("run")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    run.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write losses, learning rates and accuracies as TensorBoard scalars to "
        "<output-dir>/tensorboard (needs pip install skelmask[train])",
    )
    run.add_argument(
        "--output-dir",
        type=Path,
        help="folder of this run (default: a new runs/<method>-<date>-<time>, or the "
        "--resume checkpoint's folder when pretraining resumes); a folder holding a run is "
        "refused unless --overwrite",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace the run in --output-dir (its {', '.join(RUN_FILES)}; nothing else)",
    )
    run.add_argument(
        "--resume",
        type=Path,
        help="checkpoint to continue pretraining from; without the pretrain stage, the "
        "checkpoint whose encoder the other stages evaluate",
    )
    return parser


def parse(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    stages: Sequence[str],
    model_options: Sequence[str],
    explicit: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> argparse.Namespace:
    """Parses ``argv`` and checks every option of ``build_parser`` before any work.

    ``stages`` becomes a list and ``model_config`` holds ``method``, the ``model_options``
    (argument names) and ``INPUT_OPTIONS``: what checkpoints store and ``--resume`` must match.
    ``explicit`` maps a model configuration to the same one with every option left to a default
    (None, or missing from an older checkpoint) replaced by the value it stands for, e.g. a
    preset's masker: runs store explicit values, and ``--resume`` compares explicit values, so
    that leaving an option out and giving its default value are the same model.
    """
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(stages))
    if unknown:
        parser.error(f"--stages: unknown stage(s) {unknown}; choose from {list(stages)}")
    if not chosen:
        parser.error(f"--stages: choose at least one of {list(stages)}")
    args.stages = chosen
    if args.data == "msr-action3d" and args.data_root is None:
        parser.error("--data msr-action3d needs --data-root (the folder holding index.csv)")
    if args.data == "prepared" and (args.train_file is None or args.test_file is None):
        parser.error("--data prepared needs --train-file and --test-file (from skelmask prepare)")
    for option, path in (("--train-file", args.train_file), ("--test-file", args.test_file)):
        if args.data == "prepared" and not path.is_file():
            parser.error(f"{option} {path}: no such file")
    if args.data == "msr-action3d" and not args.data_root.is_dir():
        parser.error(f"--data-root {args.data_root}: no such folder")
    args.model_config = {
        "method": args.method,
        **{name: _plain(getattr(args, name)) for name in (*model_options, *INPUT_OPTIONS)},
    }
    if explicit is not None:
        args.model_config = explicit(args.model_config)
    _check_resume(parser, args, explicit)
    _check_output_dir(parser, args)
    return args


def _plain(value: Any) -> Any:
    """Tuples as lists, so the value compares equal after a checkpoint round trip."""
    return list(value) if isinstance(value, tuple) else value


def _check_resume(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    explicit: Callable[[dict[str, Any]], dict[str, Any]] | None,
) -> None:
    trained = [stage for stage in args.stages if stage in _TRAINED_STAGES]
    if args.resume is None:
        if trained and "pretrain" not in args.stages:
            parser.error(
                f"--stages {','.join(args.stages)} evaluates the pretrained encoder but has no "
                "pretrain stage: add pretrain, or give --resume CHECKPOINT (the 'baseline' stage "
                "evaluates a random initialisation)"
            )
        return
    if "pretrain" not in args.stages and not trained:
        parser.error(
            f"--resume is used by the pretrain, probe, knn and finetune stages; --stages is "
            f"{','.join(args.stages)}"
        )
    if not args.resume.is_file():
        parser.error(f"--resume {args.resume}: no such file")
    try:
        # Reads the whole file (CRCs verified) and compares the stored model options.
        state = load_checkpoint(args.resume, required=("model", "epoch"))
    except CheckpointError as error:
        parser.error(f"--resume: {error}")
    saved = state.get("model_config")
    if saved is None:
        return
    compared = saved if explicit is None else explicit(saved)
    differences = [
        f"{_flag(key)} {compared.get(key)!r} (this run: {args.model_config.get(key)!r})"
        for key in model_config_differences(compared, args.model_config)
    ]
    if differences:
        parser.error(
            f"--resume {args.resume} was written with other model options: "
            + ", ".join(differences)
        )
    # The same model: take the checkpoint's spelling of the defaulted options, so that
    # ``load_weights``, which compares the stored configuration as it is, agrees too (and a
    # resumed run keeps storing what its first part stored).
    for key, value in compared.items():
        if key not in saved:
            args.model_config.pop(key, None)
        elif saved[key] != value:
            args.model_config[key] = saved[key]


def _flag(key: str) -> str:
    return "--preset" if key == "method" else "--" + key.replace("_", "-")


def _check_output_dir(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuses a folder holding a run, unless ``--overwrite`` or resuming its own checkpoint."""
    resuming = args.resume is not None and "pretrain" in args.stages
    if args.output_dir is None and resuming:
        args.output_dir = args.resume.parent
    if args.output_dir is None:
        return  # start() makes a new folder
    folder = args.output_dir
    if folder.exists() and not folder.is_dir():
        parser.error(f"--output-dir {folder} exists and is not a folder")
    taken = [name for name in RUN_FILES if (folder / name).exists()]
    if args.overwrite:
        if args.resume is not None and any(
            args.resume.resolve() == (folder / name).resolve() for name in taken
        ):
            parser.error(f"--overwrite would delete the --resume checkpoint {args.resume}")
        return
    continues = resuming and args.resume.resolve() == (folder / CHECKPOINT_NAME).resolve()
    if taken and not continues:
        parser.error(
            f"--output-dir {folder} already holds a run ({', '.join(taken)}): pass "
            "--overwrite to replace it, --resume its checkpoint-last.pt to continue it, or "
            "choose another folder"
        )


def load_data(args: argparse.Namespace) -> tuple[SkeletonArrays, SkeletonArrays, list[str]]:
    """Train and test arrays of the chosen source, and the problems found while reading."""
    if args.data == "msr-action3d":
        return load_msr_action3d(args.data_root)
    if args.data == "prepared":
        train, test = load_prepared(args.train_file), load_prepared(args.test_file)
        if (train.layout, train.num_classes) != (test.layout, test.num_classes):
            raise SystemExit(
                f"--train-file and --test-file disagree: layout/classes "
                f"{train.layout}/{train.num_classes} against {test.layout}/{test.num_classes}"
            )
        return train, test, []
    train, test = synthetic_splits(
        num_train=args.train_samples,
        num_test=args.test_samples,
        layout=args.layout,
        seed=args.seed,
    )
    return train, test, []


@dataclass
class Run:
    """One example run's data, logger and summary (the summary grows stage by stage)."""

    args: argparse.Namespace
    context: DistributedContext
    logger: MetricLogger
    train_arrays: SkeletonArrays
    train_set: SkeletonDataset
    train_eval_set: SkeletonDataset
    test_set: SkeletonDataset
    summary: dict[str, Any]

    @property
    def channels(self) -> int:
        """Input channels ``C`` of the data."""
        return int(self.train_arrays.data.shape[1])


def launch(
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace, DistributedContext], dict[str, Any]],
) -> dict[str, Any]:
    """Joins the process group (under ``torchrun``) or not, runs ``run`` and always leaves it."""
    context = setup_distributed(args.device)
    try:
        result = run(args, context)
        if torch.distributed.is_initialized():
            # Leave together: a rank that tears the group down while another is still writing
            # its summary has been seen to abort (SIGABRT) under load.
            torch.distributed.barrier()
        return result
    finally:
        cleanup_distributed()


def start(args: argparse.Namespace, context: DistributedContext) -> Run:
    """Prepares the output folder, seeds, opens the metrics log, loads and checks the data."""
    args.output_dir = _output_folder(args, context)
    seed_everything(args.seed, context.rank)
    if context.is_main:
        save_config(args)
    try:
        logger = MetricLogger(
            args.output_dir / "metrics.jsonl",
            enabled=context.is_main,
            tensorboard=args.output_dir / "tensorboard" if args.tensorboard else None,
        )
    except ImportError as error:
        raise SystemExit(f"error: --tensorboard: {error}") from None
    train_arrays, test_arrays, problems = load_data(args)
    for problem in problems:
        logger.log({"stage": "data", "problem": problem})
    # Augmentations draw from the global RNG, which checkpoints save and restore (exact resume).
    options = dataset_options(args)
    try:
        train_set = SkeletonDataset(train_arrays, window=args.window, train=True, **options)
    except ValueError as error:  # e.g. --normalize-view on 2D data
        raise SystemExit(f"error: {error}") from None
    summary: dict[str, Any] = {
        "method": args.method,
        "data": args.data,
        "layout": train_arrays.layout,
        "train_samples": len(train_set),
        "test_samples": len(test_arrays),
        "num_classes": train_arrays.num_classes,
        "seed": args.seed,
        "device": str(context.device),
        "world_size": context.world_size,
        "skipped_files": len(problems),
        "output_dir": str(args.output_dir),
    }
    if args.velocity_input:
        summary["velocity_input"] = True
    run = Run(
        args=args,
        context=context,
        logger=logger,
        train_arrays=train_arrays,
        train_set=train_set,
        train_eval_set=SkeletonDataset(train_arrays, window=args.window, train=False, **options),
        test_set=SkeletonDataset(test_arrays, window=args.window, train=False, **options),
        summary=summary,
    )
    _check_data(run, test_arrays)
    return run


class DatasetOptions(TypedDict):
    """``SkeletonDataset`` keyword arguments set by the data options."""

    normalize_view: bool
    velocity: bool


def dataset_options(args: argparse.Namespace) -> DatasetOptions:
    """The ``SkeletonDataset`` options of the data group, the same for every stage's clips.

    Every dataset of a run (pretraining, probe, kNN, fine-tuning, baseline, raw coordinates)
    is built with them, so that each stage sees the input the encoder was pretrained on.
    """
    return DatasetOptions(normalize_view=args.normalize_view, velocity=args.velocity_input)


CONFIG_IGNORED = ("model_config",)
"""Namespace entries ``config.json`` leaves out: ``model_config`` repeats options it holds."""


def save_config(args: argparse.Namespace) -> None:
    """Writes ``config.json``: every option after the recipe and the command line, the recipe."""
    options = {
        key: _plain(value)
        for key, value in sorted(vars(args).items())
        if key not in CONFIG_IGNORED and key != "recipe_info"
    }
    config = {"recipe": getattr(args, "recipe_info", None), "options": options}
    text = json.dumps(config, indent=2, default=str) + "\n"
    (args.output_dir / "config.json").write_text(text, encoding="utf-8")


def _output_folder(args: argparse.Namespace, context: DistributedContext) -> Path:
    """Rank 0 makes (or clears, with ``--overwrite``) the folder; every rank gets its path."""
    folder: Path | None = None
    if context.is_main:
        if args.output_dir is None:
            folder = _new_run_folder(args.method)
        else:
            folder = args.output_dir
            folder.mkdir(parents=True, exist_ok=True)
            if args.overwrite:
                for name in RUN_FILES:
                    if (folder / name).is_dir():
                        shutil.rmtree(folder / name)
                    else:
                        (folder / name).unlink(missing_ok=True)
        print(f"writing to {folder}", file=sys.stderr)
    if context.world_size > 1:
        shared: list[Path | None] = [folder]
        dist.broadcast_object_list(shared, src=0)
        folder = shared[0]
    assert folder is not None  # set by rank 0 and broadcast to the others
    return folder


def _new_run_folder(method: str) -> Path:
    """``runs/<method>-<date>-<time>``, made exclusively (``-2``, ``-3``, ... when taken)."""
    stem = f"{method}-{time.strftime('%Y%m%d-%H%M%S')}"
    RUNS_ROOT.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        folder = RUNS_ROOT / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise SystemExit(f"error: no free run folder named {RUNS_ROOT / stem}-N; pass --output-dir")


def _check_data(run: Run, test_arrays: SkeletonArrays) -> None:
    """Refuses data that cannot give a meaningful result; warns about a suspicious window.

    Runs once, vectorised, before any training, so that a bad dataset costs no pretraining.
    """
    args, context, train = run.args, run.context, run.train_arrays
    classes = np.unique(train.labels)
    if len(classes) < 2 and any(stage != "pretrain" for stage in args.stages):
        raise SystemExit(
            f"error: the training split holds a single class ({classes.tolist()}): every "
            "classifier is trivially 100% accurate on it; use data with at least two classes"
        )
    if _constant(train.data):
        raise SystemExit(
            f"error: every coordinate of the training split equals {train.data.flat[0]}: there "
            "is nothing to learn (was the data prepared from empty or zeroed files?)"
        )
    test_classes = np.unique(test_arrays.labels)
    if len(test_classes) < 2:
        _warn(run, f"the test split holds a single class ({test_classes.tolist()})")
    longest = int(train.lengths.max())
    if args.window > longest:
        _warn(
            run,
            f"--window {args.window} is longer than every training sequence (longest: "
            f"{longest} frames): each clip is stretched by interpolation",
        )
    per_step = context.world_size
    needs = [("--batch-size", args.batch_size, "pretrain" in args.stages)]
    probing = any(stage in args.stages for stage in ("probe", "baseline", "raw"))
    needs.append(("--probe-batch-size", args.probe_batch_size, probing))
    for option, batch, used in needs:
        if used and len(train) < batch * per_step:
            raise SystemExit(
                f"error: {option} {batch} on {per_step} process(es) needs at least "
                f"{batch * per_step} training samples for one full batch, got {len(train)}"
            )
    ratio = getattr(args, "labelled_ratio", None)
    if "finetune" in args.stages:
        labelled = len(train)
        if ratio is not None:
            labelled = len(labelled_subset(train.labels, ratio, args.seed))
        if labelled < args.finetune_batch_size * per_step:
            raise SystemExit(
                f"error: fine-tuning on {labelled} labelled samples (--labelled-ratio {ratio}) "
                f"makes no full batch of --finetune-batch-size {args.finetune_batch_size} on "
                f"{per_step} process(es)"
            )
    if len(test_arrays) < per_step:
        raise SystemExit(
            f"error: {len(test_arrays)} test samples cannot be split over {per_step} processes"
        )


def _constant(data: np.ndarray, chunk: int = 256) -> bool:
    """Whether every value of ``data`` is the same, reading chunks of samples until one differs.

    Prepared files are memory-mapped: real data differs within the first chunk, so this reads
    a few megabytes, not the whole file.
    """
    first = data.flat[0]
    return not any(
        np.any(data[start : start + chunk] != first) for start in range(0, len(data), chunk)
    )


def _warn(run: Run, message: str) -> None:
    """Prints a warning (rank 0) and records it in the metrics log and the summary."""
    if run.context.is_main:
        print(f"warning: {message}", file=sys.stderr)
    run.logger.log({"stage": "data", "warning": message})
    run.summary.setdefault("warnings", []).append(message)


def build(factory: Callable[[], _M]) -> _M:
    """Builds a model from the options, turning an invalid option into a one-line error."""
    try:
        return factory()
    except (ValueError, KeyError) as error:
        raise SystemExit(f"error: invalid model options: {error}") from None


def pretrain_stage(run: Run, model: nn.Module) -> None:
    """Pretrains ``model`` (``model(x).loss``), or loads the ``--resume`` weights without it.

    A checkpoint whose weights do not fit the model (other data layout or channels, or options
    from before checkpoints stored them) ends the run with a one-line error naming the weights.
    """
    args = run.args
    try:
        if "pretrain" in args.stages:
            _pretrain(run, model)
        elif args.resume is not None:
            state = load_weights(model, args.resume, model_config=args.model_config)
            run.summary["checkpoint"] = str(args.resume)
            run.summary["checkpoint_epoch"] = int(state["epoch"])
    except CheckpointError as error:
        raise SystemExit(f"error: {error}") from None


def _pretrain(run: Run, model: nn.Module) -> None:
    args = run.args
    started = time.perf_counter()
    run.logger.scope = "pretrain"
    history = pretrain(
        model,
        run.train_set,
        PretrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            min_lr=args.min_lr,
            weight_decay=args.weight_decay,
            warmup_epochs=args.warmup_epochs,
            grad_clip=args.grad_clip,
            amp=not args.no_amp,
            compile=args.compile,
            seed=args.seed,
            num_workers=args.workers,
        ),
        context=run.context,
        output_dir=args.output_dir,
        resume=args.resume,
        logger=run.logger,
        model_config=args.model_config,
    )
    run.summary["pretrain_final_loss"] = history[-1]["loss"] if history else float("nan")
    run.summary["pretrain_seconds"] = time.perf_counter() - started


def evaluation_stages(run: Run, encoder: nn.Module, fresh_encoder: Callable[[], nn.Module]) -> None:
    """The linear probe, kNN, random-initialisation and raw-coordinates stages that were chosen.

    Args:
        run: The run.
        encoder: The (pretrained) encoder; it has ``forward_features``.
        fresh_encoder: Builds the same encoder at random initialisation, for the baseline.
    """
    args = run.args
    probe_config = ProbeConfig(
        epochs=args.probe_epochs,
        batch_size=args.probe_batch_size,
        lr=args.probe_lr,
        seed=args.seed,
        num_workers=args.workers,
    )

    def probe(probed: nn.Module, key: str) -> None:
        run.logger.scope = key
        result = linear_probe(
            probed,
            run.train_set,
            run.test_set,
            run.train_arrays.num_classes,
            probe_config,
            context=run.context,
            logger=run.logger,
        )
        run.summary[f"{key}_last_accuracy"] = result.last_accuracy
        run.summary[f"{key}_best_accuracy"] = result.best_accuracy

    if "probe" in args.stages:
        probe(encoder, "probe")
    if "knn" in args.stages:
        train_features, train_labels = extract_features(
            encoder, run.train_eval_set, batch_size=args.batch_size, context=run.context
        )
        test_features, test_labels = extract_features(
            encoder, run.test_set, batch_size=args.batch_size, context=run.context
        )
        run.summary["knn_accuracy"] = knn_accuracy(
            train_features, train_labels, test_features, test_labels
        )
    if "baseline" in args.stages:
        torch.manual_seed(args.seed)
        probe(fresh_encoder(), "baseline_probe")
    if "raw" in args.stages:
        # The clips as the encoder sees them: frame differences under --velocity-input.
        probe(RawCoordinates(int(run.train_set[0][0].numel())), "raw_probe")


def finish(run: Run) -> dict[str, Any]:
    """Writes ``summary.json`` and prints the summary table (rank 0); returns the summary."""
    run.logger.close()
    if run.context.is_main:
        summary_file = run.args.output_dir / "summary.json"
        summary_file.write_text(json.dumps(run.summary, indent=2) + "\n")
        print_summary(run.summary)
    return run.summary


# The same linear probe on three inputs; a pretrained encoder is worth its cost only when it
# beats both baselines.
COMPARISON = (
    ("probe_last_accuracy", "pretrained encoder"),
    ("baseline_probe_last_accuracy", "same encoder, random initialisation"),
    ("raw_probe_last_accuracy", "raw coordinates (no encoder)"),
)


def print_summary(summary: dict[str, Any]) -> None:
    """A two-column table of the run's configuration and results, then the probe comparison."""
    width = max(len(key) for key in summary)
    print("\n" + "=" * (width + 14))
    for key, value in summary.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    print("=" * (width + 14))
    print_comparison(summary)


def print_comparison(summary: dict[str, Any]) -> None:
    """The linear probe's last-epoch accuracy on each input that was probed, labelled.

    Under ``--velocity-input`` (``summary["velocity_input"]``) the raw probe read frame
    differences, and its row says so.
    """
    labels = dict(COMPARISON)
    if summary.get("velocity_input"):
        labels["raw_probe_last_accuracy"] = "raw frame differences (no encoder)"
    rows = [(key, labels[key], summary[key]) for key in labels if key in summary]
    if len(rows) < 2:
        return
    pretrained = summary.get("probe_last_accuracy")
    print("linear probe, last-epoch test accuracy:")
    for key, label, accuracy in rows:
        gap = ""
        if pretrained is not None and key != "probe_last_accuracy":
            gap = f"   (pretrained {pretrained - accuracy:+.4f})"
        print(f"  {label:<36} {accuracy:.4f}{gap}")
