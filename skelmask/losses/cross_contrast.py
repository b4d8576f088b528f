"""HA-CM's cross-contrast loss between the branch means of the visible tokens."""

from __future__ import annotations

import torch
from einops import einsum
from torch import nn

from skelmask import distributed
from skelmask._checks import check_flags, check_holds, check_positive, check_tensor
from skelmask.losses._numerics import (
    check_temperature,
    float32_maths,
    normalize_rows,
    scaled_dot_logits,
)

__all__ = ["CrossContrastLoss"]


class CrossContrastLoss(nn.Module):
    """Cross-contrast loss of HA-CM between the temporal-branch, spatial-branch and global means.

    HA-CM's cross masker keeps visible tokens from two branches: a temporal branch (global
    attention of joints) and a spatial branch (joint hierarchy). For every sample the encoder
    outputs of its ``K`` visible tokens are averaged per branch, giving the temporal mean ``a``,
    the spatial mean ``b`` and the mean of all visible tokens ``g``. Across the batch, three
    ``B × B`` similarity matrices are compared with the identity (each sample should be most
    similar to itself, in every pairing of views):

    * ``S₁ = softmax(b·gᵀ / τ)``, spatial against global;
    * ``S₂ = softmax(a·gᵀ / τ)``, temporal against global;
    * ``S₃ = softmax(a·bᵀ / τ)``, temporal against spatial (the "inter" term, optional);

    with a softmax over each row (over the keys). The loss is
    ``weight · Σᵢ MSE(Sᵢ, I)``, every MSE averaged over the ``B²`` entries.

    Defaults and deviations from the official code (``docs/hacm.md``, rows H10 and H11):

    * ``normalize=True, temperature=0.1``: the means are L2-normalised, so logits lie in
      ``[-1/τ, 1/τ]``. The official code uses raw dot products of 256-d features with no
      temperature; its softmax saturates, the loss at initialisation is about 1e-10 and the
      gradient vanishes.
    * Branch means use each sample's **true** per-branch token counts, read from ``branch``. The
      official code splits the visible tokens at ``K // 2``, which is only right when both
      branches keep the same number of tokens.
    * ``g`` is the mean of all ``K`` visible tokens (as in the official code); with unequal
      branch counts it is not ``(a + b) / 2``.
    * A sample whose visible tokens all come from one branch uses ``g`` as the mean of its
      missing branch (never a division by zero). Its pairing with the missing branch then
      contrasts ``g`` with itself.
    * Padded samples (zero-padded second bodies in ``(N, M)`` data give near-identical rows that
      make the identity target unreachable) can be excluded with ``valid``: their rows and
      columns are dropped from every matrix, and the MSE is averaged over the remaining pairs.
      All-zero features never produce NaN, with or without ``valid``.
    * ``include_inter=True`` keeps the official code's third term; the paper's figure shows only
      ``S₁`` and ``S₂``. ``weight`` is the paper's contrast weight (α, up to the scale of the
      reconstruction term); the official code adds the loss with weight 1.
    * ``gather_distributed=True`` all-gathers the keys (``g`` and ``b``) of every rank with
      gradient: rows are this rank's samples, columns the global batch, and the identity target
      is shifted by the rank's offset. The official code contrasts within each GPU's batch
      only. With DDP's gradient averaging, training then matches a single process on the global
      batch; every rank must pass the same batch size.

    The official behaviour (given the true branch split) is
    ``CrossContrastLoss(temperature=1.0, normalize=False, include_inter=True, weight=1.0)``.

    The loss is computed in float32 whatever the input dtype, with autocast switched off inside
    (under ``torch.autocast`` its matrix products would otherwise run in bfloat16). For every
    finite input it is finite: the means are normalised without overflow (features of 1e20 are
    fine), and with ``normalize=False`` the dot products are rescaled so that they cannot
    overflow (beyond float32's range the softmax is saturated and stays so).

    What is checked: the options at construction (``temperature`` is rejected below ~2.9e-39,
    where ``1/τ`` is infinite in float32); shapes and dtypes of every call; the values of
    ``branch`` (one read back from the device per call). Not checked: NaN or infinity in
    ``features``, which would cost a host synchronisation per step; they give a non-finite
    loss, and ``skelmask.training.pretrain`` stops on a non-finite epoch loss.

    References:
        - HA-CM: Yin & Cao, "Spatial Hierarchy and Temporal Attention Guided Cross Masking for
          Self-supervised Skeleton-based Action Recognition", arXiv:2409.17951, 2024.
        - MAMP: Mao et al., "Masked Motion Predictors are Strong 3D Action Representation
          Learners", ICCV 2023 (the masked-autoencoder baseline HA-CM extends).

    Attributes:
        temperature: Softmax temperature ``τ`` (> 0). Default 0.1.
        normalize: Whether to L2-normalise ``a``, ``b`` and ``g`` before the dot products.
            Default True.
        include_inter: Whether to add the temporal-spatial term ``S₃``. Default True.
        weight: Factor applied to the summed terms (> 0). Default 1.0.
        gather_distributed: Whether to gather keys across ``torch.distributed`` ranks. A no-op
            when no process group is initialised. Default False.

    Raises:
        TypeError: If ``normalize``, ``include_inter`` or ``gather_distributed`` is not a bool.
        ValueError: If ``temperature`` or ``weight`` is not a finite number > 0, ``temperature``
            is below ~2.9e-39, or ``gather_distributed=True`` but ``torch.distributed`` is not
            available.

    Examples:
        >>> loss_fn = CrossContrastLoss()
        >>> features = torch.randn(4, 42, 256)  # encoder output of the visible tokens
        >>> branch = torch.arange(42).remainder(2).expand(4, -1)  # e.g. MaskResult.branch
        >>> loss = loss_fn(features, branch)
        >>> loss.shape
        torch.Size([])
        >>> valid = torch.tensor([True, True, True, False])  # last row is a padded body
        >>> loss = loss_fn(features, branch, valid=valid)
    """

    def __init__(
        self,
        temperature: float = 0.1,
        *,
        normalize: bool = True,
        include_inter: bool = True,
        weight: float = 1.0,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        check_flags(
            normalize=normalize, include_inter=include_inter, gather_distributed=gather_distributed
        )
        self.temperature = check_temperature(temperature)
        self.weight = check_positive(weight, "weight")
        self.normalize = bool(normalize)
        self.include_inter = bool(include_inter)
        self.gather_distributed = bool(gather_distributed)
        if self.gather_distributed and not torch.distributed.is_available():
            raise ValueError(
                "gather_distributed=True needs torch.distributed, which this PyTorch build lacks"
            )

    def extra_repr(self) -> str:
        """The constructor options, shown by ``repr``."""
        return (
            f"temperature={self.temperature}, normalize={self.normalize}, "
            f"include_inter={self.include_inter}, weight={self.weight}, "
            f"gather_distributed={self.gather_distributed}"
        )

    def forward(
        self,
        features: torch.Tensor,
        branch: torch.Tensor,
        valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Computes the loss.

        Args:
            features: ``(B, K, D)`` encoder outputs of the ``K`` visible tokens of each sample,
                in any order.
            branch: Integer or bool ``(B, K)``; 0 where the token came from the temporal
                branch, 1 where it came from the spatial branch (``MaskResult.branch``).
            valid: Optional bool ``(B,)``; False for samples to leave out (padded bodies).
                Default: every sample is valid.

        Returns:
            Scalar float32 loss; 0 when no sample is valid. ``B = 1`` also gives 0, because
            every matrix is then ``[[1]] = I``.

        Raises:
            TypeError: If an input is not a ``torch.Tensor``.
            ValueError: If a shape does not match or ``branch`` holds values other than 0 and 1.
                Off the CPU the value check is queued on the device, so that the host does not
                wait for it every step; it fails, with the same message, at the next
                synchronisation.
        """
        batch = _check_inputs(features, branch, valid)
        with float32_maths(features.device):
            return self._loss(features.float(), branch, valid, batch)

    def _loss(
        self, feats: torch.Tensor, branch: torch.Tensor, valid: torch.Tensor | None, batch: int
    ) -> torch.Tensor:
        spatial_weight = (branch == 1).to(feats.dtype)
        temporal_weight = 1.0 - spatial_weight
        global_mean = feats.mean(dim=1)
        temporal_mean = _branch_mean(feats, temporal_weight, global_mean)
        spatial_mean = _branch_mean(feats, spatial_weight, global_mean)
        if self.normalize:
            global_mean = normalize_rows(global_mean)
            temporal_mean = normalize_rows(temporal_mean)
            spatial_mean = normalize_rows(spatial_mean)

        query_valid = (
            torch.ones(batch, dtype=torch.bool, device=feats.device) if valid is None else valid
        )
        if self.gather_distributed:
            global_keys = torch.cat(distributed.gather(global_mean))
            spatial_keys = torch.cat(distributed.gather(spatial_mean))
            # all_gather needs a dtype every backend supports; bool is not one of them.
            key_valid = torch.cat(distributed.gather(query_valid.to(feats.dtype))) > 0.5
            target = distributed.eye_rank(batch, device=feats.device)
        else:
            global_keys, spatial_keys, key_valid = global_mean, spatial_mean, query_valid
            target = torch.eye(batch, dtype=torch.bool, device=feats.device)

        pair_valid = query_valid.unsqueeze(1) & key_valid.unsqueeze(0)
        num_pairs = pair_valid.sum().clamp_min(1).to(feats.dtype)
        pairs = [(spatial_mean, global_keys), (temporal_mean, global_keys)]
        if self.include_inter:
            pairs.append((temporal_mean, spatial_keys))
        total = feats.new_zeros(())
        for queries, keys in pairs:
            if self.normalize:  # unit vectors and a checked temperature: |logits| ≤ 1/τ < ∞
                logits = queries @ keys.T * (1.0 / self.temperature)
            else:
                logits = scaled_dot_logits(queries, keys, self.temperature)
            # The most negative finite value rather than -inf: a row with no valid key then
            # becomes uniform instead of NaN (and is excluded below anyway).
            logits = logits.masked_fill(~key_valid.unsqueeze(0), torch.finfo(logits.dtype).min)
            error = (logits.softmax(dim=-1) - target.to(logits.dtype)).square()
            total = total + torch.where(pair_valid, error, 0.0).sum() / num_pairs
        return self.weight * total


def _branch_mean(
    features: torch.Tensor, weight: torch.Tensor, fallback: torch.Tensor
) -> torch.Tensor:
    """Mean of the tokens with weight 1, or ``fallback`` for samples with none.

    Args:
        features: ``(B, K, D)``.
        weight: ``(B, K)`` of 0/1 selecting one branch.
        fallback: ``(B, D)``, used where a sample has no token of the branch.

    Returns:
        ``(B, D)``.
    """
    count = weight.sum(dim=1, keepdim=True)
    total = einsum(weight, features, "b k, b k d -> b d")
    return torch.where(count > 0, total / count.clamp_min(1.0), fallback)


def _check_inputs(features: torch.Tensor, branch: torch.Tensor, valid: torch.Tensor | None) -> int:
    """Checks the shapes of ``CrossContrastLoss.forward``'s inputs; returns ``B``."""
    check_tensor(features, "features")
    check_tensor(branch, "branch")
    if valid is not None:
        check_tensor(valid, "valid")
    if features.dim() != 3 or min(features.shape) == 0:
        raise ValueError(
            f"features must be a non-empty (B, K, D) tensor, got shape {tuple(features.shape)}"
        )
    batch, num_keep, _ = features.shape
    if tuple(branch.shape) != (batch, num_keep):
        raise ValueError(
            f"branch must have shape (B, K) = ({batch}, {num_keep}) to match features, got "
            f"{tuple(branch.shape)}"
        )
    if branch.is_floating_point() or branch.is_complex():
        raise ValueError(f"branch must hold integer or bool branch ids, got dtype {branch.dtype}")
    if valid is not None and (valid.dtype != torch.bool or tuple(valid.shape) != (batch,)):
        raise ValueError(
            f"valid must be a bool tensor of shape (B,) = ({batch},), got dtype {valid.dtype} "
            f"and shape {tuple(valid.shape)}"
        )
    check_holds(
        ((branch == 0) | (branch == 1)).all(),
        "branch must hold 0 (temporal branch) or 1 (spatial branch)",
        lambda: f"values {sorted(set(branch.flatten().tolist()))}",
    )
    return batch
