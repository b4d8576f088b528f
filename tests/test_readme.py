from __future__ import annotations

import re
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def python_blocks(path: Path = README) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


def test_readme_drop_in_example_is_the_tested_mamp_recipe() -> None:
    """The README's snippet runs inside a MAMP-shaped model (see test_integration_recipes)."""
    from tests.test_integration_recipes import MAMP, assert_restored_in_place, skeletons

    namespace: dict[str, object] = {"MAMP": MAMP}
    exec(python_blocks()[0], namespace)  # noqa: S102 - the README's own example
    model = namespace["MAMPWithSkelmask"]()  # type: ignore[operator]
    for tau in (0.8, 0.0):
        _, mask, _ = model(skeletons(), mask_ratio=0.9, motion_aware_tau=tau)
        assert mask.dtype == torch.float32
        assert mask.sum(dim=1).tolist() == [90.0] * 4
        assert_restored_in_place(model, mask)
    assert model.calls == []
    model.load_state_dict(MAMP().state_dict(), strict=True)


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
