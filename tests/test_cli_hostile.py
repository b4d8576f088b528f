"""The ``skelmask prepare`` command given hostile or careless input: clear errors, nothing written
outside ``--out``, nothing read before the options are known to be usable."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from skelmask.cli import MAX_FRAMES_LIMIT, main
from skelmask.data.prepared import load_prepared


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (``None`` for folders)."""
    return {
        str(path.relative_to(folder)): None if path.is_dir() else path.read_bytes()
        for path in sorted(folder.rglob("*"))
    }


def write_pyskl(path: Path, split: dict[str, list[str]]) -> Path:
    annotations = [
        {
            "frame_dir": f"S001C001P001R001A00{index + 1}",
            "label": index,
            "total_frames": 4,
            "keypoint": np.full((1, 4, 25, 3), index + 1.0, dtype=np.float32),
        }
        for index in range(2)
    ]
    path.write_bytes(pickle.dumps({"split": split, "annotations": annotations}))
    return path


@pytest.mark.parametrize(
    "hostile",
    [
        "/../../victim/ntu60-xsub-train",
        "../victim/ntu60-xsub-train",
        "x/y",
        "x\\y",
        "..",
        ".hidden",
        "",
        "-rf",
        "a\x00b",
        "train:stream",
    ],
)
def test_pyskl_split_names_never_leave_out(
    tmp_path: Path, hostile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "ntu60-xsub-train.npz").write_bytes(b"someone else's prepared file")
    source = write_pyskl(
        tmp_path / "data.pkl",
        {"train": ["S001C001P001R001A001"], hostile: ["S001C001P001R001A002"]},
    )
    out = tmp_path / "deep" / "out"
    before = snapshot(tmp_path)
    code, _, stderr = run(["prepare", "pyskl", "--path", str(source), "--out", str(out)], capsys)
    assert code == 1
    assert f"{source}: split name {hostile!r} cannot be part of an output file name" in stderr
    assert "nothing was written" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before  # not even the good split, not even --out


def test_pyskl_split_names_differing_only_in_case_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_pyskl(
        tmp_path / "data.pkl",
        {"train": ["S001C001P001R001A001"], "Train": ["S001C001P001R001A002"]},
    )
    out = tmp_path / "out"
    code, _, stderr = run(["prepare", "pyskl", "--path", str(source), "--out", str(out)], capsys)
    assert code == 1
    assert "differ only in case" in stderr
    assert not out.exists()


def test_ordinary_pyskl_split_names_are_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_pyskl(
        tmp_path / "data.pkl",
        {"xsub_train": ["S001C001P001R001A001"], "xsub.val-2": ["S001C001P001R001A002"]},
    )
    out = tmp_path / "out"
    code, _, _ = run(["prepare", "pyskl", "--path", str(source), "--out", str(out)], capsys)
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["data-xsub.val-2.npz", "data-xsub_train.npz"]
    assert load_prepared(out / "data-xsub.val-2.npz").labels.tolist() == [1]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--layout", "bogus"], "argument --layout: unknown layout 'bogus'; known: "),
        (["--layout", ""], "argument --layout: unknown layout ''"),
    ],
)
def test_unknown_layout_is_a_usage_error(
    tmp_path: Path, options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for dataset in ("npz", "pyskl"):
        argv = ["prepare", dataset, "--path", str(tmp_path / "x"), "--out", str(tmp_path / "o")]
        code, _, stderr = run([*argv, *options], capsys)
        assert code == 2
        assert message in stderr
        assert "nturgb+d" in stderr
        assert "Traceback" not in stderr


@pytest.mark.parametrize("dataset", ["ntu60", "ntu120", "pku-mmd", "nw-ucla"])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1000000000", f"must be an integer in [1, {MAX_FRAMES_LIMIT}], got 1000000000"),
        (str(MAX_FRAMES_LIMIT + 1), f"must be an integer in [1, {MAX_FRAMES_LIMIT}]"),
        ("0", "must be an integer in [1, "),
        ("-5", "must be an integer in [1, "),
        ("ten", "must be an integer, got 'ten'"),
        ("1e3", "must be an integer, got '1e3'"),
    ],
)
def test_max_frames_out_of_range_is_a_usage_error(
    tmp_path: Path, dataset: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["prepare", dataset, "--root", str(tmp_path), "--out", str(tmp_path / "o")]
    code, _, stderr = run([*argv, "--max-frames", value], capsys)
    assert code == 2
    assert f"argument --max-frames: {message}" in stderr
    assert "Traceback" not in stderr


def test_workers_out_of_range_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["prepare", "nw-ucla", "--root", str(tmp_path), "--out", str(tmp_path / "o")]
    code, _, stderr = run([*argv, "--workers", "100000000"], capsys)
    assert code == 2
    assert "argument --workers: must be an integer in [1, " in stderr


def _refuse_to_read(*args: object, **kwargs: object) -> None:
    raise AssertionError("an input was read before --out was checked")


@pytest.mark.parametrize("where", ["file", "below a file"])
def test_out_that_is_a_file_fails_before_reading(
    tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for module, reader in (
        ("skelmask.data.ntu", "load_ntu"),
        ("skelmask.data.pku_mmd", "load_pku_mmd"),
        ("skelmask.data.nw_ucla", "load_nw_ucla"),
        ("skelmask.data.msr_action3d", "load_msr_action3d"),
        ("skelmask.data.formats", "load_npz"),
        ("skelmask.data.formats", "load_pyskl"),
    ):
        monkeypatch.setattr(f"{module}.{reader}", _refuse_to_read)
    blocker = tmp_path / "prepared.npz"
    blocker.write_bytes(b"a file, not a folder")
    out = blocker if where == "file" else blocker / "sub"
    for dataset, source in (
        ("ntu60", "--root"),
        ("pku-mmd", "--root"),
        ("nw-ucla", "--root"),
        ("msr-action3d", "--root"),
        ("npz", "--path"),
        ("pyskl", "--path"),
    ):
        argv = ["prepare", dataset, source, str(tmp_path), "--out", str(out)]
        code, _, stderr = run(argv, capsys)
        assert code == 2, dataset
        assert f"--out {out}" in stderr
        assert "is not a folder" in stderr
    assert blocker.read_bytes() == b"a file, not a folder"


def test_out_of_memory_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def exhaust(*args: object, **kwargs: object) -> None:
        raise MemoryError("Unable to allocate 559. TiB for an array")

    monkeypatch.setattr("skelmask.data.nw_ucla.load_nw_ucla", exhaust)
    argv = ["prepare", "nw-ucla", "--root", str(tmp_path), "--out", str(tmp_path / "o")]
    code, _, stderr = run(argv, capsys)
    assert code == 1
    expected = (
        "skelmask prepare: error: out of memory (Unable to allocate 559. TiB for an array); "
        "lower --max-frames or prepare fewer samples at once"
    )
    assert stderr.strip().splitlines() == [expected]


def test_pyskl_outlier_label_fails_and_num_classes_skips_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    annotations = [
        {
            "frame_dir": name,
            "label": label,
            "total_frames": 4,
            "keypoint": np.ones((1, 4, 25, 3), dtype=np.float16),
        }
        for name, label in (("a", 0), ("b", 10**12), ("c", 1))
    ]
    source = tmp_path / "outlier.pkl"
    source.write_bytes(
        pickle.dumps({"split": {"train": ["a", "b", "c"]}, "annotations": annotations})
    )
    out = tmp_path / "out"
    argv = ["prepare", "pyskl", "--path", str(source), "--out", str(out), "--max-frames", "3"]
    code, _, stderr = run(argv, capsys)
    assert code == 1
    assert "labels must cover 0..1000000000000 without a gap" in stderr
    assert "0-1, 1000000000000" in stderr
    assert not out.exists()
    code, stdout, _ = run([*argv, "--num-classes", "2"], capsys)
    assert code == 0
    assert "'b': label 1000000000000 is outside [0, num_classes) = [0, 2)" in stdout
    train = load_prepared(out / "outlier-train.npz")
    assert (train.names, train.num_classes, train.data.shape[2]) == (["a", "c"], 2, 3)


def test_a_multi_line_error_is_printed_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "persistent.pkl"
    source.write_bytes(b"Pfoo\n.")  # pickle's message for this spans two lines
    code, _, stderr = run(
        ["prepare", "pyskl", "--path", str(source), "--out", str(tmp_path)], capsys
    )
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"skelmask prepare: error: {source}: cannot unpickle: A load")
