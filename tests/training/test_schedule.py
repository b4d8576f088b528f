from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from skelmask.training import WarmupCosineScheduler, param_groups, warmup_cosine


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 0.0),
        (1, 0.5),  # warm-up: 2.0 · 1/4
        (2, 1.0),
        (4, 2.0),  # end of warm-up: peak
        (8, 1.25),  # half-way through the cosine: 0.5 + 1.5 · (1 + cos(π/2)) / 2
        (10, 0.5 + 0.75 * (1 + math.cos(math.pi * 6 / 8))),
        (12, 0.5),  # end: min_lr
        (20, 0.5),  # held past the end
    ],
)
def test_warmup_cosine_matches_a_hand_computation(step: int, expected: float) -> None:
    lr = warmup_cosine(step, base_lr=2.0, min_lr=0.5, warmup_steps=4, total_steps=12)
    assert lr == pytest.approx(expected)


def test_scheduler_sets_every_step_and_keeps_layer_scales() -> None:
    weights = [torch.zeros(1, requires_grad=True) for _ in range(2)]
    optimizer = torch.optim.SGD(
        [{"params": [weights[0]], "lr_scale": 1.0}, {"params": [weights[1]], "lr_scale": 0.25}],
        lr=99.0,
    )
    schedule = {"base_lr": 2.0, "min_lr": 0.5, "warmup_steps": 4, "total_steps": 12}
    scheduler = WarmupCosineScheduler(optimizer, **schedule)  # type: ignore[arg-type]
    assert scheduler.get_last_lr() == [0.0, 0.0]
    for step in range(1, 13):
        scheduler.step()
        expected = warmup_cosine(step, **schedule)  # type: ignore[arg-type]
        assert scheduler.get_last_lr() == pytest.approx([expected, 0.25 * expected])
    # The state is the step alone and restores the matching learning rates.
    fresh = WarmupCosineScheduler(optimizer, **schedule)  # type: ignore[arg-type]
    assert fresh.get_last_lr() == [0.0, 0.0]
    fresh.load_state_dict(scheduler.state_dict())
    assert fresh.state_dict() == {"last_step": 12}
    assert fresh.get_last_lr() == pytest.approx([0.5, 0.125])


class ToyEncoder(nn.Module):
    """BEiT-style layering: embeddings 0, block i -> i + 1, final norm depth + 1."""

    def __init__(self, depth: int = 2) -> None:
        super().__init__()
        self.depth = depth
        self.patch = nn.Linear(3, 4)
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, 4))
        self.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(depth))
        self.norm = nn.LayerNorm(4)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"}

    def layer_id(self, name: str) -> int:
        if name.startswith(("patch", "pos_embed")):
            return 0
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        return self.depth + 1


class ToyClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = ToyEncoder()
        self.head = nn.Linear(4, 3)


def _by_name(groups: list[dict[str, object]]) -> dict[str, tuple[float, float, float]]:
    table = {}
    for group in groups:
        for name in group["param_names"]:  # type: ignore[attr-defined]
            table[name] = (group["weight_decay"], group["lr_scale"], group["lr"])
    return table


def test_param_groups_exempt_biases_norms_and_embeddings_and_decay_layers() -> None:
    model = ToyClassifier()
    model.encoder.blocks[0].bias.requires_grad_(False)  # frozen parameters are left out
    table = _by_name(param_groups(model, lr=1.0, weight_decay=0.05, layer_decay=0.5))
    # Top layer index is depth + 1 = 3; layer i gets 0.5 ** (3 - i); the head counts as top.
    expected = {
        "encoder.patch.weight": (0.05, 0.125),
        "encoder.patch.bias": (0.0, 0.125),
        "encoder.pos_embed": (0.0, 0.125),  # 3-D, exempt through no_weight_decay(), prefixed
        "encoder.blocks.0.weight": (0.05, 0.25),
        "encoder.blocks.1.weight": (0.05, 0.5),
        "encoder.blocks.1.bias": (0.0, 0.5),
        "encoder.norm.weight": (0.0, 1.0),
        "encoder.norm.bias": (0.0, 1.0),
        "head.weight": (0.05, 1.0),
        "head.bias": (0.0, 1.0),
    }
    assert {name: row[:2] for name, row in table.items()} == expected
    assert all(row[2] == pytest.approx(row[1]) for row in table.values())  # lr = 1.0 · scale


def test_param_groups_without_layer_decay_and_usable_by_adamw() -> None:
    model = ToyClassifier()
    groups = param_groups(model, lr=0.1, weight_decay=0.05)
    table = _by_name(groups)
    assert {row[1] for row in table.values()} == {1.0}
    assert table["encoder.pos_embed"][0] == 0.0
    assert table["encoder.blocks.0.weight"][0] == 0.05
    assert len(groups) == 2
    optimizer = torch.optim.AdamW(groups, lr=0.1)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))


def test_layer_decay_needs_a_layer_id() -> None:
    with pytest.raises(ValueError, match="layer_id"):
        param_groups(nn.Linear(2, 2), lr=0.1, weight_decay=0.0, layer_decay=0.8)
