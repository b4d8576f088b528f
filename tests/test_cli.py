from __future__ import annotations

import json
import pickle
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import skelmask.cli
from skelmask.cli import main
from skelmask.data.dataset import SkeletonDataset
from skelmask.data.prepared import load_prepared, read_prepared_metadata
from skelmask.models import SkeletonEncoder

# NTU-60 cross-subject trains on P001/P002 and tests on P003; cross-view tests on camera 1.
NTU_FILES = {
    "S001C001P001R001A001": 12,  # xsub train, xview test
    "S001C002P003R001A002": 9,  # xsub test, xview train
    "S001C003P002R001A003": 7,  # xsub train, xview train
}


def write_ntu_file(path: Path, frames: int, seed: int) -> None:
    """A one-body ``.skeleton`` file with ``frames`` frames of random joints."""
    rng = np.random.default_rng(seed)
    lines = [str(frames)]
    for _ in range(frames):
        lines += ["1", "72057594037931101 0 1 1 1 1 0 0.01 -0.25 2", "25"]
        for x, y, z in rng.normal(size=(25, 3)) * [0.3, 0.5, 0.2] + [0.0, 0.0, 3.0]:
            lines.append(f"{x:.5f} {y:.5f} {z:.5f} 0 0 0 0 0 0 0 0 2")
    path.write_text("\r\n".join(lines) + "\r\n")


@pytest.fixture
def ntu_root(tmp_path: Path) -> Path:
    root = tmp_path / "nturgb+d_skeletons"
    root.mkdir()
    for seed, (name, frames) in enumerate(NTU_FILES.items()):
        write_ntu_file(root / f"{name}.skeleton", frames, seed)
    return root


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ntu60_writes_one_file_per_benchmark_and_split(
    ntu_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "prepared"
    argv = ["prepare", "ntu60", "--root", str(ntu_root), "--out", str(out), "--no-progress"]
    code, stdout, _ = run([*argv, "--max-frames", "10"], capsys)
    assert code == 0
    assert sorted(path.name for path in out.iterdir()) == [
        "ntu60-xsub-test.npz",
        "ntu60-xsub-train.npz",
        "ntu60-xview-test.npz",
        "ntu60-xview-train.npz",
    ]
    expected = {
        ("xsub", "train"): ["S001C001P001R001A001", "S001C003P002R001A003"],
        ("xsub", "test"): ["S001C002P003R001A002"],
        ("xview", "train"): ["S001C002P003R001A002", "S001C003P002R001A003"],
        ("xview", "test"): ["S001C001P001R001A001"],
    }
    for (benchmark, split), names in expected.items():
        path = out / f"ntu60-{benchmark}-{split}.npz"
        arrays = load_prepared(path)
        assert arrays.names == names
        assert arrays.data.shape == (len(names), 3, 10, 25, 2)
        assert arrays.num_classes == 60
        metadata = read_prepared_metadata(path)["metadata"]
        assert isinstance(metadata, dict)
        assert metadata["dataset"] == "ntu60"
        assert metadata["benchmark"] == benchmark
        assert metadata["split"] == split
        assert metadata["report"]["read"] == 3
        assert f"{split}: {len(names)} samples, data ({len(names)}, 3, 10, 25, 2)" in stdout
    # The 12-frame sample was resampled to 10 frames: cleaning is reported.
    assert "ntu60-xsub: read 3, kept 3, rejected 0, cleaned 1" in stdout
    assert "S001C001P001R001A001" in stdout


def test_ntu120_cross_setup_only(
    ntu_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["prepare", "ntu120", "--root", str(ntu_root), "--out", str(out)]
    code, stdout, _ = run([*argv, "--benchmarks", "xset", "--no-progress"], capsys)
    assert code == 0
    assert sorted(path.name for path in out.iterdir()) == [
        "ntu120-xset-test.npz",
        "ntu120-xset-train.npz",
    ]
    # Setup 1 is odd: every sample tests.
    assert len(load_prepared(out / "ntu120-xset-test.npz")) == 3
    assert load_prepared(out / "ntu120-xset-test.npz").num_classes == 120
    assert "train: 0 samples" in stdout


def test_corrupt_file_is_listed_or_stops_the_run(
    ntu_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = ntu_root / "S001C001P001R001A004.skeleton"
    write_ntu_file(bad, 3, 9)
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join(lines[:20]) + "\n")  # ends inside the first frame's joints
    argv = ["prepare", "ntu60", "--root", str(ntu_root), "--benchmarks", "xsub", "--no-progress"]

    code, stdout, _ = run([*argv, "--out", str(tmp_path / "skip")], capsys)
    assert code == 0
    assert "read 4, kept 3, rejected 1" in stdout
    assert "S001C001P001R001A004.skeleton" in stdout

    out = tmp_path / "raise"
    code, stdout, stderr = run([*argv, "--out", str(out), "--on-error", "raise"], capsys)
    assert code == 1
    assert stderr.startswith("skelmask prepare: error: ")
    assert f"{bad}:" in stderr
    assert "Traceback" not in stderr
    assert not out.exists()


def test_msr_action3d_on_the_real_data(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = shared_data / "msr-action3d"
    code, stdout, _ = run(
        ["prepare", "msr-action3d", "--root", str(root), "--out", str(tmp_path)], capsys
    )
    assert code == 0
    train = load_prepared(tmp_path / "msr-action3d-train.npz")
    test = load_prepared(tmp_path / "msr-action3d-test.npz")
    assert (len(train), len(test)) == (291, 275)
    assert train.layout == "msr-action3d"
    assert "read 567, kept 566, rejected 1, cleaned 19" in stdout
    assert "a13_s09_e02_skeleton3D.txt: all 38 frames are all zeros" in stdout
    report = read_prepared_metadata(tmp_path / "msr-action3d-test.npz")["metadata"]
    assert isinstance(report, dict)
    assert report["report"]["rejected"] == [
        "a13_s09_e02_skeleton3D.txt: all 38 frames are all zeros; file skipped"
    ]


def test_npz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = np.zeros((3, 20, 150), dtype=np.float32)
    x[:, :12] = np.random.default_rng(0).normal(size=(3, 12, 150))
    source = tmp_path / "ntu60_xsub.npz"
    np.savez(source, x_train=x, y_train=np.eye(60)[[0, 5, 9]], x_test=x[:1], y_test=np.eye(60)[:1])
    out = tmp_path / "out"
    code, stdout, _ = run(["prepare", "npz", "--path", str(source), "--out", str(out)], capsys)
    assert code == 0
    train = load_prepared(out / "ntu60_xsub-train.npz")
    assert train.labels.tolist() == [0, 5, 9]
    assert train.lengths.tolist() == [12, 12, 12]
    # Frame values are ordered person, joint, xyz.
    np.testing.assert_array_equal(train.data[1, :, 3, 4, 1], x[1, 3, 75 + 12 : 75 + 15])
    assert len(load_prepared(out / "ntu60_xsub-test.npz")) == 1
    assert "read" in stdout


def test_prepared_files_are_replaced_only_with_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A second run into the same --out used to replace the first one's files silently.
    x = np.ones((3, 10, 150), dtype=np.float32)
    source = tmp_path / "ntu60_xsub.npz"
    np.savez(source, x_train=x, y_train=np.eye(60)[[0, 5, 9]], x_test=x[:1], y_test=np.eye(60)[:1])
    out = tmp_path / "out"
    argv = ["prepare", "npz", "--path", str(source), "--out", str(out), "--no-progress"]
    assert run(argv, capsys)[0] == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    np.savez(source, x_train=x[:2], y_train=np.eye(60)[[1, 2]], x_test=x[:1], y_test=np.eye(60)[:1])
    code, _, stderr = run(argv, capsys)
    assert code == 2
    assert "already holds ntu60_xsub-test.npz, ntu60_xsub-train.npz; pass --overwrite" in stderr
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert run([*argv, "--overwrite"], capsys)[0] == 0
    assert load_prepared(out / "ntu60_xsub-train.npz").labels.tolist() == [1, 2]


def test_npz_bad_sample_raises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = np.ones((2, 10, 150), dtype=np.float32)
    x[1, 2, 7] = np.nan
    source = tmp_path / "bad.npz"
    np.savez(source, x_train=x, y_train=np.eye(60)[[0, 1]])
    argv = ["prepare", "npz", "--path", str(source), "--out", str(tmp_path / "out")]
    code, _, stderr = run([*argv, "--on-error", "raise"], capsys)
    assert code == 1
    assert "bad.npz" in stderr
    code, stdout, _ = run(argv, capsys)
    assert code == 0
    assert "rejected 1" in stdout
    assert len(load_prepared(tmp_path / "out" / "bad-train.npz")) == 1


def test_pyskl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    annotations = [
        {
            "frame_dir": f"S001C001P001R001A00{index + 1}",
            "label": index,
            "total_frames": 6,
            "keypoint": rng.normal(size=(1, 6, 25, 3)).astype(np.float32),
        }
        for index in range(3)
    ]
    split = {
        "xsub_train": [a["frame_dir"] for a in annotations[:2]],
        "xsub_val": ["S001C001P001R001A003"],
    }
    source = tmp_path / "ntu60_3danno.pkl"
    source.write_bytes(pickle.dumps({"split": split, "annotations": annotations}))
    out = tmp_path / "out"
    argv = ["prepare", "pyskl", "--path", str(source), "--out", str(out), "--layout", "nturgb+d"]
    code, _, _ = run(argv, capsys)
    assert code == 0
    train = load_prepared(out / "ntu60_3danno-xsub_train.npz")
    assert train.names == ["S001C001P001R001A001", "S001C001P001R001A002"]
    np.testing.assert_allclose(
        train.data[1, :, :, :, 0], annotations[1]["keypoint"][0].transpose(2, 0, 1)
    )
    assert load_prepared(out / "ntu60_3danno-xsub_val.npz").labels.tolist() == [2]


def test_nw_ucla(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "all_sqe"
    root.mkdir()
    for name, label in (("a01_s01_e00_v01", 1), ("a02_s02_e00_v02", 2), ("a03_s01_e01_v03", 3)):
        record = {"file_name": name, "skeletons": [[[1.0, 2.0, 3.0]] * 20] * 4, "label": label}
        (root / f"{name}.json").write_text(json.dumps(record))
    out = tmp_path / "out"
    argv = ["prepare", "nw-ucla", "--root", str(tmp_path), "--out", str(out), "--max-frames", "8"]
    code, stdout, _ = run([*argv, "--workers", "1"], capsys)
    assert code == 0
    train = load_prepared(out / "nw-ucla-train.npz")
    assert train.data.shape == (2, 3, 8, 20, 1)
    assert load_prepared(out / "nw-ucla-test.npz").labels.tolist() == [2]
    assert "nw-ucla: read 3, kept 3" in stdout


def test_pku_mmd_on_the_real_sample(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = shared_data / "pku-mmd-sample"
    argv = ["prepare", "pku-mmd", "--root", str(root), "--out", str(tmp_path), "--no-progress"]
    code, _, _ = run([*argv, "--benchmarks", "xview", "--max-frames", "50"], capsys)
    assert code == 0
    train = load_prepared(tmp_path / "pku-mmd-phase1-xview-train.npz")
    test = load_prepared(tmp_path / "pku-mmd-phase1-xview-test.npz")
    assert (len(train), len(test)) == (8, 0)
    assert train.data.shape == (8, 3, 50, 25, 2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required: COMMAND"),
        (["prepare"], "required: DATASET"),
        (["prepare", "kinetics", "--out", "x"], "invalid choice: 'kinetics'"),
        (["prepare", "ntu60", "--root", "r"], "required: --out"),
        (["prepare", "ntu60", "--root", "r", "--out", "o", "--benchmarks", "xset"], "xsub,xview"),
        (["prepare", "ntu120", "--root", "r", "--out", "o", "--benchmarks", ""], "xsub,xset"),
        (["prepare", "npz", "--path", "p", "--out", "o", "--workers", "0"], "must be an integer"),
        (["prepare", "npz", "--path", "p", "--out", "o", "--on-error", "warn"], "invalid choice"),
        (["prepare", "pku-mmd", "--root", "r", "--out", "o", "--phase", "3"], "invalid choice"),
    ],
)
def test_usage_errors_exit_with_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, stderr = run(argv, capsys)
    assert code == 2
    assert message in stderr


def test_help_exits_with_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run(["prepare", "ntu60", "--help"], capsys)
    assert code == 0
    assert "--benchmarks" in stdout
    assert "--missing" in stdout


def test_missing_folder_exits_with_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["prepare", "msr-action3d", "--root", str(tmp_path / "none"), "--out", str(tmp_path)]
    code, _, stderr = run(argv, capsys)
    assert code == 1
    assert "MSR Action3D skeleton folder not found" in stderr
    assert str(tmp_path / "none") in stderr


def test_runs_as_a_script(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["skelmask", "prepare", "npz", "--path", "x"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(Path(skelmask.cli.__file__)), run_name="__main__")
    assert exit_info.value.code == 2
    assert "required: --out" in capsys.readouterr().err


def test_raw_files_to_encoder_input(
    ntu_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "prepared"
    argv = ["prepare", "ntu60", "--root", str(ntu_root), "--out", str(out), "--no-progress"]
    assert run([*argv, "--benchmarks", "xsub", "--missing", "builtin"], capsys)[0] == 0
    arrays = load_prepared(out / "ntu60-xsub-train.npz")
    assert isinstance(arrays.data.base, np.memmap)
    dataset = SkeletonDataset(arrays, window=8, seed=0, shear=0.5, temporal_padding=2)
    x, y = next(iter(DataLoader(dataset, batch_size=2)))
    assert x.shape == (2, 3, 8, 25, 2)
    assert y.tolist() == [0, 2]
    encoder = SkeletonEncoder(num_joints=25, num_frames=8, embed_dim=16, depth=1, num_heads=2)
    features = encoder.forward_features(x)
    assert features.shape == (2, 16)
    assert torch.isfinite(features).all()


def test_normalize_view_is_applied_and_recorded(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from skelmask.data import normalize_view

    root = shared_data / "msr-action3d"
    plain, normalized = tmp_path / "plain", tmp_path / "normalized"
    assert (
        run(["prepare", "msr-action3d", "--root", str(root), "--out", str(plain)], capsys)[0] == 0
    )
    code, _, _ = run(
        [
            "prepare",
            "msr-action3d",
            "--root",
            str(root),
            "--out",
            str(normalized),
            "--normalize-view",
        ],
        capsys,
    )
    assert code == 0
    before = load_prepared(plain / "msr-action3d-test.npz")
    after = load_prepared(normalized / "msr-action3d-test.npz")
    np.testing.assert_array_equal(after.data, normalize_view(before.data, "msr-action3d"))
    assert read_prepared_metadata(normalized / "msr-action3d-test.npz")["metadata"][
        "view_normalized"
    ]
    assert not read_prepared_metadata(plain / "msr-action3d-test.npz")["metadata"][
        "view_normalized"
    ]
