from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from skelmask.training import CheckpointError, load_checkpoint, save_checkpoint


def _state(value: float) -> dict[str, Any]:
    return {"model": {"w": torch.full((3,), value)}, "epoch": 1, "config": {"lr": 0.1}}


def test_round_trip_and_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ckpt.pt"
    save_checkpoint(path, _state(2.0))
    assert torch.load(path, weights_only=True)["epoch"] == 1
    loaded = load_checkpoint(path, required=("model", "epoch"))
    torch.testing.assert_close(loaded["model"]["w"], torch.full((3,), 2.0))
    assert os.listdir(path.parent) == ["ckpt.pt"]


@pytest.mark.parametrize("partial_write", [False, True])
def test_crash_mid_write_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, partial_write: bool
) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, _state(1.0))

    def crash(obj: object, handle: Any, *args: object, **kwargs: object) -> None:
        if partial_write:
            handle.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _state(5.0))
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.pt"]  # no temporary file left behind
    torch.testing.assert_close(load_checkpoint(path)["model"]["w"], torch.ones(3))


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_bad_files_raise_checkpoint_error_naming_the_file(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    save_checkpoint(good, _state(1.0))
    whole = good.read_bytes()
    not_a_dict = tmp_path / "list.pt"
    torch.save([torch.ones(1)], not_a_dict)
    namespace = tmp_path / "namespace.pt"  # what MAMP stores as "args"
    torch.save({"model": {}, "args": argparse.Namespace(lr=0.1)}, namespace)
    cases = {
        tmp_path / "missing.pt": "does not exist",
        _write(tmp_path / "truncated.pt", whole[: len(whole) // 2]): "corrupt, truncated",
        _write(tmp_path / "garbage.pt", bytes(range(256)) * 4): "corrupt, truncated",
        _write(tmp_path / "empty.pt", b""): "corrupt, truncated",
        _write(tmp_path / "text.pt", b"model: not a checkpoint\n"): "corrupt, truncated",
        namespace: "corrupt, truncated",
        not_a_dict: "holds a list, not a dict",
    }
    for path, message in cases.items():
        with pytest.raises(CheckpointError, match=message) as info:
            load_checkpoint(path)
        assert str(path) in str(info.value)
        assert isinstance(info.value, ValueError)
    with pytest.raises(CheckpointError, match=r"lacks the keys \['optimizer'\]") as info:
        load_checkpoint(good, required=("model", "optimizer"))
    assert str(good) in str(info.value)
