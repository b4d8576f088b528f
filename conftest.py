"""Doctest namespace: docstring examples may use ``torch`` and every public skelmask name."""

from __future__ import annotations

import pytest
import torch

import skelmask


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace: dict[str, object]) -> None:
    doctest_namespace["torch"] = torch
    for name in skelmask.__all__:
        doctest_namespace[name] = getattr(skelmask, name)
