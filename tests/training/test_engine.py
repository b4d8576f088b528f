from __future__ import annotations

import multiprocessing
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

from skelmask.training import (
    CHECKPOINT_NAME,
    CheckpointError,
    DistributedContext,
    EvalResult,
    FinetuneConfig,
    MetricLogger,
    PretrainConfig,
    ProbeConfig,
    cleanup_distributed,
    extract_features,
    finetune,
    knn_accuracy,
    labelled_subset,
    linear_probe,
    pretrain,
    seed_everything,
    setup_distributed,
    warmup_cosine,
)

CPU = DistributedContext()

# --- toy models that follow the interfaces (no dependency on skelmask.models) ---------------


@dataclass(frozen=True)
class ToyOutput:
    loss: Tensor


class ToyMAE(nn.Module):
    """Reconstructs x (B, 8) from a masked copy; the random mask draws from the global RNG."""

    def __init__(self, random_mask: bool = True, hidden: int = 16) -> None:
        super().__init__()
        self.random_mask = random_mask
        self.net = nn.Sequential(nn.Linear(8, hidden), nn.Tanh(), nn.Linear(hidden, 8))
        self.register_buffer("fixed_keep", torch.arange(8) % 3 != 0)

    def forward(self, x: Tensor) -> ToyOutput:
        keep = torch.rand_like(x) > 0.4 if self.random_mask else self.fixed_keep
        return ToyOutput(loss=(self.net(x * keep) - x).pow(2).mean())


def _subspace_data(n: int = 32, seed: int = 0) -> TensorDataset:
    """Points on a 2-D subspace of R^8: a masked coordinate is predictable from the others."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=generator) @ torch.randn(2, 8, generator=generator)
    return TensorDataset(x, torch.zeros(n, dtype=torch.int64))


def _model(random_mask: bool = True, seed: int = 1) -> ToyMAE:
    torch.manual_seed(seed)
    return ToyMAE(random_mask)


def _assert_same_weights(a: nn.Module, b: nn.Module, **tolerance: float) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(x, y, msg=name, **tolerance)  # type: ignore[arg-type]


# --- pre-training --------------------------------------------------------------------------


def test_pretrain_lowers_the_loss_and_follows_the_schedule(tmp_path: Path) -> None:
    config = PretrainConfig(epochs=12, batch_size=8, lr=1e-2, min_lr=1e-3, warmup_epochs=2)
    history = pretrain(
        _model(),
        _subspace_data(),
        config,
        context=CPU,
        logger=MetricLogger(tmp_path / "log.jsonl"),
    )
    assert [r["epoch"] for r in history] == list(range(12))
    assert history[-1]["loss"] < 0.3 * history[0]["loss"]
    # 32 samples / batch 8 = 4 iterations per epoch; the lr after epoch e is that of step 4(e+1).
    for record in history:
        step = 4 * (int(record["epoch"]) + 1)
        expected = warmup_cosine(step, base_lr=1e-2, min_lr=1e-3, warmup_steps=8, total_steps=48)
        assert record["lr"] == pytest.approx(expected)
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 12


class CrashingDataset(Dataset[tuple[Tensor, Tensor]]):
    """Raises after a number of item reads: a job killed in the middle of an epoch."""

    def __init__(self, base: TensorDataset, reads_before_crash: int) -> None:
        self.base = base
        self.reads_left = reads_before_crash

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if self.reads_left == 0:
            raise RuntimeError("simulated crash")
        self.reads_left -= 1
        return self.base[index]  # type: ignore[no-any-return]


def test_resume_continues_exactly(tmp_path: Path) -> None:
    data = _subspace_data()
    config = PretrainConfig(
        epochs=4, batch_size=8, lr=1e-2, min_lr=1e-3, warmup_epochs=1, grad_clip=1.0, seed=3
    )
    straight = _model()
    straight_history = pretrain(straight, data, config, context=CPU)

    # Crash in the middle of epoch 2 (32 samples per epoch): the checkpoint holds epoch 1.
    interrupted = _model()
    with pytest.raises(RuntimeError, match="simulated crash"):
        pretrain(
            interrupted,
            CrashingDataset(data, 2 * 32 + 12),
            config,
            context=CPU,
            output_dir=tmp_path,
        )
    checkpoint = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert checkpoint["epoch"] == 1
    assert set(checkpoint) == {
        "model",
        "optimizer",
        "scheduler",
        "scaler",
        "epoch",
        "rng",
        "config",
        "model_config",
        "history",
    }
    assert checkpoint["config"] == config.to_dict()
    assert len(checkpoint["rng"]) == 1

    # A new process would build a fresh model with other weights and another global RNG state.
    seed_everything(1234)
    resumed = _model(seed=77)
    resumed_history = pretrain(
        resumed, data, config, context=CPU, output_dir=tmp_path, resume=tmp_path / CHECKPOINT_NAME
    )
    _assert_same_weights(straight, resumed, rtol=0.0, atol=0.0)
    assert resumed_history == straight_history
    assert torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["epoch"] == 3


def test_resume_from_a_bad_file_names_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    torch.save({"model": {}}, bad)
    with pytest.raises(CheckpointError, match="lacks the keys") as info:
        pretrain(_model(), _subspace_data(), PretrainConfig(epochs=1), context=CPU, resume=bad)
    assert str(bad) in str(info.value)


def test_resume_into_another_model_names_the_checkpoint_and_the_mismatch(tmp_path: Path) -> None:
    data = _subspace_data()
    config = PretrainConfig(epochs=1, batch_size=8, warmup_epochs=0)
    pretrain(_model(), data, config, context=CPU, output_dir=tmp_path, model_config={"hidden": 16})
    checkpoint = tmp_path / CHECKPOINT_NAME
    assert torch.load(checkpoint, weights_only=True)["model_config"] == {"hidden": 16}
    longer = PretrainConfig(epochs=2, batch_size=8, warmup_epochs=0)
    with pytest.raises(CheckpointError, match="hidden: checkpoint 16, this run 32") as info:
        pretrain(
            ToyMAE(hidden=32),
            data,
            longer,
            context=CPU,
            resume=checkpoint,
            model_config={"hidden": 32},
        )
    assert str(checkpoint) in str(info.value)
    # Without configurations to compare, the weights' shapes are named instead of a RuntimeError.
    with pytest.raises(
        CheckpointError, match=r"net\.0\.weight: checkpoint \(16, 8\), model \(32, 8\)"
    ):
        pretrain(ToyMAE(hidden=32), data, longer, context=CPU, resume=checkpoint)


def test_pretrain_rejects_a_dataset_without_a_full_batch() -> None:
    with pytest.raises(ValueError, match="no full batch"):
        pretrain(_model(), _subspace_data(4), PretrainConfig(batch_size=8), context=CPU)


def test_pretrain_stops_on_a_non_finite_loss() -> None:
    data = _subspace_data()
    data.tensors = (data.tensors[0] * float("nan"), data.tensors[1])
    with pytest.raises(FloatingPointError, match="loss is nan at epoch 0"):
        pretrain(_model(), data, PretrainConfig(epochs=1, batch_size=8), context=CPU)


# --- features, kNN, linear probe, fine-tune -------------------------------------------------


class ToyEncoder(nn.Module):
    """Frozen-feature encoder: (N, 2) -> (N, 4) through a fixed linear map, with BEiT layer ids."""

    embed_dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(2, 4)
        self.block = nn.Linear(4, 4)
        self.dropout = nn.Dropout(0.5)  # active only in train mode: features must be eval-mode

    def forward_features(self, x: Tensor) -> Tensor:
        return self.dropout(self.block(self.embed(x)))  # type: ignore[no-any-return]

    def no_weight_decay(self) -> set[str]:
        return set()

    def layer_id(self, name: str) -> int:
        return 0 if name.startswith("embed") else 1


class ToyClassifier(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.encoder = ToyEncoder()
        self.head = nn.Linear(4, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder.forward_features(x))  # type: ignore[no-any-return]


def _blobs(per_class: int, seed: int) -> TensorDataset:
    """Three well-separated Gaussian blobs in 2-D (linearly separable)."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[4.0, 0.0], [-4.0, 4.0], [-4.0, -4.0]])
    labels = torch.arange(3).repeat_interleave(per_class)
    x = centres[labels] + 0.5 * torch.randn(len(labels), 2, generator=generator)
    return TensorDataset(x, labels)


def test_extract_features_is_in_order_in_eval_mode_and_restores_the_mode() -> None:
    torch.manual_seed(0)
    encoder = ToyEncoder()
    data = _blobs(3, seed=0)
    features, labels = extract_features(encoder, data, batch_size=4, context=CPU)
    assert encoder.training
    encoder.eval()
    with torch.no_grad():
        torch.testing.assert_close(features, encoder.forward_features(data.tensors[0]))
    assert labels.tolist() == data.tensors[1].tolist()
    assert features.dtype == torch.float32
    assert labels.dtype == torch.int64


def test_knn_matches_a_hand_computation() -> None:
    # Test point (1, 0). Neighbours by cosine: a (sim 1, class 1), b and c (sim 0.6, class 0);
    # d (sim -1) falls outside k = 3. Class 1 scores exp(1/T), class 0 scores 2·exp(0.6/T),
    # so class 1 wins iff T < 0.4 / ln 2 ≈ 0.577: the weighting, not the majority, decides.
    train = 5 * torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.6, -0.8], [-1.0, 0.0]])  # scale-free
    train_labels = torch.tensor([1, 0, 0, 1])
    test = torch.tensor([[2.0, 0.0], [-3.0, 0.1]])  # the second: neighbours d, b, c
    # Second point: d (sim ≈ 0.9994, class 1), b, c (sim ≈ -0.57/-0.63, class 0): class 1 wins
    # at T = 0.1 (exp(9.99) vs 2·exp(-5.7)) and at T = 1 (2.72 vs 2 · 0.59 ≈ 1.1).
    test_labels = torch.tensor([1, 1])
    assert knn_accuracy(train, train_labels, test, test_labels, k=3, temperature=0.1) == 1.0
    assert knn_accuracy(train, train_labels, test, test_labels, k=3, temperature=1.0) == 0.5
    # k larger than the training set uses all four points: class 1 adds exp(-1/T).
    assert knn_accuracy(train, train_labels, test, test_labels, k=50, temperature=0.1) == 1.0
    with pytest.raises(ValueError, match="same dimension"):
        knn_accuracy(train, train_labels, test[:, :1], test_labels)


def test_linear_probe_separates_blobs_and_reports_last_and_best(tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = ToyEncoder()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    result = linear_probe(
        encoder,
        _blobs(20, seed=1),
        _blobs(10, seed=2),
        3,
        ProbeConfig(epochs=8, batch_size=16, lr=0.1),
        context=CPU,
        logger=MetricLogger(tmp_path / "probe.jsonl"),
    )
    assert result.last_accuracy >= 0.95
    assert result.last_accuracy == result.history[-1]["test_accuracy"]
    assert result.best_accuracy == max(r["test_accuracy"] for r in result.history)
    assert result.history[result.best_epoch]["test_accuracy"] == result.best_accuracy
    assert len(result.history) == 8
    assert encoder.training  # mode restored
    for name, value in encoder.state_dict().items():  # the encoder stays frozen
        torch.testing.assert_close(value, before[name], rtol=0.0, atol=0.0)
    summary = (tmp_path / "probe.jsonl").read_text().splitlines()[-1]
    assert "last_epoch_test_accuracy" in summary
    assert "best_epoch_test_accuracy_reference_only" in summary


class CountingDataset(TensorDataset):
    """Counts the samples read, to see how often a split is encoded."""

    reads = 0

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        self.reads += 1
        return super().__getitem__(index)


def test_linear_probe_encodes_the_test_split_once_and_tests_every_epoch() -> None:
    # The encoder is frozen, so re-encoding the test split every epoch only cost time; the head
    # is still tested after every epoch.
    torch.manual_seed(0)
    test = CountingDataset(*_blobs(10, seed=2).tensors)
    epochs = 5
    result = linear_probe(
        ToyEncoder(),
        _blobs(20, seed=1),
        test,
        3,
        ProbeConfig(epochs=epochs, batch_size=16, lr=0.1),
        context=CPU,
    )
    assert test.reads == len(test)
    assert len(result.history) == epochs


def test_eval_result_reports_the_last_epoch_not_the_best() -> None:
    history = [{"test_accuracy": a} for a in (0.5, 0.9, 0.9, 0.7)]
    result = EvalResult.from_history(history)
    assert (result.last_accuracy, result.best_accuracy, result.best_epoch) == (0.7, 0.9, 1)
    assert result.summary().startswith("test accuracy (last epoch): 70.00%")
    assert "best epoch 1 (selected on test, reference only): 90.00%" in result.summary()


class ArraysDataset(TensorDataset):
    """Exposes its labels as ``arrays.labels``, like ``SkeletonDataset``."""

    @property
    def arrays(self) -> object:
        return type("Arrays", (), {"labels": self.tensors[1].numpy()})()


@pytest.mark.parametrize("dataset_type", [TensorDataset, ArraysDataset])
def test_finetune_with_layer_decay_and_a_labelled_subset(
    dataset_type: Callable[..., TensorDataset],
) -> None:
    torch.manual_seed(0)
    train = dataset_type(*_blobs(40, seed=3).tensors)
    config = FinetuneConfig(
        epochs=6, batch_size=8, lr=0.05, min_lr=1e-3, warmup_epochs=1, labelled_ratio=0.25
    )
    result = finetune(ToyClassifier(3), train, _blobs(10, seed=4), config, context=CPU)
    assert result.last_accuracy >= 0.9
    # 25 % of 40 per class = 10 per class, 30 samples, 3 full batches of 8 per epoch.
    assert len(result.history) == 6


def test_probe_and_finetune_stop_on_a_non_finite_loss_naming_the_stage() -> None:
    torch.manual_seed(0)
    nan_data = TensorDataset(torch.full((16, 2), float("nan")), torch.arange(16) % 3)
    with pytest.raises(FloatingPointError, match="linear_probe loss is nan at epoch 0"):
        linear_probe(
            ToyEncoder(),
            nan_data,
            _blobs(2, seed=0),
            3,
            ProbeConfig(epochs=1, batch_size=8),
            context=CPU,
        )
    config = FinetuneConfig(epochs=1, batch_size=8, warmup_epochs=0, layer_decay=None)
    with pytest.raises(FloatingPointError, match="finetune loss is nan at epoch 0"):
        finetune(ToyClassifier(3), nan_data, _blobs(2, seed=0), config, context=CPU)


def test_a_probe_of_one_class_is_refused() -> None:
    data = _blobs(4, seed=0)
    with pytest.raises(ValueError, match="num_classes must be at least 2"):
        linear_probe(ToyEncoder(), data, data, 1, ProbeConfig(epochs=1, batch_size=4), context=CPU)


def test_every_stage_reports_plain_lines_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    torch.manual_seed(0)
    pretrain(_model(), _subspace_data(), PretrainConfig(epochs=2, batch_size=8), context=CPU)
    linear_probe(
        ToyEncoder(),
        _blobs(8, seed=1),
        _blobs(2, seed=2),
        3,
        ProbeConfig(epochs=1, batch_size=8),
        context=CPU,
    )
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    # One line per loop: 32 samples / batch 8 = 4 steps; 24 / 8 = 3; the test split in one batch,
    # encoded once ("features") and then tested after the epoch.
    assert [line.split(" done in ")[0] for line in lines] == [
        "pretrain 0: 4/4",
        "pretrain 1: 4/4",
        "features: 1/1",
        "linear_probe 0: 3/3",
        "test: 1/1",
    ]


# --- semi-supervised subset ------------------------------------------------------------------


def test_labelled_subset_is_balanced_deterministic_and_rank_independent() -> None:
    labels = np.repeat([0, 1, 2, 3], [50, 20, 3, 1])
    subsets = []
    for rank in (0, 1):
        seed_everything(0, rank)  # the global RNG (seeded per rank) must not matter
        subsets.append(labelled_subset(labels, 0.1, seed=7))
    np.testing.assert_array_equal(subsets[0], subsets[1])
    subset = subsets[0]
    assert np.bincount(labels[subset]).tolist() == [5, 2, 1, 1]  # at least one per class
    assert np.all(np.diff(subset) > 0)  # sorted, no duplicates
    assert subset.dtype == np.int64
    np.testing.assert_array_equal(labelled_subset(torch.from_numpy(labels), 0.1, seed=7), subset)
    assert not np.array_equal(labelled_subset(labels, 0.1, seed=8), subset)
    np.testing.assert_array_equal(labelled_subset(labels, 1.0, seed=0), np.arange(len(labels)))
    with pytest.raises(ValueError, match="ratio"):
        labelled_subset(labels, 1.5, seed=0)
    with pytest.raises(ValueError, match="1-D"):
        labelled_subset(labels.reshape(2, -1), 0.5, seed=0)


# --- DDP: 2 CPU processes over gloo ---------------------------------------------------------
#
# One process with batch 2b and two ranks with batch b see the same samples at every step: the
# DistributedSampler permutes the indices with seed + epoch (independent of the rank count);
# rank r takes permuted positions r, r + 2, r + 4, …, so step k of rank r covers positions
# 2bk + r + 2j (j < b), and the two ranks together cover 2bk … 2bk + 2b - 1, which is exactly
# step k of the single process. The loss is a batch mean and the model has no randomness, so
# DDP's averaged gradient equals the single-process gradient up to float summation order.

WORLD_SIZE = 2
LOCAL_BATCH = 4
DDP_CONFIG = {"epochs": 2, "lr": 1e-2, "min_lr": 1e-3, "warmup_epochs": 1, "grad_clip": 1.0}


def _run_processes(worker: Callable[..., None], *args: object) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    start_method = "spawn"
    if "forkserver" in multiprocessing.get_all_start_methods():
        # A server that imported torch once forks workers in ~0.1 s instead of seconds per spawn;
        # DistributedDataParallel imports torch._dynamo, several seconds more per process.
        multiprocessing.get_context("forkserver").set_forkserver_preload(
            ["torch", "torch._dynamo", "skelmask"]
        )
        start_method = "forkserver"
    mp.start_processes(
        worker, args=(port, *args), nprocs=WORLD_SIZE, join=True, start_method=start_method
    )


def _ddp_worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD_SIZE),
    )
    context = setup_distributed("cpu")
    try:
        model = _model(random_mask=False)
        config = PretrainConfig(batch_size=LOCAL_BATCH, **DDP_CONFIG)  # type: ignore[arg-type]
        history = pretrain(
            model, _subspace_data(), config, context=context, output_dir=Path(out_dir) / "ckpt"
        )
        torch.save(
            {"model": model.state_dict(), "history": history, "rank": context.rank},
            Path(out_dir) / f"rank{rank}.pt",
        )
    finally:
        cleanup_distributed()


def test_ddp_on_two_cpu_ranks_matches_one_process_with_the_global_batch(tmp_path: Path) -> None:
    _run_processes(_ddp_worker, str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD_SIZE)]
    assert [result["rank"] for result in ranks] == [0, 1]

    single = _model(random_mask=False)
    config = PretrainConfig(batch_size=WORLD_SIZE * LOCAL_BATCH, **DDP_CONFIG)  # type: ignore[arg-type]
    history = pretrain(single, _subspace_data(), config, context=CPU)

    for result in ranks:
        for name, value in single.state_dict().items():
            torch.testing.assert_close(result["model"][name], value, rtol=1e-5, atol=1e-6)
        for got, expected in zip(result["history"], history, strict=True):
            assert got["loss"] == pytest.approx(expected["loss"], rel=1e-5)
            assert got["lr"] == pytest.approx(expected["lr"])
    # Only rank 0 wrote, once, a checkpoint holding both ranks' RNG states.
    assert os.listdir(tmp_path / "ckpt") == [CHECKPOINT_NAME]
    checkpoint = torch.load(tmp_path / "ckpt" / CHECKPOINT_NAME, weights_only=True)
    assert len(checkpoint["rng"]) == WORLD_SIZE
    assert checkpoint["epoch"] == 1


@pytest.mark.parametrize(
    ("call", "kind"),
    [
        (lambda model, data, config: pretrain(model, data, config, context=DistributedContext()), "PretrainConfig"),
        (lambda model, data, config: linear_probe(model, data, data, 2, config, context=DistributedContext()), "ProbeConfig"),
        (lambda model, data, config: finetune(model, data, data, config, context=DistributedContext()), "FinetuneConfig"),
    ],
)  # fmt: skip
def test_a_dict_config_is_a_type_error_that_says_how_to_build_one(call: Any, kind: str) -> None:
    # A dict read from YAML used to fail with an AttributeError on .seed.
    with pytest.raises(
        TypeError,
        match=rf"config must be a {kind}, got dict; build one with {kind}\.from_dict\(config\)",
    ):
        call(None, None, {"epochs": 1})


def test_feature_extraction_takes_a_numpy_batch_size() -> None:
    # DataLoader refused np.int64(4) with "should be a positive integer value, but got 4".
    encoder = torch.nn.Identity()
    encoder.forward_features = encoder.forward  # type: ignore[assignment]
    data = torch.utils.data.TensorDataset(torch.arange(6.0).view(3, 2), torch.tensor([0, 1, 0]))
    features, labels = extract_features(
        encoder, data, batch_size=np.int64(2), context=DistributedContext()
    )  # type: ignore[arg-type]
    assert torch.equal(features, torch.arange(6.0).view(3, 2))
    assert labels.tolist() == [0, 1, 0]
