"""Tests of CrossContrastLoss against an explicit per-sample reference implementation."""

from __future__ import annotations

import math
import multiprocessing
import socket
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from skelmask.losses.cross_contrast import CrossContrastLoss
from skelmask.maskers.cross import CrossMasker
from skelmask.maskers.random import RandomMasker
from skelmask.tokens import gather_tokens, mask_result_from_bool

OFFICIAL = {"temperature": 1.0, "normalize": False, "include_inter": True, "weight": 1.0}


def _manual_loss(
    features: torch.Tensor,
    branch: torch.Tensor,
    *,
    temperature: float = 0.1,
    normalize: bool = True,
    include_inter: bool = True,
    weight: float = 1.0,
    valid: list[bool] | None = None,
    rows: range | None = None,
) -> float:
    """Loops over samples and matrix entries; ``rows`` restricts the queries (one DDP rank)."""
    feats = features.detach().double()
    batch, num_keep, _ = feats.shape
    valid = [True] * batch if valid is None else valid
    rows = range(batch) if rows is None else rows
    temporal, spatial, overall = [], [], []
    for i in range(batch):
        g = feats[i].mean(dim=0)
        t_tokens = [feats[i, k] for k in range(num_keep) if int(branch[i, k]) == 0]
        s_tokens = [feats[i, k] for k in range(num_keep) if int(branch[i, k]) == 1]
        a = torch.stack(t_tokens).mean(dim=0) if t_tokens else g
        b = torch.stack(s_tokens).mean(dim=0) if s_tokens else g
        if normalize:
            a, b, g = (v / max(float(v.norm()), 1e-12) for v in (a, b, g))
        temporal.append(a)
        spatial.append(b)
        overall.append(g)

    def term(queries: list[torch.Tensor], keys: list[torch.Tensor]) -> float:
        columns = [j for j in range(batch) if valid[j]]
        total, count = 0.0, 0
        for i in rows:
            if not valid[i]:
                continue
            logits = [float(queries[i] @ keys[j]) / temperature for j in columns]
            top = max(logits)
            exps = [math.exp(x - top) for x in logits]
            for j, e in zip(columns, exps, strict=True):
                total += (e / sum(exps) - float(i == j)) ** 2
                count += 1
        return total / count if count else 0.0

    loss = term(spatial, overall) + term(temporal, overall)
    if include_inter:
        loss += term(temporal, spatial)
    return weight * loss


def _random_branch(batch: int, num_keep: int, generator: torch.Generator) -> torch.Tensor:
    """Random 0/1 branch ids with both branches present in every sample."""
    branch = torch.randint(0, 2, (batch, num_keep), generator=generator)
    branch[:, 0] = 0
    branch[:, 1] = 1
    return branch


@pytest.mark.parametrize("temperature", [0.05, 0.5, 1.0])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("include_inter", [True, False])
def test_matches_manual_reference(temperature: float, normalize: bool, include_inter: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(5, 7, 6, generator=generator)
    branch = _random_branch(5, 7, generator)
    loss_fn = CrossContrastLoss(
        temperature, normalize=normalize, include_inter=include_inter, weight=0.7
    )
    expected = _manual_loss(
        features,
        branch,
        temperature=temperature,
        normalize=normalize,
        include_inter=include_inter,
        weight=0.7,
    )
    assert loss_fn(features, branch).item() == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_bool_branch_ids_are_accepted() -> None:
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(4, 6, 5, generator=generator)
    branch = _random_branch(4, 6, generator)
    loss_fn = CrossContrastLoss()
    torch.testing.assert_close(loss_fn(features, branch.bool()), loss_fn(features, branch))


def test_unequal_branch_counts_use_true_counts() -> None:
    """Regression test for B11: the official code splits at K // 2 whatever the branches."""
    generator = torch.Generator().manual_seed(2)
    features = torch.randn(4, 5, 8, generator=generator)
    # 1, 2, 3 and 4 temporal tokens out of 5, in shuffled positions.
    branch = torch.tensor(
        [[1, 1, 0, 1, 1], [0, 1, 1, 0, 1], [1, 0, 0, 1, 0], [0, 0, 1, 0, 0]], dtype=torch.int64
    )
    loss = CrossContrastLoss(**OFFICIAL)(features, branch).item()
    assert loss == pytest.approx(_manual_loss(features, branch, **OFFICIAL), rel=1e-5)
    half_split = torch.tensor([0, 0, 1, 1, 1]).expand(4, -1)
    assert loss != pytest.approx(_manual_loss(features, half_split, **OFFICIAL), rel=1e-3)


def test_sample_with_one_branch_falls_back_to_global_mean() -> None:
    generator = torch.Generator().manual_seed(3)
    features = torch.randn(3, 4, 5, generator=generator, requires_grad=True)
    branch = torch.tensor([[0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0, 1]])
    loss = CrossContrastLoss()(features, branch)
    assert loss.item() == pytest.approx(_manual_loss(features, branch), rel=1e-5)
    loss.backward()
    assert features.grad is not None
    assert torch.isfinite(features.grad).all()


def test_gradients_reach_features() -> None:
    generator = torch.Generator().manual_seed(4)
    features = torch.randn(6, 8, 16, generator=generator, requires_grad=True)
    branch = _random_branch(6, 8, generator)
    CrossContrastLoss()(features, branch).backward()
    assert features.grad is not None
    assert torch.isfinite(features.grad).all()
    # Every sample takes part in the contrast, so every sample gets a gradient.
    assert (features.grad.flatten(1).abs().sum(dim=1) > 0).all()


@pytest.mark.parametrize("normalize", [True, False])
def test_batch_size_one_gives_zero(normalize: bool) -> None:
    features = torch.randn(1, 4, 8, requires_grad=True)
    branch = torch.tensor([[0, 1, 0, 1]])
    loss = CrossContrastLoss(normalize=normalize)(features, branch)
    assert loss.item() == 0.0
    loss.backward()
    assert features.grad is not None
    assert torch.isfinite(features.grad).all()


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("padded_rows", [[2, 3], [0, 1, 2, 3]])
def test_padded_zero_bodies_give_no_nan(normalize: bool, padded_rows: list[int]) -> None:
    generator = torch.Generator().manual_seed(5)
    data = torch.randn(4, 6, 8, generator=generator)
    data[padded_rows] = 0.0
    features = data.requires_grad_()
    branch = _random_branch(4, 6, generator)
    loss_fn = CrossContrastLoss(normalize=normalize)
    valid = torch.ones(4, dtype=torch.bool)
    valid[padded_rows] = False
    for loss in (loss_fn(features, branch), loss_fn(features, branch, valid=valid)):
        assert torch.isfinite(loss)
        (grad,) = torch.autograd.grad(loss, features)
        assert torch.isfinite(grad).all()


def test_valid_drops_rows_and_columns() -> None:
    generator = torch.Generator().manual_seed(6)
    features = torch.randn(5, 6, 8, generator=generator, requires_grad=True)
    branch = _random_branch(5, 6, generator)
    valid = torch.tensor([True, False, True, True, False])
    loss_fn = CrossContrastLoss(temperature=0.2)
    loss = loss_fn(features, branch, valid=valid)
    subset = loss_fn(features[valid], branch[valid])
    torch.testing.assert_close(loss, subset)
    assert loss.item() == pytest.approx(
        _manual_loss(features, branch, temperature=0.2, valid=valid.tolist()), rel=1e-5
    )
    loss.backward()
    assert features.grad is not None
    assert (features.grad[~valid] == 0).all()


def test_no_valid_sample_gives_zero() -> None:
    features = torch.randn(3, 4, 5)
    branch = torch.tensor([0, 1, 0, 1]).expand(3, -1)
    loss = CrossContrastLoss()(features, branch, valid=torch.zeros(3, dtype=torch.bool))
    assert loss.item() == 0.0


def test_official_options_on_hand_computed_example() -> None:
    # Sample 0: temporal token (2, 0), spatial token (0, 0) → a = (2, 0), b = 0, g = (1, 0).
    # Sample 1: temporal token (0, 0), spatial token (0, 2) → a = 0, b = (0, 2), g = (0, 1).
    # S₁ = softmax(b·gᵀ) = [[½, ½], [1 − s, s]], S₂ = softmax(a·gᵀ) = [[s, 1 − s], [½, ½]] with
    # s = e²/(1 + e²); S₃ = softmax(a·bᵀ) = all ½. MSEs: (½ + 2(1 − s)²)/4 twice, plus ¼.
    features = torch.tensor([[[2.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]]])
    branch = torch.tensor([[0, 1], [0, 1]])
    expected = 0.5 + (1.0 + math.e**2) ** -2
    loss = CrossContrastLoss(**OFFICIAL)(features, branch)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_defaults_do_not_saturate_where_official_options_do() -> None:
    """Encoder-like features: a large shared part and a small per-sample part (hacm.md §1.12)."""
    generator = torch.Generator().manual_seed(0)
    shared = torch.randn(256, generator=generator)
    per_sample = torch.randn(8, 1, 256, generator=generator)
    data = shared + 0.35 * per_sample + 0.1 * torch.randn(8, 4, 256, generator=generator)
    branch = torch.tensor([0, 1, 0, 1]).expand(8, -1)
    results = {}
    for name, loss_fn in {
        "official": CrossContrastLoss(**OFFICIAL),
        "default": CrossContrastLoss(),
    }.items():
        features = data.clone().requires_grad_()
        loss = loss_fn(features, branch)
        (grad,) = torch.autograd.grad(loss, features)
        results[name] = (loss.item(), grad.abs().max().item())
    assert results["official"][0] < 1e-9
    assert results["official"][1] < 1e-9
    assert results["default"][0] > 1e-2
    assert results["default"][1] > 1e-5


def test_low_precision_input_gives_float32_loss() -> None:
    generator = torch.Generator().manual_seed(7)
    features = torch.randn(4, 6, 8, generator=generator)
    branch = _random_branch(4, 6, generator)
    loss_fn = CrossContrastLoss()
    loss = loss_fn(features.to(torch.bfloat16), branch)
    assert loss.dtype == torch.float32
    expected = loss_fn(features.to(torch.bfloat16).float(), branch)
    torch.testing.assert_close(loss, expected)


def test_works_with_a_cross_maskers_visible_branch() -> None:
    generator = torch.Generator().manual_seed(8)
    tokens = torch.randn(3, 8, 4, generator=generator)
    mask = torch.tensor([[False, True] * 4, [True, False] * 4, [False, False, True, True] * 2])
    token_branch = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    masker = CrossMasker(RandomMasker(), RandomMasker(), partition=token_branch.view(4, 2))
    result = mask_result_from_bool(mask, num_keep=4, grid_size=(4, 2))
    branch = masker.visible_branch(result)
    assert torch.equal(branch, token_branch[result.ids_keep])
    visible = gather_tokens(tokens, result.ids_keep)
    loss = CrossContrastLoss(temperature=0.5)(visible, branch)
    assert loss.item() == pytest.approx(_manual_loss(visible, branch, temperature=0.5), rel=1e-5)


def test_compiled_matches_eager() -> None:
    generator = torch.Generator().manual_seed(9)
    data = torch.randn(4, 6, 8, generator=generator)
    branch = _random_branch(4, 6, generator)
    valid = torch.tensor([True, True, False, True])
    loss_fn = CrossContrastLoss(temperature=0.2)
    compiled = torch.compile(loss_fn, backend="eager", fullgraph=True)
    eager_features = data.clone().requires_grad_()
    compiled_features = data.clone().requires_grad_()
    eager = loss_fn(eager_features, branch, valid)
    result = compiled(compiled_features, branch, valid)
    torch.testing.assert_close(result, eager)
    eager.backward()
    result.backward()
    torch.testing.assert_close(compiled_features.grad, eager_features.grad)


def test_gather_distributed_without_process_group_is_local() -> None:
    generator = torch.Generator().manual_seed(10)
    features = torch.randn(4, 6, 8, generator=generator)
    branch = _random_branch(4, 6, generator)
    torch.testing.assert_close(
        CrossContrastLoss(gather_distributed=True)(features, branch),
        CrossContrastLoss()(features, branch),
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"weight": -1.0}, "weight"),
    ],
)
def test_rejects_bad_options(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CrossContrastLoss(**kwargs)  # type: ignore[arg-type]


def test_rejects_bad_inputs() -> None:
    loss_fn = CrossContrastLoss()
    features = torch.randn(2, 4, 3)
    branch = torch.tensor([[0, 1, 0, 1]] * 2)
    with pytest.raises(ValueError, match=r"features must be a non-empty \(B, K, D\)"):
        loss_fn(features[0], branch)
    with pytest.raises(ValueError, match=r"branch must have shape \(B, K\) = \(2, 4\)"):
        loss_fn(features, branch[:, :3])
    with pytest.raises(ValueError, match="branch must hold 0"):
        loss_fn(features, branch * 2)
    with pytest.raises(ValueError, match="integer or bool"):
        loss_fn(features, branch.float())
    with pytest.raises(ValueError, match=r"valid must be a bool tensor of shape \(B,\) = \(2,\)"):
        loss_fn(features, branch, valid=torch.ones(2))
    with pytest.raises(ValueError, match="valid must be"):
        loss_fn(features, branch, valid=torch.ones(3, dtype=torch.bool))


# --- distributed: 2 CPU processes over gloo --------------------------------------------------

WORLD_SIZE = 2
LOCAL_BATCH = 3


def _run_processes(worker: Callable[..., None], *args: object) -> None:
    """Runs ``worker(rank, port, *args)`` in ``WORLD_SIZE`` fresh processes and waits for them."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    start_method = "spawn"
    if "forkserver" in multiprocessing.get_all_start_methods():
        # Workers forked from a server that imported torch once start in ~0.1 s instead of the
        # seconds a spawned interpreter takes to import torch again.
        multiprocessing.get_context("forkserver").set_forkserver_preload(["torch", "skelmask"])
        start_method = "forkserver"
    mp.start_processes(
        worker, args=(port, *args), nprocs=WORLD_SIZE, join=True, start_method=start_method
    )


def _ddp_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, nn.Linear]:
    """Global batch shared by the workers and the single-process reference."""
    generator = torch.Generator().manual_seed(11)
    inputs = torch.randn(WORLD_SIZE * LOCAL_BATCH, 5, 4, generator=generator)
    branch = _random_branch(WORLD_SIZE * LOCAL_BATCH, 5, generator)
    # One padded sample per rank, so the per-rank valid counts agree (see the class docstring).
    valid = torch.tensor([True, False, True, True, True, False])
    torch.manual_seed(12)
    return inputs, branch, valid, nn.Linear(4, 6)


def _ddp_worker(rank: int, port: int, out_dir: str) -> None:
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=WORLD_SIZE,
        timeout=timedelta(seconds=30),
    )
    try:
        inputs, branch, valid, model = _ddp_data()
        rows = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
        loss_fn = CrossContrastLoss(temperature=0.3, gather_distributed=True)
        results: dict[str, torch.Tensor] = {}
        for name, local_valid in (("all", None), ("valid", valid[rows])):
            model.zero_grad()
            features = model(inputs[rows])
            features.retain_grad()
            loss = loss_fn(features, branch[rows], local_valid)
            loss.backward()
            assert features.grad is not None
            results[f"{name}_loss"] = loss.detach()
            results[f"{name}_feature_grad"] = features.grad
            # What DistributedDataParallel does to parameter gradients (DDP itself takes seconds
            # to set up): average them over the ranks.
            weight_grad = model.weight.grad.clone()  # type: ignore[union-attr]
            dist.all_reduce(weight_grad)
            results[f"{name}_weight_grad"] = weight_grad / WORLD_SIZE
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_gather_distributed_matches_single_process(tmp_path: Path) -> None:
    _run_processes(_ddp_worker, str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD_SIZE)]
    inputs, branch, valid, model = _ddp_data()
    loss_fn = CrossContrastLoss(temperature=0.3)
    for name, full_valid in (("all", None), ("valid", valid)):
        model.zero_grad()
        features = model(inputs)
        features.retain_grad()
        full_loss = loss_fn(features, branch, full_valid)
        full_loss.backward()
        for r, result in enumerate(ranks):
            rows = range(r * LOCAL_BATCH, (r + 1) * LOCAL_BATCH)
            # Each rank's loss is the full-batch loss restricted to its own query rows ...
            expected = _manual_loss(
                features,
                branch,
                temperature=0.3,
                valid=None if full_valid is None else full_valid.tolist(),
                rows=rows,
            )
            assert result[f"{name}_loss"].item() == pytest.approx(expected, rel=1e-5)
            # ... every rank's features get the gradient of the sum of the rank losses ...
            torch.testing.assert_close(
                result[f"{name}_feature_grad"],
                WORLD_SIZE * features.grad[r * LOCAL_BATCH : (r + 1) * LOCAL_BATCH],  # type: ignore[index]
            )
            # ... and after DDP-style averaging the weights get the full-batch gradient.
            torch.testing.assert_close(result[f"{name}_weight_grad"], model.weight.grad)
        mean_loss = sum(result[f"{name}_loss"] for result in ranks) / WORLD_SIZE
        torch.testing.assert_close(mean_loss, full_loss.detach())


# --- hostile inputs: tiny temperatures, huge features, autocast ------------------------------


def test_a_temperature_whose_reciprocal_overflows_float32_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"temperature must be at least .* got 1e-40"):
        CrossContrastLoss(temperature=1e-40)
    # The smallest accepted temperatures still give a finite loss and gradient.
    generator = torch.Generator().manual_seed(11)
    features = torch.randn(4, 6, 8, generator=generator, requires_grad=True)
    loss = CrossContrastLoss(temperature=1e-38)(features, _random_branch(4, 6, generator))
    loss.backward()
    assert torch.isfinite(loss)
    assert features.grad is not None
    assert torch.isfinite(features.grad).all()


@settings(max_examples=30, deadline=None)
@given(exponent=st.integers(-6, 30), seed=st.integers(0, 2**16))
def test_normalised_loss_ignores_the_scale_of_the_features(exponent: int, seed: int) -> None:
    """Means are L2-normalised, so scaling every feature by 10^k changes nothing (1e20 included).

    Tolerance: a few float32 roundings in the means and norms (relative ~1e-6) pass through
    logits of size 1/τ = 10 into the softmax: well within 1e-5 absolute on the loss.
    """
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(4, 6, 8, generator=generator)
    branch = _random_branch(4, 6, generator)
    loss_fn = CrossContrastLoss()
    scaled = loss_fn(features * 10.0**exponent, branch)
    torch.testing.assert_close(scaled, loss_fn(features, branch), rtol=0.0, atol=1e-5)


def test_unnormalised_features_of_1e20_give_the_saturated_finite_loss() -> None:
    generator = torch.Generator().manual_seed(12)
    features = (1e20 * torch.randn(5, 7, 6, generator=generator)).requires_grad_()
    branch = _random_branch(5, 7, generator)
    loss = CrossContrastLoss(**OFFICIAL)(features, branch)
    loss.backward()
    expected = _manual_loss(features, branch, **OFFICIAL)  # python floats: no overflow
    assert loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert features.grad is not None
    assert torch.isfinite(features.grad).all()


def test_autocast_does_not_lower_the_precision_of_the_loss() -> None:
    """Under bf16 autocast the matrix products would round to 8 bits; the loss switches it off."""
    generator = torch.Generator().manual_seed(13)
    features = torch.randn(6, 8, 16, generator=generator)
    branch = _random_branch(6, 8, generator)
    loss_fn = CrossContrastLoss(temperature=0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = loss_fn(features, branch)
    torch.testing.assert_close(under_autocast, loss_fn(features, branch), rtol=1e-6, atol=0.0)


def test_branch_check_reads_nothing_back_off_the_cpu(meta_device: torch.device) -> None:
    # Off the CPU the branch check is queued on the device, not read back every step.
    features = torch.randn(3, 5, 4, device=meta_device)
    branch = torch.zeros(3, 5, dtype=torch.int64, device=meta_device)
    loss = CrossContrastLoss()(features, branch)
    assert (loss.shape, loss.device.type) == ((), "meta")
