"""Motion-aware masking (MAMP): salient motion is preferentially hidden."""

from __future__ import annotations

import torch

from skelmask._checks import check_finite, check_positive_int, check_tensor
from skelmask.maskers.base import MaskContext, ScoreGuidedMasker
from skelmask.sampling import Direction
from skelmask.tokens import patchify

__all__ = ["MotionAwareMasker"]


class MotionAwareMasker(ScoreGuidedMasker):
    """MAMP's motion-aware masking, read from the coordinates.

    The coordinates are cut into the same ``t_patch × v_patch`` patches as the tokens (or come
    patchified already, as MAMP's ``x_orig``). A token's
    score is the mean absolute difference between its patch and the same joint patch one time
    patch earlier; the first time patch copies the second's score. Scores go through the shared
    sampler (``scores / (tau·max)`` → softmax → Gumbel-top-k); by default high-motion tokens are
    preferentially **hidden**, as in MAMP, so the encoder must infer the salient motion.

    Reference: Mao et al., "Masked Motion Predictors are Strong 3D Action Representation
    Learners", ICCV 2023.

    Args:
        mask_ratio: Fraction of tokens hidden, in (0, 1). MAMP uses 0.9.
        t_patch: Frames per token (MAMP: 4).
        v_patch: Joints per token (MAMP: 1).
        temperature: ``tau`` of the normalisation (MAMP: 0.80 for NTU-60, 0.75 for NTU-120).
        direction: ``"hide_high"`` (MAMP) or ``"keep_high"``.

    ``coords`` may be raw ``(B, T, V, C)`` with ``T = Tp·t_patch`` and ``V = Vp·v_patch``, or
    patchified like MAMP's ``x_orig``: ``(B, Tp, Vp, P)`` or flat ``(B, L, P)``. Both give the
    same scores. With flat tokens and raw or patchified-grid ``coords`` no ``grid_size`` is
    needed.

    Raises:
        ValueError: On invalid arguments, or at call time when ``coords`` is missing, has a shape
            that fits neither form, holds NaN, or the grid has a single time patch (motion needs
            two).

    Examples:
        >>> masker = MotionAwareMasker(mask_ratio=0.9, t_patch=4)
        >>> coords = torch.randn(2, 120, 25, 3)
        >>> result = masker(torch.randn(2, 30, 25, 256), coords=coords)
        >>> result.ids_keep.shape, result.scores.shape
        (torch.Size([2, 75]), torch.Size([2, 750]))
        >>> x, x_orig = torch.randn(2, 750, 256), torch.randn(2, 30, 25, 12)  # MAMP's inputs
        >>> masker(x, coords=x_orig, mask_ratio=0.9, temperature=0.75).apply(x).visible.shape
        torch.Size([2, 75, 256])
    """

    def __init__(
        self,
        mask_ratio: float = 0.9,
        *,
        t_patch: int = 4,
        v_patch: int = 1,
        temperature: float = 0.8,
        direction: Direction = "hide_high",
    ) -> None:
        super().__init__(mask_ratio, temperature, direction)
        self.t_patch = t_patch
        self.v_patch = v_patch

    @property
    def t_patch(self) -> int:
        """Frames per token, a positive integer."""
        return self._t_patch

    @t_patch.setter
    def t_patch(self, value: int) -> None:
        self._t_patch = check_positive_int(value, "t_patch")

    @property
    def v_patch(self) -> int:
        """Joints per token, a positive integer."""
        return self._v_patch

    @v_patch.setter
    def v_patch(self, value: int) -> None:
        self._v_patch = check_positive_int(value, "v_patch")

    def grid_size_from_inputs(
        self,
        num_tokens: int,
        coords: torch.Tensor | None,
        attention: torch.Tensor | None,
        root_tokens: torch.Tensor | None,
        saliency: torch.Tensor | None = None,
    ) -> tuple[int, int] | None:
        """Also reads the grid of flat tokens from raw ``coords`` ``(B, T, V, C)``."""
        found = super().grid_size_from_inputs(num_tokens, coords, attention, root_tokens, saliency)
        if found is not None or coords is None or coords.dim() != 4:
            return found
        frames, joints = int(coords.shape[1]), int(coords.shape[2])
        if frames % self.t_patch or joints % self.v_patch:
            return None
        grid = (frames // self.t_patch, joints // self.v_patch)
        return grid if grid[0] * grid[1] == num_tokens else None

    def score(self, context: MaskContext) -> torch.Tensor:
        """Per-patch motion magnitude.

        Args:
            context: ``context.coords`` raw ``(B, Tp·t_patch, Vp·v_patch, C)`` or patchified
                ``(B, Tp, Vp, P)``; only the shape of ``context.tokens`` is read.

        Returns:
            Float32 ``(B, Tp, Vp)`` non-negative motion scores.
        """
        patches = self._patches(context)
        motion = (patches[:, 1:] - patches[:, :-1]).abs().mean(dim=-1)
        return torch.cat([motion[:, :1], motion], dim=1)

    def _patches(self, context: MaskContext) -> torch.Tensor:
        """The coordinates as a float32 patch grid ``(B, Tp, Vp, P)``, checked."""
        batch, time_patches, joint_patches, _ = context.tokens.shape
        coords = context.coords
        frames, joints = time_patches * self.t_patch, joint_patches * self.v_patch
        expected = (
            f"raw (B, T, V, C) = ({batch}, {frames}, {joints}, C) or patchified (B, Tp, Vp, P) "
            f"= ({batch}, {time_patches}, {joint_patches}, P) / (B, L, P)"
        )
        if coords is None:
            raise ValueError(f"MotionAwareMasker needs coords=: {expected}")
        check_tensor(coords, "coords")
        if time_patches < 2:
            raise ValueError(
                "MotionAwareMasker needs at least 2 time patches to measure motion, got "
                f"Tp={time_patches} (T={frames}, t_patch={self.t_patch})"
            )
        shape = tuple(coords.shape)
        if coords.dim() == 4 and coords.shape[3] > 0 and shape[:3] == (batch, frames, joints):
            check_finite(coords, "coords")
            return patchify(coords.detach().float(), self.t_patch, self.v_patch)
        if coords.dim() == 4 and coords.shape[3] > 0 and shape[:3] == (batch, *context.grid_size):
            check_finite(coords, "coords")
            return coords.detach().float()
        raise ValueError(f"coords must be {expected}, got shape {shape}")

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        return f"{super().extra_repr()}, t_patch={self.t_patch}, v_patch={self.v_patch}"
