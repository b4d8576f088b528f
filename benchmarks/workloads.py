"""What the benchmarks run: synthetic skeleton batches, maskers, models and one optimiser step.

Nothing here times anything (that is ``harness``). Every builder seeds the global RNG first,
so two runs build the same weights and data.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import harness
import numpy as np
import torch
from torch import nn

from skelmask.layouts import SkeletonLayout, get_layout, list_layouts
from skelmask.maskers import (
    CrossMasker,
    DegreeMotionMasker,
    GlobalAttentionMasker,
    HyperbolicHierarchyMasker,
    Masker,
    MotionAwareMasker,
    RandomMasker,
    SaliencyMasker,
    SemanticTubeMasker,
)
from skelmask.models import create_mae
from skelmask.models.mae import TransformerMAE
from skelmask.training.schedule import param_groups

Precision = Literal["float32", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("float32", "bf16")
PRESETS = ("mae", "mamp", "hacm")

# Maskers written by other contributors; benchmarked when their modules exist.
OPTIONAL_MASKERS = {
    "BodyPartMasker": ("skelmask.maskers.body_part", "mae"),
    "SkeleMix": ("skelmask.maskers.skelemix", "mae"),
}
# Input sets cycled through, so that repeated calls do not just re-read one cached buffer.
NUM_INPUT_SETS = 2


@dataclass(frozen=True)
class ModelSize:
    """Encoder and decoder sizes of a benchmarked model."""

    width: int
    depth: int
    heads: int
    decoder_width: int
    decoder_depth: int


MAMP_SIZE = ModelSize(width=256, depth=8, heads=8, decoder_width=256, decoder_depth=3)
CPU_SIZE = ModelSize(width=128, depth=4, heads=4, decoder_width=128, decoder_depth=2)
TINY_SIZE = ModelSize(width=16, depth=1, heads=2, decoder_width=16, decoder_depth=1)


@dataclass(frozen=True)
class MaskerCase:
    """A masker to benchmark and the preset whose pretraining step it belongs to."""

    name: str
    masker: nn.Module
    preset: str
    follows_contract: bool


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``--width``, ``--depth``, ``--heads``, ``--decoder-width`` and ``--decoder-depth``."""
    for field in ModelSize.__dataclass_fields__:
        parser.add_argument(
            f"--{field.replace('_', '-')}",
            type=int,
            default=None,
            help=f"default {getattr(MAMP_SIZE, field)} on CUDA, {getattr(CPU_SIZE, field)} on CPU",
        )


def model_size(args: argparse.Namespace) -> ModelSize:
    """The sizes: explicit options, else ``--tiny``'s, else the device's default."""
    fields = {
        field: harness.pick(
            getattr(args, field),
            tiny=getattr(TINY_SIZE, field),
            cuda=getattr(MAMP_SIZE, field),
            cpu=getattr(CPU_SIZE, field),
            args=args,
        )
        for field in ModelSize.__dataclass_fields__
    }
    return ModelSize(**fields)


def layout_for_joints(num_joints: int) -> SkeletonLayout:
    """A built-in layout with ``num_joints`` joints, else a synthetic one.

    The synthetic layout is a binary tree (joint ``j``'s parent is ``(j - 1) // 2``) with the
    joints split into five contiguous body parts, enough for every masker that reads a layout.
    """
    for name in list_layouts():
        layout = get_layout(name)
        if layout.num_joints == num_joints:
            return layout
    if num_joints < 5:
        raise SystemExit(f"a synthetic layout needs at least 5 joints, got {num_joints}")
    parts = np.array_split(np.arange(num_joints), 5)
    return SkeletonLayout.from_parents(
        [-1] + [(joint - 1) // 2 for joint in range(1, num_joints)],
        name=f"synthetic-{num_joints}",
        body_parts={f"part{i}": part.tolist() for i, part in enumerate(parts)},
    )


def skeleton_batches(
    batch_size: int,
    *,
    frames: int,
    joints: int,
    persons: int,
    channels: int = 3,
    device: torch.device,
    seed: int,
) -> list[torch.Tensor]:
    """Random-walk clips ``(N, C, T, V, M)`` float32, never all zeros.

    Returns:
        ``NUM_INPUT_SETS`` batches of shape ``(batch_size, channels, frames, joints, persons)``.
    """
    generator = torch.Generator().manual_seed(seed)
    shape = (batch_size, channels, frames, joints, persons)
    return [
        (torch.randn(shape, generator=generator) * 0.02).cumsum(dim=2).to(device)
        for _ in range(NUM_INPUT_SETS)
    ]


def masker_inputs(
    batch_size: int,
    *,
    frames: int,
    joints: int,
    t_patch: int,
    width: int,
    device: torch.device,
    seed: int,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Token grids ``(B, Tp, V, D)`` and coordinates ``(B, T, V, 3)``, float32.

    The tokens have unit root-mean-square norm, of the order of an embedding at initialisation
    (``randn`` tokens of norm ``sqrt(D)`` would all lie beyond ``HyperbolicHierarchyMasker``'s
    clip radius, a case it warns about).

    Returns:
        ``NUM_INPUT_SETS`` pairs ``(tokens, coords)``.
    """
    generator = torch.Generator().manual_seed(seed)
    pairs = []
    for _ in range(NUM_INPUT_SETS):
        shape = (batch_size, frames // t_patch, joints, width)
        tokens = torch.randn(shape, generator=generator) / width**0.5
        coords = (torch.randn(batch_size, frames, joints, 3, generator=generator) * 0.02).cumsum(1)
        pairs.append((tokens.to(device), coords.to(device)))
    return pairs


def core_maskers(
    layout: SkeletonLayout, *, t_patch: int, mask_ratio: float = 0.9
) -> list[MaskerCase]:
    """The library's maskers: the presets' in their configurations, then the 2025–26 ones.

    The 2025–26 maskers (SLiM's tubes, ASMa's degree/motion view, MaskSem's saliency) are
    measured against the plain ``mae`` step, the model ``create_mae("mae", masker=...)`` builds
    around them.
    """
    return [
        MaskerCase("RandomMasker", RandomMasker(mask_ratio), "mae", True),
        MaskerCase(
            "MotionAwareMasker", MotionAwareMasker(mask_ratio, t_patch=t_patch), "mamp", True
        ),
        MaskerCase(
            "HyperbolicHierarchyMasker",
            HyperbolicHierarchyMasker(mask_ratio, layout=layout),
            "hacm",
            True,
        ),
        MaskerCase("GlobalAttentionMasker", GlobalAttentionMasker(mask_ratio), "hacm", True),
        MaskerCase(
            "CrossMasker.hacm",
            CrossMasker.hacm(
                HyperbolicHierarchyMasker(mask_ratio, layout=layout), mask_ratio=mask_ratio
            ),
            "hacm",
            True,
        ),
        MaskerCase(
            "SemanticTubeMasker", SemanticTubeMasker(mask_ratio, layout=layout), "mae", True
        ),
        MaskerCase(
            "DegreeMotionMasker",
            DegreeMotionMasker("hub_still", mask_ratio, layout=layout, t_patch=t_patch),
            "mae",
            True,
        ),
        MaskerCase("SaliencyMasker", SaliencyMasker(mask_ratio), "mae", True),
    ]


def optional_maskers(
    layout: SkeletonLayout, *, t_patch: int, mask_ratio: float = 0.9
) -> tuple[list[MaskerCase], list[str]]:
    """The contributed maskers whose modules exist, built from the arguments they accept.

    Returns:
        The cases, and one note per masker that is absent or could not be built.
    """
    known = {
        "mask_ratio": mask_ratio,
        "layout": layout,
        "t_patch": t_patch,
    }
    cases, notes = [], []
    for class_name, (module_name, preset) in OPTIONAL_MASKERS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            notes.append(f"{class_name}: {module_name} not present, skipped")
            continue
        cls = getattr(module, class_name, None)
        if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
            notes.append(f"{class_name}: no nn.Module of that name in {module_name}, skipped")
            continue
        accepted = inspect.signature(cls).parameters
        try:
            masker = cls(**{name: value for name, value in known.items() if name in accepted})
        except (TypeError, ValueError) as error:
            notes.append(f"{class_name}: could not be built ({error}), skipped")
            continue
        cases.append(MaskerCase(class_name, masker, preset, isinstance(masker, Masker)))
    return cases, notes


def masker_call(
    case: MaskerCase,
    inputs: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    persons: int,
) -> Callable[[], object]:
    """One masking decision per call, cycling through ``inputs``.

    A masker that follows the masker contract gets ``(tokens, coords=coords)``, and one that
    reads ``saliency=`` also a map made beforehand (the tokens' norms), so that the time is the
    masker's alone and not that of computing the map (MaskSem's Grad-CAM costs a backward
    pass). One that does not follow the contract (SkeleMix mixes whole clips) gets the clips as
    ``(N, C, T, V, M)``.
    """
    masker = case.masker.to(inputs[0][0].device)
    if case.follows_contract:
        reads_saliency = isinstance(masker, Masker) and "saliency" in masker.call_inputs
        guided = []
        for tokens, coords in inputs:
            guidance = {"coords": coords}
            if reads_saliency:
                guidance["saliency"] = tokens.norm(dim=-1)  # (B, Tp, V)
            guided.append((tokens, guidance))
        calls = itertools.cycle(guided)

        def call() -> object:
            tokens, guidance = next(calls)
            with torch.no_grad():
                return masker(tokens, **guidance)

        return call
    clips = itertools.cycle(
        [
            coords.reshape(-1, persons, *coords.shape[1:]).permute(0, 4, 2, 3, 1)
            for _, coords in inputs
        ]
    )

    def call_on_clips() -> object:
        with torch.no_grad():
            return masker(next(clips))

    return call_on_clips


def build_mae(
    preset: str,
    layout: SkeletonLayout,
    *,
    frames: int,
    t_patch: int,
    size: ModelSize,
    device: torch.device,
    seed: int,
) -> TransformerMAE:
    """``create_mae(preset, ...)`` at ``size``, on ``device``, seeded."""
    torch.manual_seed(seed)
    model = create_mae(
        preset,  # type: ignore[arg-type]
        layout=layout,
        num_frames=frames,
        t_patch=t_patch,
        embed_dim=size.width,
        depth=size.depth,
        num_heads=size.heads,
        decoder_dim=size.decoder_width,
        decoder_depth=size.decoder_depth,
    )
    return model.to(device)


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on the device for ``"bf16"``; nothing for ``"float32"``."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def training_step(
    model: nn.Module,
    loss_of: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    batches: Sequence[torch.Tensor],
    *,
    device: torch.device,
    precision: Precision = "float32",
    compile_model: bool = False,
) -> Callable[[], None]:
    """One AdamW pretraining step per call (forward, backward, update), cycling through batches.

    The optimiser is the pretraining loop's: AdamW with betas (0.9, 0.95) and weight decay 0.05
    on the parameter groups of ``skelmask.training.schedule.param_groups``. The step reads no
    value back to the host, so on CUDA it stays asynchronous like a real training loop.

    Args:
        model: The model, on ``device``.
        loss_of: Maps ``(model, batch)`` to the scalar loss.
        batches: ``(N, C, T, V, M)`` batches on ``device``.
        device: Where the model runs.
        precision: ``"float32"`` or ``"bf16"`` autocast.
        compile_model: Run the forward pass through ``torch.compile``.
    """
    optimizer = torch.optim.AdamW(
        param_groups(model, lr=1e-4, weight_decay=0.05), lr=1e-4, betas=(0.9, 0.95)
    )
    forward: nn.Module = torch.compile(model) if compile_model else model  # type: ignore[assignment]
    clips: Iterator[torch.Tensor] = itertools.cycle(batches)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        forward_backward(forward, loss_of, next(clips), device=device, precision=precision)()
        optimizer.step()

    return step


def forward_backward(
    model: nn.Module,
    loss_of: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    device: torch.device,
    precision: Precision = "float32",
) -> Callable[[], None]:
    """The forward pass (under ``precision``) and the backward pass of one batch, as a call.

    This is the part of a training step that ``harness.count_flops`` and
    ``harness.count_host_syncs`` look at; the optimiser update is left out.

    Args:
        model: The model, on ``device``.
        loss_of: Maps ``(model, batch)`` to the scalar loss.
        x: One ``(N, C, T, V, M)`` batch on ``device``.
        device: Where the model runs.
        precision: ``"float32"`` or ``"bf16"`` autocast.
    """

    def call() -> None:
        with autocast(device, precision):
            loss = loss_of(model, x)
        loss.backward()  # type: ignore[no-untyped-call]

    return call


def mae_loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The total loss of a ``TransformerMAE`` (possibly compiled)."""
    loss: torch.Tensor = model(x).loss
    return loss
