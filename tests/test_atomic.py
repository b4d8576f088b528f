"""Atomic writes: permissions follow the umask, stale temporary files of killed writers go away."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from skelmask._atomic import atomic_write, remove_stale_temporaries
from skelmask.data.prepared import load_prepared, save_prepared
from skelmask.data.synthetic import generate_synthetic_actions

posix_only = pytest.mark.skipif(os.name != "posix", reason="umask and flock are POSIX")


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


@posix_only
@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_prepared_files_respect_the_umask(tmp_path: Path, umask: None, mask: int) -> None:
    os.umask(mask)
    arrays = generate_synthetic_actions(2, num_classes=2, max_frames=6)
    path = save_prepared(tmp_path / "train.npz", arrays)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    with atomic_write(tmp_path / "checkpoint.pt") as handle:
        handle.write(b"x")
    assert stat.S_IMODE((tmp_path / "checkpoint.pt").stat().st_mode) == 0o666 & ~mask


def test_stale_temporaries_of_the_same_file_are_removed(tmp_path: Path) -> None:
    arrays = generate_synthetic_actions(2, num_classes=2, max_frames=6)
    # Left by killed writers: a name of earlier versions (mkstemp) and one of this version.
    stale = [tmp_path / ".train.npz.k3_x9abc.tmp", tmp_path / ".train.npz.0123abcd.tmp"]
    # Not ours to touch: another destination's, a name of another form, the user's own file.
    others = [
        tmp_path / ".test.npz.0123abcd.tmp",
        tmp_path / ".train.npz.0123abcd.tmp.bak",
        tmp_path / ".train.npz.toolongname.tmp",
        tmp_path / "train.npz.0123abcd.tmp",
    ]
    for path in stale + others:
        path.write_bytes(b"PK\x03\x04 half an archive")
    save_prepared(tmp_path / "train.npz", arrays)
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in others)
    assert len(load_prepared(tmp_path / "train.npz")) == 2


@posix_only
def test_a_live_writers_temporary_file_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    with atomic_write(path) as outer:
        outer.write(b"outer")
        (temporary,) = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert remove_stale_temporaries(path) == []
        with atomic_write(path) as inner:  # a second writer of the same file meanwhile
            inner.write(b"inner")
        assert temporary.exists()
    assert path.read_bytes() == b"outer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


@posix_only
def test_the_temporary_file_of_a_killed_writer_is_removed_by_the_next_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "train.npz"
    script = textwrap.dedent(
        f"""
        import sys, time
        from skelmask._atomic import atomic_write
        with atomic_write({str(path)!r}) as handle:
            handle.write(b"PK" * 1000)
            handle.flush()
            print("writing", flush=True)
            time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True
    ) as writer:
        try:
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "writing"
            (temporary,) = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
            assert remove_stale_temporaries(path) == []  # alive: kept
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=30)
    assert temporary.exists()  # a killed writer cannot clean up
    arrays = generate_synthetic_actions(2, num_classes=2, max_frames=6)
    save_prepared(path, arrays)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.npz"]


def test_a_failed_write_removes_its_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"previous")

    def write_and_fail() -> None:
        with atomic_write(path) as handle:
            handle.write(b"partial")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_and_fail()
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


@posix_only
@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_checkpoints_respect_the_umask_and_clean_stale_temporaries(
    tmp_path: Path, umask: None, mask: int
) -> None:
    import torch

    from skelmask.training import load_checkpoint, save_checkpoint

    os.umask(mask)
    stale = tmp_path / ".checkpoint-last.pt.k3_x9abc.tmp"  # left by a killed save
    stale.write_bytes(b"PK\x03\x04 half a checkpoint")
    path = tmp_path / "checkpoint-last.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(2)}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert not stale.exists()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(2))
