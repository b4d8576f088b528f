"""Every reader, through ``skelmask prepare``, on mutated files: read or reported, never a crash.

Each example writes a small valid dataset (synthetic, or copied from ``../shared/data`` when it
is there), mutates one of its files (truncates it, splices a piece of it elsewhere, flips bytes,
or swaps one number for a huge, non-finite or non-numeric token), and runs the command with
``--on-error skip``. The property:

* the command returns 0 or 1 and no exception escapes it; on 1, stderr is one line naming the
  mutated file;
* on 0, the mutated file is accounted for: its samples are in the output or it is named in the
  summary, and every output file loads (``load_prepared`` scans it for NaN and inf);
* nothing outside ``--out`` changed, and no temporary file is left in it.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skelmask.cli import main
from skelmask.data.errors import SkeletonFileError
from skelmask.data.prepared import load_prepared, save_prepared
from skelmask.data.synthetic import generate_synthetic_actions

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
EXAMPLES = 12  # per dataset: the whole module stays well under 30 s
SWAPS = [b"1e39", b"-3e38", b"nan", b"inf", b"1e309", b"9" * 400, b"abc", b"", b"0x1F", b"-"]
NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


# --- mutations ----------------------------------------------------------------------------------


@st.composite
def mutations(draw: st.DrawFn) -> Callable[[bytes], bytes]:
    """A function that damages bytes the way downloads and careless edits do."""
    kind = draw(st.sampled_from(["truncate", "splice", "flip", "swap"]))
    a, b, c = (draw(st.integers(0, 2**31)) for _ in range(3))
    flips = draw(st.lists(st.tuples(st.integers(0, 2**31), st.integers(1, 255)), max_size=8))
    token = draw(st.sampled_from(SWAPS))

    def mutate(data: bytes) -> bytes:
        size = max(len(data), 1)
        if kind == "truncate":
            return data[: a % size]
        if kind == "splice":
            start, length, where = a % size, b % 4096, c % size
            return data[:where] + data[start : start + length] + data[where:]
        if kind == "flip":
            damaged = bytearray(data)
            for position, mask in flips:
                if damaged:
                    damaged[position % len(damaged)] ^= mask
            return bytes(damaged)
        numbers = list(NUMBER.finditer(data))
        if not numbers:
            return data + token
        match = numbers[a % len(numbers)]
        return data[: match.start()] + token + data[match.end() :]

    return mutate


# --- datasets -----------------------------------------------------------------------------------


@dataclass
class Dataset:
    """A dataset written under ``root``, its command line, and how to tell a file is used."""

    argv: list[str]
    files: list[Path]  # candidates for mutation
    accounted: Callable[[Path, str, list[str]], bool]  # (mutated, stdout, kept names)


def ntu_lines(frames: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    lines = [str(frames)]
    for _ in range(frames):
        lines += ["1", "72057594037931101 0 1 1 1 1 0 0.01 -0.25 2", "25"]
        lines += [
            f"{x:.4f} {y:.4f} {z:.4f} 1 2 3 4 0 0 0 0 2"
            for x, y, z in rng.normal(size=(25, 3)) + np.array([0.0, 0.0, 3.0])
        ]
    return "\r\n".join(lines) + "\r\n"


def ntu(root: Path, real: bool) -> Dataset:
    folder = root / "ntu"
    folder.mkdir()
    if real:
        for name in ("S001C001P001R001A001", "S002C001P003R001A003"):
            shutil.copy(SHARED_DATA / "ntu-raw-samples" / f"{name}.skeleton", folder)
    else:
        (folder / "S001C001P001R001A001.skeleton").write_text(ntu_lines(14, 0))
        (folder / "S001C002P003R001A002.skeleton").write_text(ntu_lines(9, 1))
    return Dataset(
        ["ntu60", "--root", str(folder), "--benchmarks", "xsub", "--max-frames", "20"],
        sorted(folder.iterdir()),
        lambda path, out, names: path.stem in names or str(path) in out,
    )


def pku(root: Path, real: bool) -> Dataset:
    folder = root / "pku"
    (folder / "skeleton").mkdir(parents=True)
    (folder / "label").mkdir()
    (folder / "splits").mkdir()
    if real:
        source = SHARED_DATA / "pku-mmd-sample"
        video = "0310-R"
        for part in ("skeleton", "label"):
            shutil.copy(source / part / f"{video}.txt", folder / part)
        for split in ("cross-subject.txt", "cross-view.txt"):
            shutil.copy(source / "splits" / split, folder / "splits")
    else:
        video = "0001-L"
        values = np.random.default_rng(2).uniform(-1, 1, size=(30, 150))
        text = "\n".join(" ".join(f"{v:.5f}" for v in row) for row in values)
        (folder / "skeleton" / f"{video}.txt").write_text(text + "\n")
        (folder / "label" / f"{video}.txt").write_text("5,0,9,1\n7,10,29,2\n")
        lists = "Training videos: \n0001-L,\nValidataion videos: \n0002-L,\n"
        (folder / "splits" / "cross-subject.txt").write_text(lists)
    label = folder / "label" / f"{video}.txt"

    def accounted(path: Path, out: str, names: list[str]) -> bool:
        # An emptied label file is read correctly: its video holds no action.
        no_action = path == label and not label.read_bytes().strip()
        return any(n.startswith(f"{video}_") for n in names) or video in out or no_action

    return Dataset(
        ["pku-mmd", "--root", str(folder), "--benchmarks", "xsub", "--max-frames", "20"],
        [folder / "skeleton" / f"{video}.txt", label, folder / "splits" / "cross-subject.txt"],
        accounted,
    )


def msr(root: Path, real: bool) -> Dataset:
    folder = root / "msr" / "MSRAction3DSkeletonReal3D"
    folder.mkdir(parents=True)
    names = ["a01_s01_e01_skeleton3D.txt", "a02_s02_e01_skeleton3D.txt"]
    for index, name in enumerate(names):
        if real:
            shutil.copy(SHARED_DATA / "msr-action3d" / "MSRAction3DSkeletonReal3D" / name, folder)
        else:
            values = np.random.default_rng(index).uniform(0.1, 1, size=(5 * 20, 4))
            (folder / name).write_text("\n".join(" ".join(f"{v:.4f}" for v in r) for r in values))
    return Dataset(
        ["msr-action3d", "--root", str(folder.parent)],
        sorted(folder.iterdir()),
        lambda path, out, kept: (
            path.name.removesuffix("_skeleton3D.txt") in kept or path.name in out
        ),
    )


def nw_ucla(root: Path, real: bool) -> Dataset:
    folder = root / "ucla"
    folder.mkdir()
    for index, name in enumerate(("a01_s01_e00_v01", "a02_s01_e00_v03")):
        frames = np.random.default_rng(index).uniform(-1, 1, size=(6, 20, 3)).round(4)
        record = {"file_name": name, "skeletons": frames.tolist(), "label": index + 1}
        (folder / f"{name}.json").write_text(json.dumps(record))
    files = sorted(folder.iterdir())
    return Dataset(
        ["nw-ucla", "--root", str(folder), "--max-frames", "8"],
        files,
        lambda path, out, names: str(path) in out or len(names) == len(files),
    )


def npz(root: Path, real: bool) -> Dataset:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 12, 150))  # float64: a swapped 1e39 fits here, not in float32
    path = root / "mamp.npz"
    np.savez(path, x_train=x, y_train=np.eye(5)[[0, 1, 2, 3]], x_test=x[:2], y_test=np.eye(5)[:2])
    return Dataset(
        ["npz", "--path", str(path)],
        [path],
        lambda path, out, names: str(path) in out or len(names) == 6,
    )


def pyskl(root: Path, real: bool) -> Dataset:
    rng = np.random.default_rng(4)
    annotations = [
        {
            "frame_dir": f"S001C001P001R001A00{index}",
            "label": index % 2,
            "total_frames": 5,
            "keypoint": rng.normal(size=(1, 5, 25, 3)),
        }
        for index in range(3)
    ]
    split = {
        "xsub_train": [a["frame_dir"] for a in annotations[:2]],
        "xsub_val": ["S001C001P001R001A002"],
    }
    path = root / "anno.pkl"
    path.write_bytes(pickle.dumps({"split": split, "annotations": annotations}, protocol=2))
    return Dataset(
        ["pyskl", "--path", str(path)],
        [path],
        lambda path, out, names: str(path) in out or len(names) == 3,
    )


DATASETS: dict[str, Callable[[Path, bool], Dataset]] = {
    "ntu60": ntu,
    "pku-mmd": pku,
    "msr-action3d": msr,
    "nw-ucla": nw_ucla,
    "npz": npz,
    "pyskl": pyskl,
}
REAL = {"ntu60": "ntu-raw-samples", "pku-mmd": "pku-mmd-sample", "msr-action3d": "msr-action3d"}


# --- the property -------------------------------------------------------------------------------


def snapshot(folder: Path, skip: Path) -> dict[str, bytes | None]:
    return {
        str(path): None if path.is_dir() else path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if skip not in path.parents and path != skip
    }


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="skelmask-fuzz-") as folder:
        yield Path(folder)


def check_prepare(name: str, real: bool, choice: int, mutate: Callable[[bytes], bytes]) -> None:
    with workspace() as root:
        (root / "input").mkdir()
        dataset = DATASETS[name](root / "input", real)
        target = dataset.files[choice % len(dataset.files)]
        target.write_bytes(mutate(target.read_bytes()))
        out = root / "out"
        (root / "bystander.npz").write_bytes(b"someone else's file")
        before = snapshot(root, out)
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["prepare", *dataset.argv, "--out", str(out), "--no-progress"])
        assert snapshot(root, out) == before, "a file outside --out changed"
        if code == 1:
            lines = stderr.getvalue().strip().splitlines()
            assert len(lines) == 1, stderr.getvalue()
            assert lines[0].startswith("skelmask prepare: error: ")
            assert str(target) in lines[0], (target, lines[0])
            return
        assert code == 0, (code, stderr.getvalue())
        outputs = sorted(out.iterdir())
        assert all(path.suffix == ".npz" and not path.name.startswith(".") for path in outputs)
        names = [n for path in outputs for n in load_prepared(path).names]
        assert dataset.accounted(target, stdout.getvalue(), names), (target, stdout.getvalue())


@pytest.mark.parametrize("name", list(DATASETS))
def test_mutated_synthetic_files_are_read_or_reported(name: str) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(choice=st.integers(0, 7), mutate=mutations())
    def run(choice: int, mutate: Callable[[bytes], bytes]) -> None:
        check_prepare(name, False, choice, mutate)

    run()


@pytest.mark.parametrize("name", list(REAL))
def test_mutated_real_files_are_read_or_reported(name: str) -> None:
    if not (SHARED_DATA / REAL[name]).is_dir():
        pytest.skip(f"real skeleton data not found at {SHARED_DATA / REAL[name]}")

    @settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=list(HealthCheck))
    @given(choice=st.integers(0, 7), mutate=mutations())
    def run(choice: int, mutate: Callable[[bytes], bytes]) -> None:
        check_prepare(name, True, choice, mutate)

    run()


# --- prepared files -----------------------------------------------------------------------------


@settings(max_examples=2 * EXAMPLES, deadline=None)
@given(mutate=mutations(), mmap=st.booleans())
def test_mutated_prepared_files_load_or_name_the_file(
    mutate: Callable[[bytes], bytes], mmap: bool
) -> None:
    with workspace() as root:
        arrays = generate_synthetic_actions(3, num_classes=2, max_frames=6, seed=5)
        path = save_prepared(root / "train.npz", arrays)
        path.write_bytes(mutate(path.read_bytes()))
        try:
            loaded: Any = load_prepared(path, mmap=mmap)
        except SkeletonFileError as error:
            message = str(error)
        else:
            message = ""
            assert np.isfinite(np.asarray(loaded.data)).all()
            assert len(loaded.names) == len(loaded.labels) == len(loaded.data)
        if message:
            assert message.startswith(f"{path}: ")
            assert "allow_pickle" not in message
