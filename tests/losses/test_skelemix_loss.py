from __future__ import annotations

import math
import socket
from datetime import timedelta
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skelmask.losses.skelemix import MoCoQueue, SkeleMixContrastLoss


def _unit(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _info_nce(positive: float, negatives: list[float], tau: float) -> float:
    logits = [positive / tau] + [n / tau for n in negatives]
    top = max(logits)
    return -(logits[0] - top - math.log(sum(math.exp(z - top) for z in logits)))


def _reference(
    q: torch.Tensor,
    k: torch.Tensor,
    p: torch.Tensor,
    c: torch.Tensor,
    donor: list[int],
    queue: torch.Tensor,
    tau: float,
    alpha: float,
) -> tuple[float, float, float, float]:
    qs, ks, ps, cs = ([_unit(row) for row in t.tolist()] for t in (q, k, p, c))
    negs = [_unit(row) for row in queue.tolist()]
    n = len(qs)
    ins = sum(_info_nce(_dot(qs[i], ks[i]), [_dot(qs[i], z) for z in negs], tau) for i in range(n))
    trim = sum(
        _info_nce(
            _dot(ps[i], ks[donor[i]]), [_dot(ps[i], z) for z in negs] + [_dot(ps[i], cs[i])], tau
        )
        for i in range(n)
    )
    trunc = sum(
        _info_nce(_dot(cs[i], ks[i]), [_dot(cs[i], z) for z in negs] + [_dot(cs[i], ps[i])], tau)
        for i in range(n)
    )
    ins, trim, trunc = ins / n, trim / n, trunc / n
    return ins + alpha * (trim + trunc) / 2, ins, trim, trunc


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 5),
    queue_size=st.integers(1, 6),
    dim=st.integers(2, 5),
    tau=st.floats(0.05, 1.0),
    alpha=st.floats(0.1, 2.0),
    seed=st.integers(0, 10_000),
)
def test_matches_a_hand_written_reference(
    n: int, queue_size: int, dim: int, tau: float, alpha: float, seed: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    q, k, p, c = torch.randn(4, n, dim, generator=generator, dtype=torch.float64).unbind(0)
    queue = torch.randn(queue_size, dim, generator=generator, dtype=torch.float64)
    donor = torch.roll(torch.arange(n), -1)
    losses = SkeleMixContrastLoss(tau, mix_weight=alpha)(q, k, p, c, donor, queue)
    expected = _reference(q, k, p, c, donor.tolist(), queue, tau, alpha)
    for got, want in zip(losses, expected, strict=True):
        assert float(got) == pytest.approx(want, rel=1e-4, abs=1e-5)


def test_positive_column_and_extra_negative() -> None:
    torch.manual_seed(0)
    q, k, p, c = torch.nn.functional.normalize(torch.randn(4, 3, 6), dim=-1).unbind(0)
    queue = torch.nn.functional.normalize(torch.randn(5, 6), dim=-1)
    donor = torch.tensor([2, 0, 1])
    tau = 0.5
    logits = SkeleMixContrastLoss(tau).logits(q, k, p, c, donor, queue)
    assert logits.instance.shape == (3, 1 + 5)
    assert logits.trimmed.shape == logits.truncated.shape == (3, 2 + 5)
    # The loss renormalises the unit vectors (each component moves by up to (D/2 + 2)·u) and takes
    # the D-term dot products in its own order (each off by up to D·u for unit vectors), so a
    # logit near zero may differ by (3D + 4)·u/tau ≈ 2.6e-6 in absolute terms (u = 2⁻²⁴, D = 6).
    atol = 3e-6
    # Column 0: the positive. Trimmed view -> the donor's key; truncated view -> its own key.
    assert torch.allclose(logits.instance[:, 0], (q * k).sum(1) / tau, atol=atol)
    assert torch.allclose(logits.trimmed[:, 0], (p * k[donor]).sum(1) / tau, atol=atol)
    assert torch.allclose(logits.truncated[:, 0], (c * k).sum(1) / tau, atol=atol)
    # Columns 1..K: the queue.
    assert torch.allclose(logits.trimmed[:, 1:6], p @ queue.T / tau, atol=atol)
    assert torch.allclose(logits.truncated[:, 1:6], c @ queue.T / tau, atol=atol)
    # Last column: the other view of the same mixed sample, an extra negative.
    assert torch.allclose(logits.trimmed[:, -1], (p * c).sum(1) / tau, atol=atol)
    assert torch.allclose(logits.truncated[:, -1], (c * p).sum(1) / tau, atol=atol)


def test_keys_queue_and_other_view_carry_no_gradient() -> None:
    q, k, p, c = (torch.randn(3, 4, requires_grad=True) for _ in range(4))
    queue = torch.randn(6, 4, requires_grad=True)
    loss_fn = SkeleMixContrastLoss()
    logits = loss_fn.logits(q, k, p, c, torch.tensor([1, 2, 0]), queue)
    # The extra negative of the trimmed view is sg(c): its gradient reaches p only.
    (grad_c,) = torch.autograd.grad(logits.trimmed[:, -1].sum(), c, allow_unused=True)
    assert grad_c is None
    loss_fn(q, k, p, c, torch.tensor([1, 2, 0]), queue).loss.backward()
    assert k.grad is None
    assert queue.grad is None
    assert q.grad is not None
    assert p.grad is not None
    assert c.grad is not None


def test_loss_falls_when_the_donor_key_matches_the_trimmed_view() -> None:
    torch.manual_seed(1)
    k = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    donor = torch.tensor([1, 2, 3, 0])
    queue = torch.randn(16, 8)
    loss_fn = SkeleMixContrastLoss(0.1)
    matched = loss_fn(k, k, k[donor], k, donor, queue).trimmed
    own = loss_fn(k, k, k, k, donor, queue).trimmed
    assert float(matched) < float(own)


def test_input_errors() -> None:
    loss_fn = SkeleMixContrastLoss()
    x = torch.randn(3, 4)
    donor = torch.tensor([1, 2, 0])
    with pytest.raises(ValueError, match="query must be"):
        loss_fn(torch.randn(3), x, x, x, donor, x)
    with pytest.raises(ValueError, match="trimmed must have"):
        loss_fn(x, x, torch.randn(3, 5), x, donor, x)
    with pytest.raises(ValueError, match="negatives must have"):
        loss_fn(x, x, x, x, donor, torch.randn(5, 3))
    with pytest.raises(ValueError, match="donor must be an int64"):
        loss_fn(x, x, x, x, donor.int(), x)
    with pytest.raises(ValueError, match="donor must hold"):
        loss_fn(x, x, x, x, torch.tensor([1, 2, 3]), x)
    with pytest.raises(ValueError, match="temperature"):
        SkeleMixContrastLoss(0.0)
    with pytest.raises(ValueError, match="mix_weight"):
        SkeleMixContrastLoss(mix_weight=-1.0)


def test_queue_is_fifo_and_wraps() -> None:
    queue = MoCoQueue(size=5, dim=2)
    assert torch.allclose(queue.keys.norm(dim=1), torch.ones(5))
    first = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    queue.enqueue(first)
    assert int(queue.pointer) == 3
    second = torch.tensor([[0.0, -1.0], [-4.0, 0.0], [0.0, 5.0]])
    queue.enqueue(second)
    assert int(queue.pointer) == 1
    expected = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])
    assert torch.allclose(queue.keys, expected)
    state = queue.state_dict()
    assert set(state) == {"keys", "pointer"}


def test_queue_enqueue_detaches_and_errors() -> None:
    queue = MoCoQueue(size=2, dim=3)
    keys = torch.randn(2, 3, requires_grad=True)
    queue.enqueue(keys)
    assert not queue.keys.requires_grad
    with pytest.raises(ValueError, match="cannot enqueue 3 keys"):
        queue.enqueue(torch.randn(3, 3))
    with pytest.raises(ValueError, match="D == dim = 3"):
        queue.enqueue(torch.randn(2, 4))
    with pytest.raises(ValueError, match="size"):
        MoCoQueue(size=0, dim=3)


def _queue_worker(rank: int, port: int, world_size: int, out_dir: str) -> None:
    torch.distributed.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=30),
    )
    try:
        torch.manual_seed(0)  # the same initial queue on every rank, as after DDP's broadcast
        queue = MoCoQueue(size=6, dim=2, gather_distributed=True)
        queue.enqueue(torch.tensor([[1.0, 0.0], [0.0, 1.0]]) * (rank + 1))
        torch.save({"keys": queue.keys, "pointer": queue.pointer}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def test_queue_gathers_keys_of_every_rank(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    torch.multiprocessing.start_processes(
        _queue_worker, args=(port, 2, str(tmp_path)), nprocs=2, join=True, start_method="spawn"
    )
    results = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)]
    assert torch.equal(results[0]["keys"], results[1]["keys"])
    # Rank 0's two keys then rank 1's, normalised, at slots 0..3.
    expected = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert torch.allclose(results[0]["keys"][:4], expected)
    assert int(results[0]["pointer"]) == int(results[1]["pointer"]) == 4


def test_low_precision_inputs_give_a_float32_loss() -> None:
    generator = torch.Generator().manual_seed(2)
    q, k, p, c = torch.randn(4, 3, 8, generator=generator).to(torch.bfloat16).unbind(0)
    queue = torch.randn(5, 8, generator=generator)
    losses = SkeleMixContrastLoss()(q, k, p, c, torch.tensor([1, 2, 0]), queue)
    assert losses.loss.dtype == torch.float32
    assert bool(torch.isfinite(losses.loss))
    reference = SkeleMixContrastLoss()(
        q.float(), k.float(), p.float(), c.float(), torch.tensor([1, 2, 0]), queue
    )
    assert torch.allclose(losses.loss, reference.loss)


def test_hostile_temperature_and_huge_inputs() -> None:
    with pytest.raises(ValueError, match=r"temperature must be at least .* got 1e-40"):
        SkeleMixContrastLoss(temperature=1e-40)
    generator = torch.Generator().manual_seed(5)
    q, k, p, c = torch.randn(4, 4, 8, generator=generator).unbind(0)
    donor = torch.tensor([1, 2, 3, 0])
    negatives = torch.randn(16, 8, generator=generator)
    loss_fn = SkeleMixContrastLoss(temperature=0.2)
    # Vectors are L2-normalised: 1e20 times the inputs is the same loss (F.normalize alone
    # would square 1e20 into infinity and turn every vector into zeros).
    huge = loss_fn(q * 1e20, k * 1e20, p * 1e20, c * 1e20, donor, negatives * 1e20)
    torch.testing.assert_close(huge.loss, loss_fn(q, k, p, c, donor, negatives).loss)
    tiny_temperature = SkeleMixContrastLoss(temperature=1e-38)(q, k, p, c, donor, negatives)
    assert torch.isfinite(tiny_temperature.loss)


def test_donor_check_reads_nothing_back_off_the_cpu(meta_device: torch.device) -> None:
    # Off the CPU the donor check is queued on the device, not read back every step.
    x = torch.randn(3, 4, device=meta_device)
    donor = torch.tensor([1, 2, 0]).to(meta_device)
    losses = SkeleMixContrastLoss()(x, x, x, x, donor, torch.randn(5, 4, device=meta_device))
    assert (losses.loss.shape, losses.loss.device.type) == ((), "meta")
