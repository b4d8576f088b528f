"""Tokens and masks: patchify, the mask result of the masker contract, gather and restore.

Conventions (the same across skelmask):

* coordinates inside a model: ``(B, T, V, C)``;
* token grid: ``(B, Tp, Vp, D)`` with ``Tp = T // t_patch`` and ``Vp = V // v_patch``;
* flat tokens: ``(B, L, D)`` with ``L = Tp·Vp`` in **time-major** order, index ``l = t·Vp + v``;
* masks: bool ``(B, L)``, **True = hidden**.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from einops import rearrange

from skelmask._checks import check_positive_int, check_tensor

__all__ = [
    "MaskResult",
    "MaskedTokens",
    "expand_mask",
    "flatten_grid",
    "gather_tokens",
    "mask_result_from_bool",
    "patchify",
    "restore_tokens",
    "to_index_pair",
    "to_mae_mask",
    "token_positions",
    "unflatten_tokens",
    "unpatchify",
]


class MaskedTokens(NamedTuple):
    """A masker's decision applied to tokens, in the return order of MAE-style code bases.

    It unpacks like MAMP's ``motion_aware_random_masking`` (four values); MAE's
    ``random_masking`` returns the first three.

    Attributes:
        visible: ``(B, K, D)`` visible tokens in ``ids_keep`` order (ascending, time-major).
        mask: Float32 ``(B, L)``; 1 = removed, 0 = kept (the MAE convention).
        ids_restore: Int64 ``(B, L)``; see ``MaskResult.ids_restore``.
        ids_keep: Int64 ``(B, K)``; see ``MaskResult.ids_keep``.
    """

    visible: torch.Tensor
    mask: torch.Tensor
    ids_restore: torch.Tensor
    ids_keep: torch.Tensor


class MaskResult(NamedTuple):
    """Which tokens of a ``(Tp, Vp)`` grid are hidden, in every form an MAE needs.

    Every sample keeps the same number ``K`` of tokens. ``ids_keep`` and ``ids_mask`` list token
    indices in ascending (time-major) order, so that gathering visible tokens keeps their
    temporal order, and ``ids_restore`` undoes ``cat([ids_keep, ids_mask], dim=1)``:
    ``restore_tokens(gather_tokens(x, ids_keep), ids_restore, mask_token)`` puts every visible
    token back in its own slot.

    Attributes:
        mask: Bool ``(B, L)``; True where the token is hidden.
        ids_keep: Int64 ``(B, K)``; indices of the visible tokens, ascending.
        ids_mask: Int64 ``(B, L - K)``; indices of the hidden tokens, ascending.
        ids_restore: Int64 ``(B, L)``; position of every token in ``cat([ids_keep, ids_mask])``.
        grid_size: ``(Tp, Vp)`` of the token grid.
        scores: Float32 ``(B, L)`` per-token scores the decision was made from, or None for
            masks drawn without scores (uniform random). No gradient.
        probs: Float32 ``(B, L)`` softmax weights the Gumbel-top-k sampler drew from, or None.
            Tokens outside a masker's region (see ``CrossMasker``) have weight 0.
    """

    mask: torch.Tensor
    ids_keep: torch.Tensor
    ids_mask: torch.Tensor
    ids_restore: torch.Tensor
    grid_size: tuple[int, int]
    scores: torch.Tensor | None = None
    probs: torch.Tensor | None = None

    @property
    def num_keep(self) -> int:
        """Number ``K`` of visible tokens per sample."""
        return int(self.ids_keep.shape[1])

    @property
    def num_hidden(self) -> int:
        """Number ``L - K`` of hidden tokens per sample."""
        return int(self.ids_mask.shape[1])

    @property
    def grid_mask(self) -> torch.Tensor:
        """The mask as a bool ``(B, Tp, Vp)`` grid."""
        time_patches, joint_patches = self.grid_size
        return self.mask.view(-1, time_patches, joint_patches)

    def apply(self, tokens: torch.Tensor) -> MaskedTokens:
        """Keeps the visible tokens, as MAE-style ``random_masking`` functions return them.

        Args:
            tokens: Flat ``(B, L, D)`` or grid ``(B, Tp, Vp, D)`` tokens of this grid.

        Returns:
            ``(visible (B, K, D), mask (B, L) float 1 = removed, ids_restore, ids_keep)``.

        Raises:
            TypeError: If ``tokens`` is not a ``torch.Tensor``.
            ValueError: If ``tokens`` does not hold this result's ``B`` and ``L`` tokens.

        Examples:
            >>> from skelmask import RandomMasker
            >>> x = torch.randn(2, 750, 256)  # MAMP's flat tokens, L = 30·25
            >>> x_masked, mask, ids_restore, ids_keep = RandomMasker(0.9)(x).apply(x)
            >>> x_masked.shape, mask.sum(dim=1).tolist()
            (torch.Size([2, 75, 256]), [675.0, 675.0])
        """
        check_tensor(tokens, "tokens")
        flat = flatten_grid(tokens) if tokens.dim() == 4 else tokens
        if flat.dim() != 3 or tuple(flat.shape[:2]) != tuple(self.mask.shape):
            raise ValueError(
                f"tokens must be (B, L, D) or (B, Tp, Vp, D) with (B, L) = "
                f"{tuple(self.mask.shape)}, got shape {tuple(tokens.shape)}"
            )
        visible = gather_tokens(flat, self.ids_keep)
        return MaskedTokens(visible, self.mask.float(), self.ids_restore, self.ids_keep)


def mask_result_from_bool(
    mask: torch.Tensor,
    num_keep: int,
    grid_size: tuple[int, int],
    *,
    scores: torch.Tensor | None = None,
    probs: torch.Tensor | None = None,
    validate: bool = True,
) -> MaskResult:
    """Builds a ``MaskResult`` from a bool mask with exactly ``num_keep`` False per row.

    Args:
        mask: Bool ``(B, L)``; True = hidden. Every row must keep exactly ``num_keep`` tokens.
        num_keep: Visible tokens per sample, ``K``. Passed in rather than counted so that the
            output shape does not depend on data (``torch.compile`` friendly).
        grid_size: ``(Tp, Vp)`` with ``Tp·Vp = L``.
        scores: Optional float ``(B, L)`` scores.
        probs: Optional float ``(B, L)`` sampling weights.
        validate: Check that every row keeps ``num_keep`` tokens. The check reads a value
            back from the device (a synchronisation on CUDA); skelmask's maskers build exact
            counts by construction and turn it off.

    Returns:
        The mask result.

    Raises:
        TypeError: If ``mask`` is not a ``torch.Tensor``.
        ValueError: If a row does not keep exactly ``num_keep`` tokens or the sizes disagree.
    """
    check_tensor(mask, "mask")
    time_patches, joint_patches = grid_size
    num_tokens = time_patches * joint_patches
    if mask.dim() != 2 or mask.shape[1] != num_tokens:
        raise ValueError(
            f"mask must have shape (B, L) with L = Tp·Vp = {num_tokens}, got {tuple(mask.shape)}"
        )
    if validate and not torch.compiler.is_compiling():
        kept = (~mask).sum(dim=1)
        if not bool((kept == num_keep).all()):
            raise ValueError(
                f"every row of mask must keep exactly num_keep={num_keep} tokens, got counts "
                f"{sorted(set(kept.tolist()))}"
            )
    # A stable sort of the 0/1 mask lists visible tokens first, each group in ascending order.
    ids_shuffle = torch.argsort(mask.to(torch.int8), dim=1, stable=True)
    positions = torch.arange(num_tokens, device=mask.device).expand_as(ids_shuffle)
    ids_restore = torch.empty_like(ids_shuffle).scatter_(1, ids_shuffle, positions)
    return MaskResult(
        mask=mask,
        ids_keep=ids_shuffle[:, :num_keep],
        ids_mask=ids_shuffle[:, num_keep:],
        ids_restore=ids_restore,
        grid_size=(time_patches, joint_patches),
        scores=scores,
        probs=probs,
    )


def patchify(coords: torch.Tensor, t_patch: int, v_patch: int = 1) -> torch.Tensor:
    """Cuts coordinates into a token grid of non-overlapping ``t_patch × v_patch`` patches.

    Inside a patch the values are ordered (frame in patch, joint in patch, coordinate).

    Args:
        coords: ``(B, T, V, C)`` with ``T`` divisible by ``t_patch`` and ``V`` by ``v_patch``.
        t_patch: Frames per patch.
        v_patch: Joints per patch.

    Returns:
        ``(B, T // t_patch, V // v_patch, t_patch·v_patch·C)``.

    Raises:
        TypeError: If ``coords`` is not a ``torch.Tensor``.
        ValueError: If ``coords`` is not 4-D or a patch size does not divide its axis.

    Examples:
        >>> patchify(torch.zeros(2, 120, 25, 3), t_patch=4).shape
        torch.Size([2, 30, 25, 12])
    """
    check_positive_int(t_patch, "t_patch")
    check_positive_int(v_patch, "v_patch")
    check_tensor(coords, "coords")
    if coords.dim() != 4:
        raise ValueError(
            f"coords must have shape (B, T, V, C), got {coords.dim()} dimensions with shape "
            f"{tuple(coords.shape)}"
        )
    _, frames, joints, _ = coords.shape
    if frames == 0 or frames % t_patch:
        raise ValueError(
            f"the frame count T={frames} must be a positive multiple of t_patch={t_patch}"
        )
    if joints == 0 or joints % v_patch:
        raise ValueError(
            f"the joint count V={joints} must be a positive multiple of v_patch={v_patch}"
        )
    return rearrange(coords, "b (tp pt) (vp pv) c -> b tp vp (pt pv c)", pt=t_patch, pv=v_patch)


def unpatchify(grid: torch.Tensor, t_patch: int, v_patch: int = 1) -> torch.Tensor:
    """Inverse of ``patchify``.

    Args:
        grid: ``(B, Tp, Vp, t_patch·v_patch·C)``.
        t_patch: Frames per patch.
        v_patch: Joints per patch.

    Returns:
        ``(B, Tp·t_patch, Vp·v_patch, C)``.

    Raises:
        TypeError: If ``grid`` is not a ``torch.Tensor``.
        ValueError: If the last axis is not a multiple of ``t_patch·v_patch``.
    """
    check_positive_int(t_patch, "t_patch")
    check_positive_int(v_patch, "v_patch")
    check_tensor(grid, "grid")
    if grid.dim() != 4:
        raise ValueError(f"grid must have shape (B, Tp, Vp, D), got shape {tuple(grid.shape)}")
    width = grid.shape[-1]
    if width == 0 or width % (t_patch * v_patch):
        raise ValueError(
            f"the patch width D={width} must be a positive multiple of t_patch·v_patch = "
            f"{t_patch * v_patch}"
        )
    return rearrange(grid, "b tp vp (pt pv c) -> b (tp pt) (vp pv) c", pt=t_patch, pv=v_patch)


def flatten_grid(grid: torch.Tensor) -> torch.Tensor:
    """``(B, Tp, Vp, D)`` → time-major flat tokens ``(B, Tp·Vp, D)``."""
    return rearrange(grid, "b tp vp d -> b (tp vp) d")


def unflatten_tokens(tokens: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
    """Time-major flat tokens ``(B, L, D)`` → grid ``(B, Tp, Vp, D)``."""
    time_patches, joint_patches = grid_size
    return rearrange(tokens, "b (tp vp) d -> b tp vp d", tp=time_patches, vp=joint_patches)


def gather_tokens(tokens: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Selects tokens by index, per sample.

    Args:
        tokens: ``(B, L, D)``.
        ids: Int64 ``(B, K)``, e.g. ``MaskResult.ids_keep``.

    Returns:
        ``(B, K, D)`` with ``out[b, k] = tokens[b, ids[b, k]]``.

    Raises:
        TypeError: If ``tokens`` or ``ids`` is not a ``torch.Tensor``.
        ValueError: If the shapes are not ``(B, L, D)`` and ``(B, K)``.
    """
    check_tensor(tokens, "tokens")
    check_tensor(ids, "ids")
    if tokens.dim() != 3 or ids.dim() != 2 or ids.shape[0] != tokens.shape[0]:
        raise ValueError(
            f"tokens must be (B, L, D) and ids (B, K) with the same B, got tokens "
            f"{tuple(tokens.shape)} and ids {tuple(ids.shape)}"
        )
    index = ids.unsqueeze(-1).expand(-1, -1, tokens.shape[-1])
    return torch.gather(tokens, 1, index)


def restore_tokens(
    visible: torch.Tensor, ids_restore: torch.Tensor, mask_token: torch.Tensor
) -> torch.Tensor:
    """Puts visible tokens back in their slots and fills hidden slots with a mask token.

    Args:
        visible: ``(B, K, D)`` tokens in ``ids_keep`` order (e.g. the encoder output).
        ids_restore: Int64 ``(B, L)`` from the mask result.
        mask_token: ``(D,)``, ``(1, D)`` or ``(1, 1, D)``; broadcast to every hidden slot.

    Returns:
        ``(B, L, D)`` in time-major grid order.

    Raises:
        TypeError: If an input is not a ``torch.Tensor``.
        ValueError: If ``visible`` does not fit ``ids_restore`` or ``mask_token`` its width.
    """
    for value, name in (
        (visible, "visible"),
        (ids_restore, "ids_restore"),
        (mask_token, "mask_token"),
    ):
        check_tensor(value, name)
    batch, num_keep, width = visible.shape
    num_tokens = ids_restore.shape[1]
    if ids_restore.shape[0] != batch or num_keep > num_tokens:
        raise ValueError(
            f"visible (B, K, D) = {tuple(visible.shape)} does not fit ids_restore (B, L) = "
            f"{tuple(ids_restore.shape)}"
        )
    if mask_token.numel() != width:
        raise ValueError(
            f"mask_token must have {width} elements to match visible's width D, got shape "
            f"{tuple(mask_token.shape)}"
        )
    fill = (
        mask_token.reshape(1, 1, width)
        .to(visible.dtype)
        .expand(batch, num_tokens - num_keep, width)
    )
    shuffled = torch.cat([visible, fill], dim=1)
    return gather_tokens(shuffled, ids_restore)


def to_mae_mask(result: MaskResult, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The mask in the MAE float convention: ``(B, L)``, 1 = removed, 0 = kept."""
    return result.mask.to(dtype)


def to_index_pair(result: MaskResult) -> tuple[torch.Tensor, torch.Tensor]:
    """The mask as lightly's ``(idx_keep, idx_mask)`` pair: ``(B, K)`` and ``(B, L - K)``."""
    return result.ids_keep, result.ids_mask


def token_positions(
    ids: torch.Tensor, grid_size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Converts flat time-major token indices into ``(time patch, joint patch)`` index pairs.

    Args:
        ids: Int64 tensor of flat indices ``l = t·Vp + v``, any shape.
        grid_size: ``(Tp, Vp)``.

    Returns:
        ``(t, v)``, two int64 tensors shaped like ``ids``.
    """
    joint_patches = grid_size[1]
    return torch.div(ids, joint_patches, rounding_mode="floor"), ids % joint_patches


def expand_mask(
    mask: torch.Tensor, grid_size: tuple[int, int], t_patch: int, v_patch: int = 1
) -> torch.Tensor:
    """Expands a token mask to input resolution, e.g. to draw it over frames and joints.

    Args:
        mask: Bool ``(B, L)`` token mask.
        grid_size: ``(Tp, Vp)``.
        t_patch: Frames per patch.
        v_patch: Joints per patch.

    Returns:
        Bool ``(B, Tp·t_patch, Vp·v_patch)``.
    """
    time_patches, joint_patches = grid_size
    grid = mask.view(-1, time_patches, joint_patches)
    return grid.repeat_interleave(t_patch, dim=1).repeat_interleave(v_patch, dim=2)
