"""Tests of skelmask.distributed: no-ops without a process group, gather with gradient over gloo."""

from __future__ import annotations

import multiprocessing
import socket
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from skelmask import distributed

WORLD_SIZE = 2


def test_single_process_defaults() -> None:
    assert not distributed.is_distributed()
    assert distributed.world_size() == 1
    assert distributed.rank() == 0


def test_gather_without_process_group_is_a_no_op() -> None:
    tensor = torch.randn(3, 4, requires_grad=True)
    gathered = distributed.gather(tensor)
    assert len(gathered) == 1
    assert gathered[0] is tensor


def test_eye_rank_without_process_group_is_identity() -> None:
    torch.testing.assert_close(distributed.eye_rank(3), torch.eye(3, dtype=torch.bool))


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


def _rank_input(rank: int) -> torch.Tensor:
    return torch.arange(6, dtype=torch.float64).reshape(2, 3) + 10 * rank


def _rank_weight(rank: int) -> torch.Tensor:
    """Each rank weighs the gathered tensor differently, so every slice gets distinct gradients."""
    return torch.arange(WORLD_SIZE * 6, dtype=torch.float64).reshape(WORLD_SIZE * 2, 3) ** (
        rank + 1
    )


def _gather_worker(rank: int, port: int, out_dir: str) -> None:
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=WORLD_SIZE,
        timeout=timedelta(seconds=30),
    )
    try:
        local = _rank_input(rank).requires_grad_()
        gathered = torch.cat(distributed.gather(local))
        (gathered * _rank_weight(rank)).sum().backward()
        torch.save(
            {
                "rank": distributed.rank(),
                "world_size": distributed.world_size(),
                "gathered": gathered.detach(),
                "grad": local.grad,
                "eye": distributed.eye_rank(2),
            },
            Path(out_dir) / f"rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_gather_across_two_processes(tmp_path: Path) -> None:
    _run_processes(_gather_worker, str(tmp_path))
    expected_gathered = torch.cat([_rank_input(r) for r in range(WORLD_SIZE)])
    total_weight = sum(_rank_weight(r) for r in range(WORLD_SIZE))
    assert isinstance(total_weight, torch.Tensor)
    for rank in range(WORLD_SIZE):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        assert (result["rank"], result["world_size"]) == (rank, WORLD_SIZE)
        torch.testing.assert_close(result["gathered"], expected_gathered)
        # d/dx_r of Σ_r' Σ(gathered · w_r') is the sum of every rank's weights on slice r.
        torch.testing.assert_close(result["grad"], total_weight[2 * rank : 2 * rank + 2])
        expected_eye = torch.zeros(2, 2 * WORLD_SIZE, dtype=torch.bool)
        expected_eye[:, 2 * rank : 2 * rank + 2] = torch.eye(2, dtype=torch.bool)
        torch.testing.assert_close(result["eye"], expected_eye)
