"""Integer batches, and floats of another dtype than the parameters outside autocast, are refused
by every model with an error naming ``x`` and the fix."""

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


@pytest.mark.parametrize("build", [_mae, _gin, _stgcn])
@pytest.mark.parametrize(("model_dtype", "dtype"), [(torch.float32, torch.float64),
                                                    (torch.float32, torch.bfloat16),
                                                    (torch.float64, torch.float32)])  # fmt: skip
def test_float_input_of_another_dtype_names_x_and_the_fix(
    build: Callable[[], nn.Module], model_dtype: torch.dtype, dtype: torch.dtype
) -> None:
    # float64 batches from NumPy are the usual case; they used to fail inside the first layer.
    model = build().to(model_dtype)
    x = torch.ones(2, 3, 8, 25, 1, dtype=dtype)
    message = rf"x has dtype {dtype} but the model's parameters are {model_dtype}; .*x\.to\("
    with pytest.raises(TypeError, match=message):
        model(x)
    model(x.to(model_dtype))  # the same batch in the parameters' dtype is fine


@pytest.mark.parametrize("build", [_mae, _gin, _stgcn])
def test_autocast_takes_lower_precision_input_but_not_float64(
    build: Callable[[], nn.Module],
) -> None:
    # Autocast casts a bfloat16 batch where a layer needs it; float64 it leaves to normalisation
    # layers, which would fail on the mix, so it is refused up front.
    model = build()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(torch.ones(2, 3, 8, 25, 1, dtype=torch.bfloat16))
        with pytest.raises(TypeError, match=r"x has dtype torch\.float64"):
            model(torch.ones(2, 3, 8, 25, 1, dtype=torch.float64))
