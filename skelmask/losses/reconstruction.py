"""Reconstruction targets and the masked reconstruction loss of skeleton masked autoencoders.

MAMP (Mao et al., "Masked Motion Predictors are Strong 3D Action Representation Learners",
ICCV 2023) and HA-CM (Yin & Cao, arXiv:2409.17951) predict, for every hidden token, the
**motion** of its patch (frame differences), normalised per patch, and average a per-token MSE
over the hidden tokens only. SkeletonMAE-style models predict the coordinates instead. The
targets here are token grids ``(B, Tp, Vp, P)`` with ``P = t_patch·v_patch·C``, in the layout of
``skelmask.tokens.patchify``, so they line up with any masker's time-major ``(B, L)`` mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from skelmask._checks import as_integer, check_flags, check_positive, check_tensor
from skelmask.losses._numerics import float32_maths
from skelmask.tokens import patchify

__all__ = [
    "MaskedReconstructionLoss",
    "coordinate_target",
    "motion_energy_weights",
    "motion_target",
    "normalize_patches",
]


def motion_target(
    coords: torch.Tensor, t_patch: int, v_patch: int = 1, *, order: int = 1
) -> torch.Tensor:
    """Frame-difference motion, cut into patches: MAMP's and HA-CM's reconstruction target.

    ``motion[:, t] = coords[:, t + 1] − coords[:, t]`` for ``t < T − 1`` and
    ``motion[:, T − 1] = 0``. With ``order=2`` it is the acceleration (velocity of velocity,
    MaskSem's second target): ``coords[:, t + 2] − 2·coords[:, t + 1] + coords[:, t]`` for
    ``t < T − 2`` and 0 for the last two frames; in general the ``order``-th forward
    difference, zero-padded at the end to ``T`` frames. HA-CM additionally maps the motion through the Poincaré
    exponential map (``docs/hacm.md``, row H12); that changes values by under 1.5 % and is not done
    here. The differences are taken in at least float32: in float16 the motion between
    coordinates of ±4e4 would overflow to infinity.

    Args:
        coords: ``(B, T, V, C)`` coordinates, ``T`` divisible by ``t_patch`` and ``V`` by
            ``v_patch``.
        t_patch: Frames per patch.
        v_patch: Joints per patch.
        order: Order of the difference: 1 (velocity, the default) or higher, below ``T``.

    Returns:
        ``(B, T // t_patch, V // v_patch, t_patch·v_patch·C)``, float32 (float64 for float64
        ``coords``).

    Raises:
        TypeError: If ``coords`` is not a ``torch.Tensor``.
        ValueError: If ``coords`` is not 4-D, a patch size does not divide its axis or
            ``order`` is not an integer in ``[1, T - 1]``.

    Examples:
        >>> coords = torch.randn(2, 120, 25, 3)
        >>> motion_target(coords, t_patch=4).shape
        torch.Size([2, 30, 25, 12])
        >>> motion_target(torch.arange(4.0).square().view(1, 4, 1, 1), 4, order=2).flatten()
        tensor([2., 2., 0., 0.])
    """
    check_tensor(coords, "coords")
    if coords.dim() != 4:
        raise ValueError(
            f"coords must have shape (B, T, V, C), got {coords.dim()} dimensions with shape "
            f"{tuple(coords.shape)}"
        )
    frames = int(coords.shape[1])
    given: object = order  # checked at run time, whatever the annotation says
    number = as_integer(given)
    if number is None or not 1 <= number < frames:
        raise ValueError(
            f"order must be an integer in [1, T - 1] = [1, {frames - 1}], got {order!r}"
        )
    wide = coords.to(torch.promote_types(coords.dtype, torch.float32))
    motion = F.pad(torch.diff(wide, n=number, dim=1), (0, 0, 0, 0, 0, number))
    return patchify(motion, t_patch, v_patch)


def coordinate_target(coords: torch.Tensor, t_patch: int, v_patch: int = 1) -> torch.Tensor:
    """Raw coordinates, cut into patches: the target of coordinate-reconstruction MAEs.

    Args:
        coords: ``(B, T, V, C)`` coordinates, ``T`` divisible by ``t_patch`` and ``V`` by
            ``v_patch``.
        t_patch: Frames per patch.
        v_patch: Joints per patch.

    Returns:
        ``(B, T // t_patch, V // v_patch, t_patch·v_patch·C)``.

    Raises:
        ValueError: If ``coords`` is not 4-D or a patch size does not divide its axis.

    Examples:
        >>> coordinate_target(torch.randn(2, 72, 18, 3), t_patch=3).shape
        torch.Size([2, 24, 18, 9])
    """
    return patchify(coords, t_patch, v_patch)


def normalize_patches(target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Normalises every patch to zero mean and unit variance: ``(y − mean) / sqrt(var + eps)``.

    The mean and the unbiased variance are taken over each patch's ``P`` values (the last axis),
    as MAMP's and HA-CM's ``norm_skes_loss`` does. A constant patch (e.g. the zero motion of a
    padded body) becomes all zeros. The computation runs in at least float32 and divides each
    patch by its largest deviation before squaring, so that patches of 1e20 (whose variance
    overflows float32) are normalised correctly instead of becoming zeros.

    Args:
        target: ``(..., P)`` with ``P ≥ 2``, e.g. a ``(B, Tp, Vp, P)`` grid or ``(B, L, P)``.
        eps: Added to the variance (> 0).

    Returns:
        Same shape and dtype as ``target``.

    Raises:
        ValueError: If ``P < 2`` (the unbiased variance of one value is undefined) or ``eps`` is
            not a finite number > 0.

    Examples:
        >>> normalize_patches(torch.tensor([[1.0, 2.0, 3.0]]))
        tensor([[-1.0000,  0.0000,  1.0000]])
    """
    check_positive(eps, "eps")
    if target.dim() == 0 or target.shape[-1] < 2:
        raise ValueError(
            "per-patch normalisation needs at least 2 values per patch (last axis P ≥ 2), got "
            f"shape {tuple(target.shape)}"
        )
    wide = target.to(torch.promote_types(target.dtype, torch.float32))
    centred = wide - wide.mean(dim=-1, keepdim=True)
    # (y − m) / sqrt(var + eps) = u / sqrt(var(u) + eps / s²) with u = (y − m) / s: the same value,
    # but var(u) ≤ 1 cannot overflow. A constant patch has s = 0: eps / 0 = inf and u / inf = 0.
    scale = centred.detach().abs().amax(dim=-1, keepdim=True)
    unit = centred / scale.clamp_min(torch.finfo(wide.dtype).tiny)
    normalized = unit / torch.sqrt(unit.var(dim=-1, keepdim=True) + eps / scale.square())
    return normalized.to(target.dtype)


class MaskedReconstructionLoss(nn.Module):
    """Per-token MSE averaged over the hidden tokens only, as in MAE, MAMP and HA-CM.

    ``loss = Σ_l mask_l · mean_P (pred_l − y_l)² / Σ_l mask_l`` over all ``B·L`` tokens of the
    batch, where ``y`` is the target, normalised per patch (``normalize_patches``) when
    ``normalize_target`` is set. Visible tokens do not contribute. Works with any masker: pass
    its ``MaskResult.mask``.

    Deviation from the official HA-CM code: it normalises the target unconditionally, ignoring
    its ``norm_skes_loss`` flag (``docs/hacm.md``, row H11); here ``normalize_target`` is honoured. Its default, True,
    matches every published configuration.

    When no token is hidden the loss is 0 (still attached to ``pred``'s graph, with zero
    gradient), rather than ``0 / 0``.

    The loss is computed in float32 whatever the input dtype, with autocast switched off inside.

    What is checked: ``eps`` at construction; shapes and the mask's dtype on every call. Not
    checked: NaN or infinity in ``pred`` or ``target`` (that would read a value back from the
    device every step). A non-finite value at a hidden token makes the loss non-finite, which
    ``skelmask.training.pretrain`` stops on; at a visible token it is ignored, like the token.
    Prepared datasets are checked for non-finite coordinates when they are loaded.

    References:
        - MAMP: Mao et al., "Masked Motion Predictors are Strong 3D Action Representation
          Learners", ICCV 2023.
        - HA-CM: Yin & Cao, "Spatial Hierarchy and Temporal Attention Guided Cross Masking for
          Self-supervised Skeleton-based Action Recognition", arXiv:2409.17951, 2024.

    **Motion-energy weighting** (``motion_weighted=True``, AMR, CVPR 2026): each hidden
    token's error is weighted by its motion energy ``e_l = mean_P y_l²`` of the *raw* target
    (before per-patch normalisation; for ``motion_target`` the mean squared velocity),
    normalised by the mean energy of the sample's hidden tokens:
    ``w_l = (e_l + eps) / (mean_{hidden l'} e_l' + eps)``, so the weights of a sample's hidden
    tokens average 1 and the loss keeps its scale;
    ``loss = Σ_l mask_l · w_l · err_l / Σ_l mask_l``. A motionless sample gets weights 1. The
    weights are constants (no gradient flows through the target); ``motion_energy_weights``
    returns them. AMR focuses each large patch's reconstruction on its high-motion part with a
    guidance module; this per-token weighting is skelmask's simpler reading of that idea
    (``docs/maskers/schedules.md``).

    Attributes:
        normalize_target: Whether to normalise the target per patch. Default True.
        eps: Added to the per-patch variance and to the energies. Default 1e-6 (MAMP, HA-CM).
        motion_weighted: Whether to weight hidden tokens by motion energy. Default False.

    Raises:
        TypeError: If ``normalize_target`` or ``motion_weighted`` is not a bool.
        ValueError: If ``eps`` is not a finite number > 0.

    Examples:
        >>> coords = torch.randn(2, 120, 25, 3)
        >>> target = motion_target(coords, t_patch=4)  # (2, 30, 25, 12)
        >>> pred = torch.randn(2, 750, 12)  # decoder output, time-major
        >>> mask = torch.rand(2, 750) < 0.9  # True = hidden, e.g. MaskResult.mask
        >>> loss = MaskedReconstructionLoss()(pred, target, mask)
        >>> loss.shape
        torch.Size([])
    """

    def __init__(
        self, normalize_target: bool = True, eps: float = 1e-6, motion_weighted: bool = False
    ) -> None:
        super().__init__()
        check_flags(normalize_target=normalize_target, motion_weighted=motion_weighted)
        self.normalize_target = bool(normalize_target)
        self.eps = check_positive(eps, "eps")
        self.motion_weighted = bool(motion_weighted)

    def extra_repr(self) -> str:
        """The constructor options, shown by ``repr``."""
        return (
            f"normalize_target={self.normalize_target}, eps={self.eps}, "
            f"motion_weighted={self.motion_weighted}"
        )

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Computes the loss.

        Args:
            pred: ``(B, L, P)`` predictions, time-major, or a ``(B, Tp, Vp, P)`` grid.
            target: ``(B, L, P)`` or ``(B, Tp, Vp, P)`` targets, e.g. from
                ``motion_target``. A grid is flattened time-major, ``l = t·Vp + v``.
            mask: Bool ``(B, L)`` or ``(B, Tp, Vp)``; True where the token is hidden.

        Returns:
            Scalar float32 loss.

        Raises:
            TypeError: If an input is not a ``torch.Tensor``.
            ValueError: If the shapes do not agree, ``mask`` is not bool, or
                ``normalize_target`` is set and ``P < 2``.
        """
        pred_flat = _flatten_tokens(pred, "pred")
        target_flat = _flatten_tokens(target, "target")
        if pred_flat.shape != target_flat.shape:
            raise ValueError(
                f"pred and target must hold the same (B, L, P) tokens, got pred "
                f"{tuple(pred.shape)} → {tuple(pred_flat.shape)} and target "
                f"{tuple(target.shape)} → {tuple(target_flat.shape)}"
            )
        mask_flat = _flat_mask(mask, pred_flat.shape[:2])
        with float32_maths(pred.device):
            target_flat = target_flat.float()
            weight = None
            if self.motion_weighted:
                weight = _motion_weights(target_flat, mask_flat, self.eps)
            if self.normalize_target:
                target_flat = normalize_patches(target_flat, self.eps)
            per_token = (pred_flat.float() - target_flat).square().mean(dim=-1)
            if weight is not None:
                per_token = per_token * weight
            # where, not a product: a non-finite value at a visible token must not leak in.
            hidden_error = torch.where(mask_flat, per_token, 0.0)
            return hidden_error.sum() / mask_flat.sum().clamp_min(1).to(per_token.dtype)


def motion_energy_weights(
    target: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """AMR's motion-energy weight of every token, as ``MaskedReconstructionLoss`` applies it.

    ``e_l = mean_P y_l²`` is token ``l``'s energy in the raw ``target`` (for ``motion_target``,
    the mean squared velocity of its patch) and
    ``w_l = (e_l + eps) / (mean_{hidden l'} e_l' + eps)``, the mean taken over the sample's
    hidden tokens, so that the weights of a sample's hidden tokens average 1. A sample with no
    motion gets weights 1.

    Args:
        target: Raw (not per-patch normalised) target ``(B, L, P)`` or ``(B, Tp, Vp, P)``.
        mask: Bool ``(B, L)`` or ``(B, Tp, Vp)``; True where the token is hidden.
        eps: Added to every energy (> 0).

    Returns:
        Float32 ``(B, L)`` weights, detached; visible tokens get theirs too (the loss ignores
        them).

    Raises:
        ValueError: If ``mask`` is not bool or does not match ``target``'s tokens, or ``eps``
            is not a finite number > 0.

    Examples:
        >>> target = torch.tensor([[[1.0, 1.0], [5.0, 5.0], [3.0, 1.0]]])  # energies 1, 25, 5
        >>> motion_energy_weights(target, torch.tensor([[True, False, True]]), eps=1e-12)
        tensor([[0.3333, 8.3333, 1.6667]])
    """
    check_positive(eps, "eps")
    target_flat = _flatten_tokens(target, "target")
    return _motion_weights(target_flat.float(), _flat_mask(mask, target_flat.shape[:2]), eps)


def _motion_weights(target: torch.Tensor, mask: torch.Tensor, eps: float) -> torch.Tensor:
    """Weights of ``motion_energy_weights`` for float32 ``(B, L, P)`` and bool ``(B, L)``."""
    energy = target.detach().square().mean(dim=-1)  # (B, L)
    hidden_count = mask.sum(dim=1, keepdim=True).clamp_min(1).to(energy.dtype)
    mean_energy = torch.where(mask, energy, 0.0).sum(dim=1, keepdim=True) / hidden_count
    return (energy + eps) / (mean_energy + eps)


def _flat_mask(mask: torch.Tensor, tokens: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """A bool ``(B, L)`` or ``(B, Tp, Vp)`` mask as ``(B, L)``, checked against ``tokens``."""
    batch, num_tokens = (int(size) for size in tokens)
    check_tensor(mask, "mask")
    if mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool tensor (True = hidden), got dtype {mask.dtype}; "
            "convert a 0/1 MAE mask with mask.bool()"
        )
    mask_flat = mask.flatten(1) if mask.dim() == 3 else mask
    if tuple(mask_flat.shape) != (batch, num_tokens):
        raise ValueError(
            f"mask must have shape (B, L) = ({batch}, {num_tokens}) or a (B, Tp, Vp) grid "
            f"with Tp·Vp = L, got {tuple(mask.shape)}"
        )
    return mask_flat


def _flatten_tokens(tokens: torch.Tensor, name: str) -> torch.Tensor:
    """``(B, L, P)`` as is, or a ``(B, Tp, Vp, P)`` grid flattened time-major to ``(B, L, P)``."""
    check_tensor(tokens, name)
    if tokens.dim() == 4:
        return tokens.flatten(1, 2)
    if tokens.dim() != 3:
        raise ValueError(
            f"{name} must have shape (B, L, P) or (B, Tp, Vp, P), got {tokens.dim()} "
            f"dimensions with shape {tuple(tokens.shape)}"
        )
    return tokens
