"""Inputs of the wrong type are errors naming the argument; NumPy scalars are numbers.

NumPy arrays where tensors belong used to fail inside with an ``AttributeError`` (``.dim()``,
``.is_floating_point()``) that named neither the argument nor the fix; strings passed as flags
(``"false"`` is truthy) switched options on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from skelmask.layouts import get_layout, register_layout
from skelmask.losses import (
    CrossContrastLoss,
    MaskedReconstructionLoss,
    MoCoQueue,
    ScaledCosineError,
    SkeleMixContrastLoss,
    coordinate_target,
    motion_target,
)
from skelmask.maskers import (
    GlobalAttentionMasker,
    HyperbolicHierarchyMasker,
    MotionAwareMasker,
    SkeleMix,
)
from skelmask.models import SkeletonEncoder, create_mae
from skelmask.poincare import PoincareEmbedding

ARRAY = np.zeros((2, 8, 5, 3), dtype=np.float32)
FEATURES = torch.zeros(4, 8)

CALLS: dict[str, tuple[str, Callable[[], object]]] = {
    "reconstruction pred": (
        "pred",
        lambda: MaskedReconstructionLoss()(
            np.zeros((2, 10, 12)), torch.zeros(2, 10, 12), torch.ones(2, 10, dtype=torch.bool)
        ),
    ),
    "reconstruction mask": (
        "mask",
        lambda: MaskedReconstructionLoss()(
            torch.zeros(2, 10, 12), torch.zeros(2, 10, 12), np.ones((2, 10), dtype=bool)
        ),
    ),
    "cross contrast": (
        "features",
        lambda: CrossContrastLoss()(np.zeros((2, 10, 8)), torch.zeros(2, 10, dtype=torch.long)),
    ),
    "cosine": ("target", lambda: ScaledCosineError()(FEATURES, FEATURES.numpy())),
    "skelemix loss": (
        "donor",
        lambda: SkeleMixContrastLoss()(
            FEATURES, FEATURES, FEATURES, FEATURES, np.arange(4), torch.zeros(16, 8)
        ),
    ),
    "queue": ("keys", lambda: MoCoQueue(16, 8).enqueue(FEATURES.numpy())),
    "motion target": ("coords", lambda: motion_target(ARRAY, 4)),
    "coordinate target": ("coords", lambda: coordinate_target(ARRAY, 4)),
    "encoder": (
        "x",
        lambda: SkeletonEncoder(num_joints=5, num_frames=8, embed_dim=8, depth=1, num_heads=1)(
            ARRAY.transpose(0, 3, 1, 2)[..., None]
        ),
    ),
    "skelemix": ("x", lambda: SkeleMix("nturgb+d", t_patch=4)(np.zeros((2, 3, 8, 25, 1)))),
    "poincare": ("tokens", lambda: PoincareEmbedding()(np.zeros((2, 3)))),
}


@pytest.mark.parametrize("case", CALLS)
def test_an_array_where_a_tensor_belongs_names_the_argument(case: str) -> None:
    name, call = CALLS[case]
    with pytest.raises(TypeError, match=rf"^{name} must be a torch\.Tensor, got ndarray; "):
        call()


def test_skelemix_takes_a_layout_name_like_the_other_maskers() -> None:
    # It used to fail with an AttributeError on the string.
    x = torch.randn(3, 3, 16, 25, 1)
    by_name = SkeleMix("nturgb+d", t_patch=4)(x, generator=torch.Generator().manual_seed(0))
    by_layout = SkeleMix(get_layout("nturgb+d"), t_patch=4)(
        x, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(by_name.mixed, by_layout.mixed)
    with pytest.raises(KeyError, match="unknown layout 'nope'"):
        SkeleMix("nope")


def test_numpy_scalars_configure_a_model_like_python_numbers() -> None:
    sizes = {"num_frames": np.int64(16), "t_patch": np.int64(4), "embed_dim": np.int64(16)}
    built = create_mae(
        "mamp", layout="nturgb+d", depth=1, num_heads=2, decoder_dim=16, decoder_depth=1,
        mask_ratio=np.float32(0.75), **sizes,  # type: ignore[arg-type]
    )  # fmt: skip
    reference = create_mae(
        "mamp", layout="nturgb+d", depth=1, num_heads=2, decoder_dim=16, decoder_depth=1,
        mask_ratio=float(np.float32(0.75)), num_frames=16, t_patch=4, embed_dim=16,
    )  # fmt: skip
    reference.load_state_dict(built.state_dict())
    x = torch.randn(2, 3, 16, 25, 1)
    out = built(x, generator=torch.Generator().manual_seed(0))
    expected = reference(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.mask, expected.mask)
    assert torch.equal(out.loss, expected.loss)


def test_skelemix_part_counts_must_be_integers() -> None:
    with pytest.raises(TypeError, match=r"num_parts\[0\] must be an integer, got 2\.5"):
        SkeleMix("nturgb+d", num_parts=(2.5, 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"num_parts must be \(low, high\), got \(1, 2, 3\)"):
        SkeleMix("nturgb+d", num_parts=(1, 2, 3))  # type: ignore[arg-type]
    assert SkeleMix("nturgb+d", num_parts=(np.int64(1), 2)).num_parts == (1, 2)


def test_positive_settings_refuse_strings_and_bools() -> None:
    # float("0.8") and float(True) used to pass as temperatures, curvatures and weights.
    for bad in ("0.8", True):
        with pytest.raises(
            ValueError, match=rf"temperature must be a finite number > 0, got {bad!r}"
        ):
            MotionAwareMasker(temperature=bad)  # type: ignore[arg-type]
        with pytest.raises(
            ValueError, match=rf"curvature must be a finite number > 0, got {bad!r}"
        ):
            PoincareEmbedding(curvature=bad)  # type: ignore[arg-type]
    # Real numbers of NumPy and one-element tensors are numbers.
    assert MotionAwareMasker(temperature=np.float32(0.5)).temperature == 0.5
    assert MotionAwareMasker(temperature=torch.tensor(0.5)).temperature == 0.5  # type: ignore[arg-type]


FLAG_CALLS: dict[str, Callable[[object], object]] = {
    "normalize": lambda flag: CrossContrastLoss(normalize=flag),  # type: ignore[arg-type]
    "include_inter": lambda flag: CrossContrastLoss(include_inter=flag),  # type: ignore[arg-type]
    "normalize_target": lambda flag: MaskedReconstructionLoss(normalize_target=flag),  # type: ignore[arg-type]
    "motion_weighted": lambda flag: MaskedReconstructionLoss(motion_weighted=flag),  # type: ignore[arg-type]
    "per_sample": lambda flag: SkeleMix("nturgb+d", per_sample=flag),  # type: ignore[arg-type]
    "hyperbolic": lambda flag: SkeletonEncoder(
        num_joints=5,
        num_frames=8,
        embed_dim=8,
        depth=1,
        num_heads=1,
        hyperbolic=flag,  # type: ignore[arg-type]
    ),
    "learnable_curvature": lambda flag: PoincareEmbedding(learnable_curvature=flag),  # type: ignore[arg-type]
    "standardize": lambda flag: HyperbolicHierarchyMasker(layout="nturgb+d", standardize=flag),  # type: ignore[arg-type]
    "include_self": lambda flag: GlobalAttentionMasker(include_self=flag),  # type: ignore[arg-type]
    "overwrite": lambda flag: register_layout(get_layout("coco"), overwrite=flag),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("flag", FLAG_CALLS)
def test_a_string_is_not_a_flag(flag: str) -> None:
    # "false" from a config file is truthy and used to switch the option on.
    with pytest.raises(TypeError, match=rf"^{flag} must be True or False, got 'false'$"):
        FLAG_CALLS[flag]("false")
