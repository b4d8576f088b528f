"""Motion-aware masking (MAMP): salient motion is preferentially hidden."""

from __future__ import annotations

import torch

from skelmask._checks import check_coords, check_patch_size
from skelmask.maskers.base import ScoreGuidedMasker
from skelmask.sampling import Direction
from skelmask.tokens import patchify

__all__ = ["MotionAwareMasker"]


class MotionAwareMasker(ScoreGuidedMasker):
    """MAMP's motion-aware masking, read from the raw coordinates.

    The coordinates are cut into the same ``t_patch × v_patch`` patches as the tokens. A token's
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

    Raises:
        ValueError: On invalid arguments, or at call time when ``coords`` is missing, has a shape
            that does not match the grid (``T = Tp·t_patch``, ``V = Vp·v_patch``), holds NaN, or
            the grid has a single time patch (motion needs two).

    Examples:
        >>> masker = MotionAwareMasker(mask_ratio=0.9, t_patch=4)
        >>> coords = torch.randn(2, 120, 25, 3)
        >>> result = masker(torch.randn(2, 30, 25, 256), coords=coords)
        >>> result.ids_keep.shape, result.scores.shape
        (torch.Size([2, 75]), torch.Size([2, 750]))
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
        self.t_patch = check_patch_size(t_patch, "t_patch")
        self.v_patch = check_patch_size(v_patch, "v_patch")

    def score(self, tokens: torch.Tensor, *, coords: torch.Tensor | None = None) -> torch.Tensor:
        """Per-patch motion magnitude.

        Args:
            tokens: Token grid ``(B, Tp, Vp, D)``; only its shape is read.
            coords: Raw coordinates ``(B, Tp·t_patch, Vp·v_patch, C)``.

        Returns:
            Float32 ``(B, Tp, Vp)`` non-negative motion scores.
        """
        batch, time_patches, joint_patches, _ = tokens.shape
        coords = check_coords(
            coords,
            batch=batch,
            frames=time_patches * self.t_patch,
            joints=joint_patches * self.v_patch,
        )
        if time_patches < 2:
            raise ValueError(
                "MotionAwareMasker needs at least 2 time patches to measure motion, got "
                f"Tp={time_patches} (T={time_patches * self.t_patch}, t_patch={self.t_patch})"
            )
        patches = patchify(coords.detach().float(), self.t_patch, self.v_patch)
        motion = (patches[:, 1:] - patches[:, :-1]).abs().mean(dim=-1)
        return torch.cat([motion[:, :1], motion], dim=1)

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        return f"{super().extra_repr()}, t_patch={self.t_patch}, v_patch={self.v_patch}"
