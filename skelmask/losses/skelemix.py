"""SkeleMixCLR's contrastive loss and the MoCo queue of negative keys it reads.

References:
    - SkeleMixCLR: Chen et al., "Contrastive Learning from Spatio-Temporal Mixed Skeleton
      Sequences for Self-Supervised Skeleton-Based Action Recognition", arXiv:2207.03065, 2022.
    - MoCo v2: Chen et al., "Improved Baselines with Momentum Contrastive Learning",
      arXiv:2003.04297, 2020.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from skelmask import distributed
from skelmask._checks import (
    check_flags,
    check_holds,
    check_positive,
    check_positive_int,
    check_tensor,
)
from skelmask.losses._numerics import check_temperature, float32_maths, normalize_rows

__all__ = ["MoCoQueue", "SkeleMixContrastLoss", "SkeleMixLogits", "SkeleMixLosses"]


class MoCoQueue(nn.Module):
    """First-in first-out buffer of ``K`` L2-normalised keys, the negatives of MoCo.

    It starts with random unit vectors. ``enqueue`` writes a batch of keys over the oldest
    entries at ``pointer`` (wrapping around the end), so ``K`` need not be a multiple of the
    batch size. With ``gather_distributed=True`` the keys of every ``torch.distributed`` rank
    are gathered first (in rank order) and every rank writes the same global batch, so queues
    stay identical across ranks (the rank-offset writes of the reference code are not needed).
    Both buffers are saved in the state dict.

    Args:
        size: Number of keys ``K``.
        dim: Key width ``D``.
        gather_distributed: Gather keys across ranks before writing; a no-op without a process
            group.

    Attributes:
        keys: Float32 ``(K, D)`` buffer of unit vectors.
        pointer: Int64 0-d buffer; the slot the next key is written to.

    Raises:
        TypeError: If ``gather_distributed`` is not a bool.
        ValueError: If ``size`` or ``dim`` is not a positive integer, or if
            ``gather_distributed=True`` but ``torch.distributed`` is not available.

    Examples:
        >>> queue = MoCoQueue(size=4, dim=2)
        >>> queue.enqueue(torch.tensor([[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]]))
        >>> queue.keys[:3]
        tensor([[0.6000, 0.8000],
                [0.0000, 1.0000],
                [1.0000, 0.0000]])
        >>> int(queue.pointer)
        3
    """

    keys: torch.Tensor
    pointer: torch.Tensor

    def __init__(self, size: int, dim: int, *, gather_distributed: bool = False) -> None:
        super().__init__()
        check_flags(gather_distributed=gather_distributed)
        self.size = check_positive_int(size, "size")
        self.dim = check_positive_int(dim, "dim")
        self.gather_distributed = bool(gather_distributed)
        if self.gather_distributed and not torch.distributed.is_available():
            raise ValueError(
                "gather_distributed=True needs torch.distributed, which this PyTorch build lacks"
            )
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Writes a batch of keys (normalised here, without gradient) over the oldest ones.

        Args:
            keys: ``(B, D)``; with ``gather_distributed`` every rank passes the same ``B`` and
                ``world_size·B`` keys are written.

        Raises:
            TypeError: If ``keys`` is not a ``torch.Tensor``.
            ValueError: If ``keys`` is not ``(B, D)`` or more keys arrive than the queue holds.
        """
        check_tensor(keys, "keys")
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise ValueError(
                f"keys must have shape (B, D) with D == dim = {self.dim}, got {tuple(keys.shape)}"
            )
        new = F.normalize(keys.detach().float(), dim=1)
        if self.gather_distributed:
            new = torch.cat(distributed.gather(new))
        if len(new) > self.size:
            raise ValueError(
                f"cannot enqueue {len(new)} keys into a queue of size {self.size}; use a queue "
                "at least as large as the (global) batch"
            )
        slots = (self.pointer + torch.arange(len(new), device=self.keys.device)) % self.size
        self.keys[slots] = new.to(self.keys.device)
        self.pointer.copy_((self.pointer + len(new)) % self.size)

    def extra_repr(self) -> str:
        """The constructor options, shown by ``repr``."""
        return f"size={self.size}, dim={self.dim}, gather_distributed={self.gather_distributed}"


class SkeleMixLogits(NamedTuple):
    """Logits of the three InfoNCE terms; the positive is always **column 0**.

    Attributes:
        instance: ``(N, 1 + K)``: ``[q·k_i, q·Q] / τ``.
        trimmed: ``(N, 2 + K)``: ``[p·k_donor(i), p·Q, p·sg(c_i)] / τ``.
        truncated: ``(N, 2 + K)``: ``[c·k_i, c·Q, c·sg(p_i)] / τ``.
    """

    instance: torch.Tensor
    trimmed: torch.Tensor
    truncated: torch.Tensor


class SkeleMixLosses(NamedTuple):
    """Total and per-term SkeleMixCLR losses, each a float32 scalar.

    Attributes:
        loss: ``instance + mix_weight·(trimmed + truncated) / 2``.
        instance: InfoNCE of the unmixed query against its key.
        trimmed: InfoNCE of the trimmed view (donor fragment) against the donor's key.
        truncated: InfoNCE of the truncated view (rest of the sample) against its own key.
    """

    loss: torch.Tensor
    instance: torch.Tensor
    trimmed: torch.Tensor
    truncated: torch.Tensor


class SkeleMixContrastLoss(nn.Module):
    """SkeleMixCLR's loss: MoCo InfoNCE plus the trimmed and truncated mixed-view terms.

    All vectors are L2-normalised here; ``sg`` is stop-gradient; ``Q`` the queue (``K``
    negatives); sample ``i``'s donor is ``j = donor[i]`` (SkeleMixCLR, the single-mix
    variant):

    * instance: ``ℓ_ins = −log softmax([q·k_i, q·Q] / τ)₀``;
    * trimmed view ``p`` (the donor's fragment): positive is the **donor's** key ``k_j``,
      negatives the queue and the other view of the same mixed sample,
      ``ℓ_p = −log softmax([p·k_j, p·Q, p·sg(c_i)] / τ)₀``;
    * truncated view ``c`` (the rest of sample ``i``): positive is its **own** key ``k_i``,
      ``ℓ_c = −log softmax([c·k_i, c·Q, c·sg(p_i)] / τ)₀``;

    each averaged over the batch, and ``L = ℓ_ins + mix_weight·(ℓ_p + ℓ_c) / 2``. Keys carry no
    gradient (they come from the momentum encoder). Computed in float32 with autocast switched
    off inside; vectors are normalised without overflow (inputs of 1e20 are fine) and the
    logits are bounded by ``1/τ``, so every finite input gives a finite loss.

    What is checked: the options at construction (``temperature`` is rejected below ~2.9e-39,
    where ``1/τ`` is infinite in float32); shapes and dtypes on every call, and the range of
    ``donor`` (one read back from the device per call). Not checked: NaN or infinity in the
    inputs (a host synchronisation per step); they give a non-finite loss, which
    ``skelmask.training.pretrain`` stops on.

    Args:
        temperature: Softmax temperature ``τ`` (> 0); 0.2 as in the released config.
        mix_weight: Weight ``α`` of the mixed-view terms (> 0); 1 in the reference.

    Raises:
        ValueError: If ``temperature`` or ``mix_weight`` is not a finite number > 0, or
            ``temperature`` is below ~2.9e-39.

    Examples:
        >>> loss_fn = SkeleMixContrastLoss(temperature=0.2)
        >>> q, k, p, c = torch.randn(4, 4, 8).unbind(0)
        >>> donor = torch.tensor([1, 2, 3, 0])
        >>> losses = loss_fn(q, k, p, c, donor, torch.randn(16, 8))
        >>> losses.loss.shape, bool(losses.loss > 0)
        (torch.Size([]), True)
    """

    def __init__(self, temperature: float = 0.2, *, mix_weight: float = 1.0) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)
        self.mix_weight = check_positive(mix_weight, "mix_weight")

    def logits(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        trimmed: torch.Tensor,
        truncated: torch.Tensor,
        donor: torch.Tensor,
        negatives: torch.Tensor,
    ) -> SkeleMixLogits:
        """The logits of the three terms, positive in column 0 (arguments as in ``forward``).

        Returns:
            The logits.
        """
        _check_inputs(query, key, trimmed, truncated, donor, negatives)
        with float32_maths(query.device):
            q = normalize_rows(query.float())
            k = normalize_rows(key.detach().float())
            p = normalize_rows(trimmed.float())
            c = normalize_rows(truncated.float())
            queue = normalize_rows(negatives.detach().float()).to(q.device)
            instance = torch.cat([_rowdot(q, k), q @ queue.T], dim=1)
            trimmed_logits = torch.cat(
                [_rowdot(p, k[donor]), p @ queue.T, _rowdot(p, c.detach())], 1
            )
            truncated_logits = torch.cat([_rowdot(c, k), c @ queue.T, _rowdot(c, p.detach())], 1)
            # Multiplying by 1/τ (finite, checked) keeps |logits| ≤ 1/τ for unit vectors.
            inverse = 1.0 / self.temperature
            return SkeleMixLogits(
                instance=instance * inverse,
                trimmed=trimmed_logits * inverse,
                truncated=truncated_logits * inverse,
            )

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        trimmed: torch.Tensor,
        truncated: torch.Tensor,
        donor: torch.Tensor,
        negatives: torch.Tensor,
    ) -> SkeleMixLosses:
        """Computes the loss.

        Args:
            query: ``(N, D)`` projection of the unmixed query view.
            key: ``(N, D)`` momentum-encoder projection of the key view (no gradient flows).
            trimmed: ``(N, D)`` projection of the mask-pooled donor fragment.
            truncated: ``(N, D)`` projection of the mask-pooled rest of each sample.
            donor: Int64 ``(N,)``; ``donor[i]`` is the sample whose fragment is in sample ``i``.
            negatives: ``(K, D)`` queue keys (no gradient flows).

        Returns:
            The total loss and each term.

        Raises:
            TypeError: If an input is not a ``torch.Tensor``.
            ValueError: If the shapes do not match or ``donor`` is not integer in ``[0, N)``.
                Off the CPU the range check is queued on the device, so that the host does not
                wait for it every step; it fails, with the same message, at the next
                synchronisation.
        """
        logits = self.logits(query, key, trimmed, truncated, donor, negatives)
        target = torch.zeros(len(query), dtype=torch.int64, device=query.device)
        with float32_maths(query.device):
            instance = F.cross_entropy(logits.instance, target)
            trimmed_loss = F.cross_entropy(logits.trimmed, target)
            truncated_loss = F.cross_entropy(logits.truncated, target)
            total = instance + self.mix_weight * 0.5 * (trimmed_loss + truncated_loss)
        return SkeleMixLosses(
            loss=total, instance=instance, trimmed=trimmed_loss, truncated=truncated_loss
        )

    def extra_repr(self) -> str:
        """The constructor options, shown by ``repr``."""
        return f"temperature={self.temperature}, mix_weight={self.mix_weight}"


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise dot products of two ``(N, D)`` tensors, as a column ``(N, 1)``."""
    return (a * b).sum(dim=1, keepdim=True)


def _check_inputs(
    query: torch.Tensor,
    key: torch.Tensor,
    trimmed: torch.Tensor,
    truncated: torch.Tensor,
    donor: torch.Tensor,
    negatives: torch.Tensor,
) -> None:
    """Checks the shapes of ``SkeleMixContrastLoss.forward``'s inputs."""
    for name, value in (("query", query), ("key", key), ("trimmed", trimmed),
                        ("truncated", truncated), ("donor", donor), ("negatives", negatives)):  # fmt: skip
        check_tensor(value, name)
    if query.dim() != 2 or 0 in query.shape:
        raise ValueError(f"query must be a non-empty (N, D) tensor, got {tuple(query.shape)}")
    shape = tuple(query.shape)
    for name, tensor in (("key", key), ("trimmed", trimmed), ("truncated", truncated)):
        if tuple(tensor.shape) != shape:
            raise ValueError(
                f"{name} must have the query's shape {shape}, got {tuple(tensor.shape)}"
            )
    if negatives.dim() != 2 or negatives.shape[1] != shape[1]:
        raise ValueError(
            f"negatives must have shape (K, D) with D = {shape[1]}, got {tuple(negatives.shape)}"
        )
    if donor.dtype != torch.int64 or tuple(donor.shape) != shape[:1]:
        raise ValueError(
            f"donor must be an int64 tensor of shape (N,) = ({shape[0]},), got dtype "
            f"{donor.dtype} and shape {tuple(donor.shape)}"
        )
    check_holds(
        ((donor >= 0) & (donor < shape[0])).all(),
        f"donor must hold sample indices in [0, {shape[0]})",
        lambda: str(donor.tolist()),
    )
