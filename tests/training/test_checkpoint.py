from __future__ import annotations

import argparse
import os
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from skelmask.training import CheckpointError, load_checkpoint, load_weights, save_checkpoint


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


# --- damaged bytes: the zip CRCs are verified before anything is unpickled ------------------


def _payload_offset(path: Path, entry_name: str) -> tuple[int, int]:
    """Start and size of an entry's stored bytes inside the zip file."""
    with zipfile.ZipFile(path) as archive:
        entry = next(e for e in archive.infolist() if e.filename.endswith(entry_name))
    content = path.read_bytes()
    name_length, extra_length = struct.unpack_from("<HH", content, entry.header_offset + 26)
    return entry.header_offset + 30 + name_length + extra_length, entry.file_size


def _big_state() -> dict[str, Any]:
    return {"model": {"w": torch.arange(64.0)}, "epoch": 3, "config": {"lr": 0.1}}


def test_a_flipped_bit_in_a_weight_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, _big_state())
    start, size = _payload_offset(path, "data/0")
    assert size == 64 * 4
    content = bytearray(path.read_bytes())
    content[start + 100] ^= 0x04  # one float of "w" changes; torch.load alone would accept it
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"is corrupt: the CRC-32 of its entry") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_checkpoints_written_without_crcs_still_load(tmp_path: Path) -> None:
    serialization = pytest.importorskip("torch.utils.serialization")
    path = tmp_path / "ckpt.pt"
    previous = serialization.config.save.compute_crc32
    serialization.config.save.compute_crc32 = False
    try:
        torch.save(_big_state(), path)
    finally:
        serialization.config.save.compute_crc32 = previous
    torch.testing.assert_close(load_checkpoint(path)["model"]["w"], torch.arange(64.0))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.floats(0.0, 1.0, exclude_max=True), bit=st.integers(0, 7))
def test_any_flipped_bit_is_refused_or_harmless(tmp_path: Path, position: float, bit: int) -> None:
    """Flipping any bit either raises CheckpointError or leaves the loaded content unchanged.

    (Some bytes, such as alignment padding or the local copy of a CRC, are never read.)
    """
    original = tmp_path / "original.pt"
    if not original.exists():
        save_checkpoint(original, _big_state())
    content = bytearray(original.read_bytes())
    content[int(position * len(content))] ^= 1 << bit
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(content)
    try:
        loaded = load_checkpoint(damaged, required=("model", "epoch", "config"))
    except CheckpointError as error:
        refusal = str(error)
    else:
        refusal = ""
    if refusal:
        assert str(damaged) in refusal
        return
    assert loaded["epoch"] == 3
    assert loaded["config"] == {"lr": 0.1}
    assert torch.equal(loaded["model"]["w"], torch.arange(64.0))


# --- weights of another model ---------------------------------------------------------------


def test_load_weights_names_every_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(
        path,
        {"model": nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1)).state_dict(), "epoch": 0},
    )
    model = nn.Sequential(nn.Linear(2, 4))
    with pytest.raises(CheckpointError) as info:
        load_weights(model, path)
    message = str(info.value)
    assert message.startswith(f"checkpoint {path} does not fit this model")
    assert "0.weight: checkpoint (3, 2), model (4, 2)" in message
    assert "not in the model: 1.bias, 1.weight" in message
    fitting = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    assert load_weights(fitting, path)["epoch"] == 0


def test_load_weights_compares_the_stored_model_configuration(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    model = nn.Linear(2, 3)
    save_checkpoint(
        path, {"model": model.state_dict(), "model_config": {"width": 3, "preset": "hacm"}}
    )
    with pytest.raises(CheckpointError, match=r"another model configuration: depth: ") as info:
        load_weights(model, path, model_config={"width": 3, "preset": "mamp", "depth": 2})
    assert "preset: checkpoint 'hacm', this run 'mamp'" in str(info.value)
    assert "depth: checkpoint (absent), this run 2" in str(info.value)
    load_weights(model, path, model_config={"width": 3, "preset": "hacm"})
    # An option added after the checkpoint was written, left at None ("not given"), agrees.
    load_weights(model, path, model_config={"width": 3, "preset": "hacm", "target": None})
    # So does a switch added later and left off; switched on, it differs.
    load_weights(model, path, model_config={"width": 3, "preset": "hacm", "velocity": False})
    with pytest.raises(CheckpointError, match=r"velocity: checkpoint \(absent\), this run True"):
        load_weights(model, path, model_config={"width": 3, "preset": "hacm", "velocity": True})
    with pytest.raises(CheckpointError, match=r"width: checkpoint 3, this run False"):
        load_weights(model, path, model_config={"width": False, "preset": "hacm"})
    load_weights(model, path)  # no configuration given: only the weights are checked
