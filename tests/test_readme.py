from __future__ import annotations

import re
from pathlib import Path

import torch

from skelmask import flatten_grid, restore_tokens

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def python_blocks(path: Path = README) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


def test_readme_drop_in_example_runs_and_restores_every_visible_token() -> None:
    namespace: dict[str, object] = {}
    exec(python_blocks()[0], namespace)  # noqa: S102 - the README's own example
    random_masking = namespace["random_masking"]
    assert callable(random_masking)
    tokens = torch.randn(2, 30, 25, 16)
    coords = torch.randn(2, 120, 25, 3)
    x_masked, mask, ids_restore = random_masking(None, tokens, coords)
    assert x_masked.shape == (2, 75, 16)
    assert mask.dtype == torch.float32
    assert mask.sum(dim=1).tolist() == [675.0, 675.0]
    mask_token = torch.zeros(16)
    restored = restore_tokens(x_masked, ids_restore, mask_token)
    flat = flatten_grid(tokens)
    visible = mask == 0
    assert torch.equal(restored[visible], flat[visible])
    assert torch.equal(restored[~visible], torch.zeros(int((~visible).sum()), 16))


def test_hacm_guide_training_step_runs_and_reaches_every_parameter() -> None:
    namespace: dict[str, object] = {}
    exec(python_blocks(ROOT / "docs" / "hacm.md")[0], namespace)  # noqa: S102 - the guide's example
    loss = namespace["loss"]
    assert isinstance(loss, torch.Tensor)
    assert torch.isfinite(loss)
    for name in ("embed", "decode", "encoder"):
        module = namespace[name]
        assert isinstance(module, torch.nn.Module)
        for parameter in module.parameters():
            assert parameter.grad is not None, name
    mask_token = namespace["mask_token"]
    assert isinstance(mask_token, torch.Tensor)
    assert mask_token.grad is not None


def test_training_guide_loading_example_runs() -> None:
    namespace: dict[str, object] = {}
    exec(python_blocks(ROOT / "docs" / "training.md")[0], namespace)  # noqa: S102 - the guide's example
    assert namespace["unexpected"] == []
