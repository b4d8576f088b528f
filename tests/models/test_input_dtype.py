"""Integer batches are refused by every model with an error naming ``x`` and the fix."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from skelmask.layouts import get_layout
from skelmask.maskers.body_part import BodyPartMasker
from skelmask.models import create_mae
from skelmask.models.gin import GINEncoder, GINSkeletonMAE
from skelmask.models.stgcn import STGCN


def _mae() -> nn.Module:
    return create_mae(
        "mae", layout="nturgb+d", num_frames=8, t_patch=4, embed_dim=8, depth=1, num_heads=1,
        decoder_dim=8, decoder_depth=1,
    )  # fmt: skip


def _gin() -> nn.Module:
    encoder = GINEncoder("nturgb+d", width=8, depth=1, temporal_segments=2)
    return GINSkeletonMAE(encoder, BodyPartMasker(layout="nturgb+d", num_parts=1))


def _stgcn() -> nn.Module:
    return STGCN(get_layout("nturgb+d"), channels=[4], strides=[1])


@pytest.mark.parametrize("build", [_mae, _gin, _stgcn])
@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool])
def test_integer_input_names_x_and_the_fix(
    build: Callable[[], nn.Module], dtype: torch.dtype
) -> None:
    model = build()
    x = torch.ones(2, 3, 8, 25, 1, dtype=dtype)
    with pytest.raises(TypeError, match=rf"x must be a floating-point tensor .* got dtype {dtype}"):
        model(x)
    model(x.float())  # the same batch as floats is fine
