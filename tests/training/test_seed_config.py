from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from skelmask.training import (
    DistributedContext,
    FinetuneConfig,
    MetricLogger,
    PretrainConfig,
    ProbeConfig,
    load_checkpoint,
    progress,
    save_checkpoint,
    seed_everything,
    setup_distributed,
    worker_init_fn,
)
from skelmask.training.seed import epoch_seed, rng_state, set_rng_state


def _draw() -> tuple[float, float, float]:
    return torch.rand(()).item(), float(np.random.rand()), random.random()  # noqa: NPY002


def test_seed_everything_is_reproducible_and_rank_dependent() -> None:
    seed_everything(3)
    first = _draw()
    seed_everything(3)
    assert _draw() == first
    seed_everything(3, rank=1)
    assert _draw() != first


def test_rng_state_survives_a_weights_only_checkpoint(tmp_path: Path) -> None:
    seed_everything(5)
    np.random.randn()  # noqa: NPY002  (leaves a cached gaussian in numpy's state)
    save_checkpoint(tmp_path / "rng.pt", {"model": {}, "rng": rng_state()})
    expected = _draw()
    seed_everything(99)
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert _draw() == expected


def test_worker_init_fn_seeds_numpy_and_random_from_torch() -> None:
    draws = []
    for seed in (7, 7, 8):
        torch.manual_seed(seed)
        worker_init_fn(0)
        draws.append((float(np.random.rand()), random.random()))  # noqa: NPY002
    assert draws[0] == draws[1] != draws[2]


def test_epoch_seed_depends_on_every_input() -> None:
    seeds = {epoch_seed(s, r, e) for s in range(2) for r in range(2) for e in range(3)}
    assert len(seeds) == 12
    assert all(0 <= s < 2**63 for s in seeds)


@pytest.mark.parametrize("config", [PretrainConfig(), ProbeConfig(), FinetuneConfig()])
def test_configs_round_trip_through_json(config: PretrainConfig) -> None:
    data = json.loads(json.dumps(config.to_dict()))
    assert type(config).from_dict(data) == config


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ValueError, match=r"unknown PretrainConfig keys: \['lr_typo'\]"):
        PretrainConfig.from_dict({"lr_typo": 1.0})
    with pytest.raises(ValueError, match="epochs"):
        ProbeConfig(epochs=0)
    with pytest.raises(ValueError, match=r"batch_size must be >= 2 for the linear probe .* got 1"):
        ProbeConfig(batch_size=1)  # failed inside BatchNorm at the first step
    with pytest.raises(ValueError, match="labelled_ratio"):
        FinetuneConfig(labelled_ratio=0.0)
    with pytest.raises(ValueError, match="layer_decay"):
        FinetuneConfig(layer_decay=1.5)


def test_setup_distributed_without_torchrun_is_single_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    context = setup_distributed("cpu")
    assert context == DistributedContext()
    assert context.is_main
    assert not DistributedContext(rank=1, world_size=2).is_main
    with pytest.raises(ValueError, match="device must be"):
        setup_distributed("tpu")


def test_metric_logger_writes_json_lines_only_when_enabled(tmp_path: Path) -> None:
    MetricLogger(tmp_path / "main.jsonl").log({"epoch": 0, "loss": 1.5})
    MetricLogger(tmp_path / "main.jsonl").log({"epoch": 1, "loss": 1.0})
    MetricLogger(tmp_path / "other.jsonl", enabled=False).log({"epoch": 0})
    lines = (tmp_path / "main.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"epoch": 0, "loss": 1.5},
        {"epoch": 1, "loss": 1.0},
    ]
    assert not (tmp_path / "other.jsonl").exists()
    assert list(progress(iter([1, 2]), total=2, desc="x")) == [1, 2]
