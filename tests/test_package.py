from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import skelmask

ROOT = Path(__file__).resolve().parents[1]

# Names the design contract requires at the package root.
CONTRACT_NAMES = [
    "RandomMasker",
    "MotionAwareMasker",
    "HyperbolicHierarchyMasker",
    "GlobalAttentionMasker",
    "CrossMasker",
    "BodyPartMasker",
    "CrossContrastLoss",
    "SkeletonLayout",
    "get_layout",
]


def test_contract_names_import_from_the_package_root() -> None:
    for name in CONTRACT_NAMES:
        assert hasattr(skelmask, name), name


def test_every_exported_name_exists_once() -> None:
    assert sorted(skelmask.__all__) == sorted(set(skelmask.__all__))
    for name in skelmask.__all__:
        assert hasattr(skelmask, name), name


def test_version_matches_the_package_metadata() -> None:
    from importlib.metadata import version

    assert skelmask.__version__ == version("skelmask")


def test_import_is_silent_and_does_not_load_optional_or_heavy_modules() -> None:
    # Only what skelmask adds counts: `import torch` itself may load tqdm when it is installed.
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('error')\n"
        "import torch\n"
        "before = set(sys.modules)\n"
        "import skelmask\n"
        "added = set(sys.modules) - before\n"
        "print(','.join(m for m in ('geoopt', 'matplotlib', 'tqdm') if m in added))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert completed.stdout.strip() == ""


def test_runtime_dependencies_are_exactly_the_four_with_floor_pins() -> None:
    tomllib = pytest.importorskip("tomllib")  # standard library from Python 3.11
    metadata = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dependencies = metadata["project"]["dependencies"]
    names = sorted(d.split(">=")[0] for d in dependencies)
    assert names == ["einops", "geoopt", "numpy", "torch"]
    assert all(">=" in d and "<" not in d for d in dependencies)


def test_package_ships_py_typed() -> None:
    assert (Path(skelmask.__file__).parent / "py.typed").is_file()
