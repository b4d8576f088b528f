"""The ``skelmask`` command line: ``skelmask prepare <dataset> ...`` writes prepared files.

Each ``prepare`` subcommand reads a raw dataset with its skelmask reader, prints what was read,
kept, rejected and cleaned, and writes one prepared file per benchmark and split
(``skelmask.data.prepared.save_prepared``) into ``--out``. See ``docs/data.md``.

Exit status: 0 on success; 1 when reading or writing fails (a missing folder, an unusable
container file, with ``--on-error raise`` the first unusable file, named with its line on stderr,
or output names that cannot be used); 2 for a usage error (checked before any input is read,
the ``--out`` folder included).

Nothing is written outside ``--out``: output file names are built from fixed prefixes and split
names, and a split name read from a file (pyskl) that is not a plain file-name part is refused
before anything is written.
"""

from __future__ import annotations

import argparse
import functools
import glob
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from skelmask.data.arrays import SkeletonArrays
from skelmask.data.errors import OnError, ReadReport
from skelmask.data.prepared import save_prepared
from skelmask.data.view import normalize_view, view_joints

__all__ = ["main"]

_NTU_BENCHMARKS = {"ntu60": ("xsub", "xview"), "ntu120": ("xsub", "xset")}
_PKU_BENCHMARKS = ("xsub", "xview")
# Frames of a sample: NTU, PKU-MMD and NW-UCLA samples are a few hundred frames; 10,000 (five
# minutes at 30 fps) is far beyond them, and a larger T is a typo that would need terabytes.
MAX_FRAMES_LIMIT = 10_000
_MAX_WORKERS = 1024
_MAX_CLASSES = 1_000_000
# A split name read from a file becomes part of an output file name: letters, digits, "_", "-"
# and "." only, not first, so that it can never name another folder.
_SPLIT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

_Splits = dict[str, SkeletonArrays]
# One benchmark to prepare: its file-name prefix, its metadata and how to read it.
_Job = tuple[str, dict[str, object], Callable[[], tuple[_Splits, ReadReport]]]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``skelmask`` command.

    Args:
        argv: Arguments without the program name; ``None`` reads ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 1 when reading a dataset failed, 2 for a usage error.

    Examples:
        >>> from skelmask.cli import main
        >>> main(["prepare", "ntu60", "--root", "no/such/folder", "--out", "out", "--no-progress"])
        1
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        _check_out(args)
        jobs: list[_Job] = args.jobs(args)
        _check_existing(args, [prefix for prefix, _, _ in jobs])
    except SystemExit as exit_request:  # argparse exits for --help (0) and usage errors (2)
        return exit_request.code if isinstance(exit_request.code, int) else 2
    try:
        for prefix, metadata, read in jobs:
            splits, report = read()
            if args.normalize_view:
                for arrays in splits.values():
                    _normalize_view_in_place(arrays)
            recorded = {**metadata, "view_normalized": bool(args.normalize_view)}
            _write_benchmark(Path(args.out), prefix, recorded, splits, report, sys.stdout)
    except (OSError, ValueError) as error:
        # SkeletonFileError (a ValueError) already names the file and line; no traceback needed.
        _print_error(str(error))
        return 1
    except MemoryError as error:
        _print_error(
            f"out of memory ({str(error) or 'no details'}); lower --max-frames or prepare fewer "
            "samples at once"
        )
        return 1
    return 0


def _print_error(message: str) -> None:
    """One line on stderr, whatever line breaks the message (e.g. from pickle) contains."""
    print(f"skelmask prepare: error: {' '.join(message.split())}", file=sys.stderr)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skelmask", description="skelmask command line: prepare skeleton datasets."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    prepare = commands.add_parser(
        "prepare",
        help="read a raw dataset and write prepared .npz files",
        description="Read a raw dataset and write one prepared .npz file per benchmark and split.",
    )
    datasets = prepare.add_subparsers(dest="dataset", required=True, metavar="DATASET")

    for name, benchmarks in _NTU_BENCHMARKS.items():
        ntu = _add_dataset(datasets, name, f"NTU RGB+D {name[3:]} raw .skeleton files")
        ntu.add_argument("--root", type=Path, required=True, help="folder of .skeleton files")
        ntu.add_argument("--benchmarks", default=",".join(benchmarks), help="comma-separated")
        ntu.add_argument(
            "--max-frames", type=_frame_count, default=300, help="frames T (default 300)"
        )
        ntu.add_argument(
            "--missing",
            default=None,
            help="'builtin' (recommended: the authors' list of samples with missing skeletons) "
            "or a file of sample names to leave out; default: read every file",
        )
        ntu.set_defaults(jobs=_ntu_jobs, choices=benchmarks)

    pku = _add_dataset(datasets, "pku-mmd", "PKU-MMD skeleton/, label/ and split lists")
    pku.add_argument("--root", type=Path, required=True, help="the phase's folder")
    pku.add_argument("--phase", type=int, choices=(1, 2), default=1)
    pku.add_argument("--benchmarks", default=",".join(_PKU_BENCHMARKS), help="comma-separated")
    pku.add_argument("--max-frames", type=_frame_count, default=300, help="frames T (default 300)")
    pku.set_defaults(jobs=_pku_jobs, choices=_PKU_BENCHMARKS)

    npz = _add_dataset(datasets, "npz", "MAMP / CTR-GCN style .npz (x_train, y_train, ...)")
    npz.add_argument("--path", type=Path, required=True, help="the .npz file")
    npz.add_argument(
        "--layout", type=_layout_name, default=None, help="layout name (default: nturgb+d)"
    )
    npz.set_defaults(jobs=_npz_jobs)

    pyskl = _add_dataset(datasets, "pyskl", "pyskl / mmaction2 annotation pickle")
    pyskl.add_argument("--path", type=Path, required=True, help="the .pkl file")
    pyskl.add_argument(
        "--layout", type=_layout_name, default=None, help="layout name (default: by joint count)"
    )
    pyskl.add_argument(
        "--num-classes",
        type=_class_count,
        default=None,
        help="the dataset's class count (default: the largest label + 1, labels without gaps)",
    )
    pyskl.add_argument(
        "--max-frames", type=_frame_count, default=None, help="frames T (default: the longest)"
    )
    pyskl.set_defaults(jobs=_pyskl_jobs)

    ucla = _add_dataset(datasets, "nw-ucla", "Northwestern-UCLA Multiview Action3D skeletons")
    ucla.add_argument("--root", type=Path, required=True, help="the dataset folder")
    ucla.add_argument(
        "--max-frames", type=_frame_count, default=None, help="frames T (default: the longest)"
    )
    ucla.set_defaults(jobs=_nw_ucla_jobs)

    msr = _add_dataset(datasets, "msr-action3d", "MSR Action3D skeleton text files")
    msr.add_argument("--root", type=Path, required=True, help="folder of MSRAction3DSkeletonReal3D")
    msr.set_defaults(jobs=_msr_jobs)
    return parser


def _add_dataset(
    datasets: argparse._SubParsersAction[argparse.ArgumentParser], name: str, what: str
) -> argparse.ArgumentParser:
    """A ``prepare`` subcommand with the options every dataset shares."""
    parser = datasets.add_parser(name, help=what, description=f"Prepare {what}.")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--workers", type=_worker_count, default=1, help="reader processes")
    parser.add_argument(
        "--on-error",
        choices=("skip", "raise"),
        default="skip",
        help="skip (default): list every unusable file in the summary; raise: stop at the first",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace prepared files of the same dataset and benchmark already in --out "
        "(refused by default, before any input is read)",
    )
    parser.add_argument(
        "--normalize-view",
        action="store_true",
        help="centre and rotate every clip into its first body's frame (cross-view protocols)",
    )
    parser.set_defaults(command_parser=parser)
    return parser


def _bounded_int(text: str, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 1 <= value <= high:
        raise argparse.ArgumentTypeError(f"must be an integer in [1, {high}], got {text}")
    return value


def _frame_count(text: str) -> int:
    return _bounded_int(text, MAX_FRAMES_LIMIT)


def _class_count(text: str) -> int:
    return _bounded_int(text, _MAX_CLASSES)


def _worker_count(text: str) -> int:
    return _bounded_int(text, _MAX_WORKERS)


def _layout_name(text: str) -> str:
    from skelmask.layouts import list_layouts  # noqa: PLC0415

    known = list_layouts()
    if text not in known:
        raise argparse.ArgumentTypeError(f"unknown layout {text!r}; known: {', '.join(known)}")
    return text


def _check_out(args: argparse.Namespace) -> None:
    """Refuses an ``--out`` that cannot become a writable folder, before any input is read."""
    out = Path(args.out)
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if out.exists() and not out.is_dir():
        args.command_parser.error(f"--out {out} exists and is not a folder")
    if not existing.is_dir():
        args.command_parser.error(f"--out {out}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        args.command_parser.error(f"--out {out}: {existing} is not writable")


def _check_existing(args: argparse.Namespace, prefixes: list[str]) -> None:
    """Refuses, before any input is read, to replace prepared files unless ``--overwrite``.

    A run writes ``OUT/<prefix>-<split>.npz``; its splits are known only once the input is
    read, so every ``<prefix>-*.npz`` already in ``--out`` counts.
    """
    out = Path(args.out)
    if args.overwrite or not out.is_dir():
        return
    existing = sorted(
        path.name for prefix in prefixes for path in out.glob(f"{glob.escape(prefix)}-*.npz")
    )
    if existing:
        args.command_parser.error(
            f"--out {out} already holds {', '.join(existing)}; pass --overwrite to replace "
            "them, or choose another --out"
        )


def _benchmarks(args: argparse.Namespace) -> list[str]:
    requested = [name.strip() for name in str(args.benchmarks).split(",") if name.strip()]
    unknown = [name for name in requested if name not in args.choices]
    if not requested or unknown:
        args.command_parser.error(
            f"--benchmarks for {args.dataset} must be a comma-separated subset of "
            f"{','.join(args.choices)}, got {args.benchmarks!r}"
        )
    return list(dict.fromkeys(requested))


def _on_error(args: argparse.Namespace) -> OnError:
    return "raise" if args.on_error == "raise" else "skip"


def _progress(args: argparse.Namespace) -> bool:
    return not args.no_progress


def _ntu_jobs(args: argparse.Namespace) -> list[_Job]:
    # Readers are imported when used, so one reader's import cost or failure touches no other.
    from skelmask.data.ntu import load_ntu  # noqa: PLC0415

    jobs: list[_Job] = []
    for benchmark in _benchmarks(args):
        key = f"{args.dataset}-{benchmark}"
        read = functools.partial(
            load_ntu,
            args.root,
            benchmark=key,
            max_frames=args.max_frames,
            max_bodies=2,
            missing=args.missing,
            on_error=_on_error(args),
            workers=args.workers,
            show_progress=_progress(args),
        )
        metadata: dict[str, object] = {
            "dataset": args.dataset,
            "benchmark": benchmark,
            "root": str(args.root),
        }
        jobs.append((key, metadata, read))
    return jobs


def _pku_jobs(args: argparse.Namespace) -> list[_Job]:
    from skelmask.data.pku_mmd import load_pku_mmd  # noqa: PLC0415

    jobs: list[_Job] = []
    for benchmark in _benchmarks(args):
        read = functools.partial(
            load_pku_mmd,
            args.root,
            phase=args.phase,
            benchmark=benchmark,
            max_frames=args.max_frames,
            on_error=_on_error(args),
            workers=args.workers,
            show_progress=_progress(args),
        )
        metadata: dict[str, object] = {
            "dataset": f"pku-mmd-phase{args.phase}",
            "benchmark": benchmark,
            "root": str(args.root),
        }
        jobs.append((f"pku-mmd-phase{args.phase}-{benchmark}", metadata, read))
    return jobs


def _npz_jobs(args: argparse.Namespace) -> list[_Job]:
    from skelmask.data.formats import load_npz  # noqa: PLC0415

    options: dict[str, str] = {} if args.layout is None else {"layout": args.layout}
    read = functools.partial(load_npz, args.path, on_error=_on_error(args), **options)
    return [(args.path.stem, {"dataset": "npz", "source": str(args.path)}, read)]


def _pyskl_jobs(args: argparse.Namespace) -> list[_Job]:
    from skelmask.data.formats import load_pyskl  # noqa: PLC0415

    read = functools.partial(
        load_pyskl,
        args.path,
        layout=args.layout,
        num_classes=args.num_classes,
        max_frames=args.max_frames,
        on_error=_on_error(args),
    )
    return [(args.path.stem, {"dataset": "pyskl", "source": str(args.path)}, read)]


def _nw_ucla_jobs(args: argparse.Namespace) -> list[_Job]:
    from skelmask.data.nw_ucla import load_nw_ucla  # noqa: PLC0415

    options: dict[str, int] = {} if args.max_frames is None else {"max_frames": args.max_frames}
    read = functools.partial(
        load_nw_ucla,
        args.root,
        on_error=_on_error(args),
        workers=args.workers,
        show_progress=_progress(args),
        **options,
    )
    return [("nw-ucla", {"dataset": "nw-ucla", "root": str(args.root)}, read)]


def _msr_jobs(args: argparse.Namespace) -> list[_Job]:
    from skelmask.data.msr_action3d import load_msr_action3d  # noqa: PLC0415

    def read() -> tuple[_Splits, ReadReport]:
        train, test, problems = load_msr_action3d(args.root, on_error=_on_error(args))
        skipped = [line for line in problems if line.endswith("; file skipped")]
        cleaned = [line for line in problems if not line.endswith("; file skipped")]
        kept = len(train) + len(test)
        report = ReadReport(read=kept + len(skipped), kept=kept, rejected=skipped, cleaned=cleaned)
        return {"train": train, "test": test}, report

    return [("msr-action3d", {"dataset": "msr-action3d", "root": str(args.root)}, read)]


def _normalize_view_in_place(arrays: SkeletonArrays, chunk: int = 256) -> None:
    """Applies ``normalize_view`` to ``arrays.data`` a chunk of samples at a time (bounded memory)."""
    joints = view_joints(arrays.layout)
    for start in range(0, len(arrays), chunk):
        arrays.data[start : start + chunk] = normalize_view(
            arrays.data[start : start + chunk], joints
        )


def _write_benchmark(
    out: Path,
    prefix: str,
    metadata: dict[str, object],
    splits: _Splits,
    report: ReadReport,
    stream: TextIO,
) -> None:
    """Writes ``OUT/<prefix>-<split>.npz`` for every split and prints the summary.

    Every output name is checked before the first file is written (see ``_output_paths``).
    """
    source = str(metadata.get("source", metadata.get("root", prefix)))
    paths = _output_paths(out, prefix, list(splits), source)
    print(f"{prefix}: {report.summary()}", file=stream)
    report_record = {
        "read": report.read,
        "kept": report.kept,
        "rejected": report.rejected,
        "cleaned": report.cleaned,
    }
    for (split, arrays), destination in zip(splits.items(), paths, strict=True):
        path = save_prepared(
            destination,
            arrays,
            metadata={**metadata, "split": split, "report": report_record},
        )
        print(
            f"  {split}: {len(arrays)} samples, data {tuple(arrays.data.shape)} -> {path}",
            file=stream,
        )


def _output_paths(out: Path, prefix: str, splits: list[str], source: str) -> list[Path]:
    """``OUT/<prefix>-<split>.npz`` per split, refusing any name that could leave ``out``.

    Raises:
        ValueError: Naming ``source`` and the split, if a split name is not letters, digits,
            ``_``, ``-`` and ``.`` (not first), or if two names differ only in case (they would
            be one file on case-insensitive file systems).
    """
    bad = [split for split in splits if _SPLIT_NAME.fullmatch(split) is None]
    if bad:
        raise ValueError(
            f"{source}: split name {bad[0]!r} cannot be part of an output file name (allowed: "
            "letters, digits, '_', '-' and '.', not first); nothing was written"
        )
    names = [f"{prefix}-{split}.npz" for split in splits]
    folded: dict[str, str] = {}
    for name in names:
        other = folded.setdefault(name.casefold(), name)
        if other != name:
            raise ValueError(
                f"{source}: output names {other!r} and {name!r} differ only in case; nothing "
                "was written"
            )
    paths = [out / name for name in names]
    for path in paths:  # the prefix is fixed or a file's stem: one plain name, never a folder
        if path.parent != out or path.name in ("", ".", ".."):
            raise ValueError(f"output name {path.name!r} is not a plain file name in {out}")
    return paths


if __name__ == "__main__":
    sys.exit(main())
