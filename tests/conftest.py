"""Shared test configuration: the ``cuda`` marker, RNG isolation and real-data locations."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skips ``cuda``-marked tests, parametrised ones included, when no GPU is present."""
    if torch.cuda.is_available():
        return
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device; none is available")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip_cuda)


@pytest.fixture(autouse=True)
def _fresh_compile_cache() -> Iterator[None]:
    """Starts every test with empty dynamo caches.

    Many tests compile maskers that share code objects (``Masker.forward``); without a reset their
    compilations add up across the session to dynamo's recompile limit.
    """
    yield
    torch.compiler.reset()


@pytest.fixture(autouse=True)
def _restore_rng_state() -> Iterator[None]:
    """Restores torch, CUDA, numpy and python RNG states around every test (masks draw noise)."""
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    # The legacy global numpy RNG is the state that leaks between tests, so it is what we save.
    numpy_state = np.random.get_state()  # noqa: NPY002
    python_state = random.getstate()
    yield
    torch.set_rng_state(torch_state)
    if cuda_states is not None:
        torch.cuda.set_rng_state_all(cuda_states)
    np.random.set_state(numpy_state)  # noqa: NPY002
    random.setstate(python_state)


@pytest.fixture
def shared_data() -> Path:
    """Path to ``../shared/data``; skips the test when the research data is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real skeleton data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(
    params=[
        "cpu",
        pytest.param("cuda", marks=pytest.mark.cuda),
    ]
)
def device(request: pytest.FixtureRequest) -> torch.device:
    """Runs a test on CPU and, under the ``cuda`` marker, on the GPU."""
    return torch.device(request.param)


@pytest.fixture
def meta_device(monkeypatch: pytest.MonkeyPatch) -> torch.device:
    """PyTorch's ``meta`` device, to show that code reads nothing back to the host off the CPU.

    A meta tensor has shapes but no values, so ``.item()``, ``bool(tensor)``, ``nonzero`` and any
    copy to the CPU raise on it: code that runs on it would not stop a GPU's host every step.
    The meta device has no autocast, so ``torch.autocast`` regions become no-ops for the test.
    """
    monkeypatch.setattr(torch, "autocast", lambda *args, **kwargs: contextlib.nullcontext())
    return torch.device("meta")
