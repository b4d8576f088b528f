from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

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


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: PretrainConfig(epochs=True), r"PretrainConfig\.epochs must be an integer >= 1, got True"),
        (lambda: PretrainConfig(epochs=3.0), r"PretrainConfig\.epochs must be an integer >= 1, got 3\.0"),
        (lambda: PretrainConfig(lr=float("nan")), r"PretrainConfig\.lr must be a finite number > 0, got nan"),
        (lambda: PretrainConfig(lr="1e-3"), r"PretrainConfig\.lr must be a finite number > 0, got '1e-3'"),
        (lambda: PretrainConfig(min_lr=-1.0), r"PretrainConfig\.min_lr must be a finite number >= 0"),
        (lambda: PretrainConfig(warmup_epochs=-1), r"PretrainConfig\.warmup_epochs must be an integer >= 0"),
        (lambda: PretrainConfig(amp="false"), r"PretrainConfig\.amp must be True or False, got 'false'"),
        (lambda: PretrainConfig(compile=1), r"PretrainConfig\.compile must be True or False, got 1"),
        (lambda: PretrainConfig(betas=(0.9,)), r"PretrainConfig\.betas must be two numbers in \[0, 1\)"),
        (lambda: PretrainConfig(betas=(0.9, 1.0)), r"PretrainConfig\.betas must be two numbers in \[0, 1\)"),
        (lambda: PretrainConfig(grad_clip=0.0), r"PretrainConfig\.grad_clip must be None or a finite number > 0"),
        (lambda: PretrainConfig(seed=-1), r"PretrainConfig\.seed must be an integer >= 0, got -1"),
        (lambda: ProbeConfig(momentum=1.0), r"ProbeConfig\.momentum must be a finite number in \[0, 1\)"),
        (lambda: ProbeConfig(num_workers=-1), r"ProbeConfig\.num_workers must be an integer >= 0"),
        (lambda: FinetuneConfig(labelled_ratio="0.1"), r"FinetuneConfig\.labelled_ratio must be None or a finite number in \(0, 1\], got '0\.1'"),
        (lambda: FinetuneConfig(label_smoothing=1.0), r"FinetuneConfig\.label_smoothing must be a finite number in \[0, 1\)"),
        (lambda: FinetuneConfig(weight_decay=float("inf")), r"FinetuneConfig\.weight_decay must be a finite number >= 0"),
    ],
)  # fmt: skip
def test_config_fields_are_checked_for_type_and_range(build: Any, match: str) -> None:
    # Hand-edited JSON or YAML gives strings and bools where numbers belong: "false" is truthy,
    # and a NaN learning rate or a float epoch count used to pass unnoticed.
    with pytest.raises(ValueError, match=match):
        build()


def test_config_fields_are_stored_as_python_numbers() -> None:
    config = PretrainConfig(epochs=np.int64(3), lr=np.float32(0.5), betas=[0.9, np.float32(0.5)])  # type: ignore[arg-type]
    assert (type(config.epochs), type(config.lr)) == (int, float)
    assert config.betas == (0.9, 0.5)
    assert json.loads(json.dumps(config.to_dict()))["epochs"] == 3
    assert FinetuneConfig(layer_decay=None, labelled_ratio=np.float32(0.5)).labelled_ratio == 0.5


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
