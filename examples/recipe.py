"""Recipes: the options a published protocol fixes, read from a small JSON file.

A recipe is a JSON object with four keys::

    {
        "source": "the paper, table and section its values come from",
        "notes": "what the recipe does not set (data paths, options the examples lack)",
        "examples": ["train_hacm"],
        "options": {"window": 120, "t-patch": 4, "epochs": 400, "lr": 0.001},
    }

``options`` maps an example's long option names (without ``--``) to JSON values: ``true`` or
``false`` for switches, numbers for numeric options, strings otherwise. The values go through
the same checks as the command line, and become the parser's defaults, so that an option given
on the command line overrides the recipe, which overrides the example's defaults. ``--recipe``
takes a shipped recipe's name (a file of ``examples/recipes/``) or the path of any JSON file,
e.g. a copy the user edited.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
"""The shipped recipes, one ``<name>.json`` each."""

_KEYS = {"source": str, "notes": str, "examples": list, "options": dict}

# Where the data lives and what this run does with its folder belong to the command line.
_COMMAND_LINE_ONLY = (
    "recipe",
    "data_root",
    "train_file",
    "test_file",
    "output_dir",
    "overwrite",
    "resume",
    "device",
    "tensorboard",
    "help",
)


class RecipeError(ValueError):
    """A recipe that cannot be found or read; the message names the file and the key."""


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe file (options not yet checked against an example's parser)."""

    name: str
    path: Path
    source: str
    notes: str
    examples: tuple[str, ...]
    options: dict[str, Any]


def list_recipes() -> list[str]:
    """Names of the shipped recipes, sorted."""
    return sorted(path.stem for path in RECIPES_DIR.glob("*.json"))


def find_recipe(name_or_path: str) -> Path:
    """The file of a shipped recipe's name, or ``name_or_path`` itself when it is a file."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = RECIPES_DIR / f"{name_or_path}.json"
    if shipped.is_file():
        return shipped
    raise RecipeError(
        f"no recipe named {name_or_path!r} and no such file; shipped recipes: "
        + ", ".join(list_recipes())
    )


def load_recipe(name_or_path: str) -> Recipe:
    """Reads and checks the structure of a recipe (its options are checked by ``apply``)."""
    path = find_recipe(name_or_path)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RecipeError(
            f"{path}: not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise RecipeError(f"{path}: cannot be read: {error}") from None
    if not isinstance(content, dict):
        raise RecipeError(f"{path}: expected a JSON object, got {type(content).__name__}")
    unknown = sorted(set(content) - set(_KEYS))
    if unknown:
        raise RecipeError(f"{path}: unknown key(s) {unknown}; a recipe has {sorted(_KEYS)}")
    for key, expected in _KEYS.items():
        if key not in content:
            raise RecipeError(f"{path}: missing key {key!r}")
        if not isinstance(content[key], expected):
            raise RecipeError(
                f"{path}: {key!r} must be a JSON {_json_type(expected)}, "
                f"got {type(content[key]).__name__}"
            )
    if not all(isinstance(example, str) for example in content["examples"]):
        raise RecipeError(f"{path}: 'examples' must be a list of example names (strings)")
    return Recipe(
        name=path.stem,
        path=path,
        source=content["source"],
        notes=content["notes"],
        examples=tuple(content["examples"]),
        options=content["options"],
    )


def _json_type(expected: type) -> str:
    return {str: "string", list: "list", dict: "object"}[expected]


def resolve(parser: argparse.ArgumentParser, recipe: Recipe) -> dict[str, Any]:
    """The recipe's options as parser defaults (``dest`` → value), each checked like argv.

    Raises:
        RecipeError: An option the parser lacks, one that belongs to the command line only,
            a value of the wrong JSON type, or one its option refuses; names file and key.
    """
    actions = parser._option_string_actions
    defaults: dict[str, Any] = {}
    for key, value in recipe.options.items():
        where = f"{recipe.path}: options.{key}"
        action = actions.get(f"--{key}")
        if action is None:
            raise RecipeError(
                f"{where}: {parser.prog} has no option --{key} (the recipe is for: "
                f"{', '.join(recipe.examples)})"
            )
        if action.dest in _COMMAND_LINE_ONLY:
            raise RecipeError(
                f"{where}: --{key} is not part of a recipe; give it on the command line"
            )
        defaults[action.dest] = _value(action, value, where)
    return defaults


def _value(action: argparse.Action, value: Any, where: str) -> Any:
    """``value`` converted and checked by ``action``'s type and choices."""
    switch = action.nargs == 0 and isinstance(action.const, bool)
    if switch or isinstance(value, bool):
        if not (switch and isinstance(value, bool)):
            expected = "true or false" if switch else "a number or a string"
            raise RecipeError(f"{where}: expected {expected}, got {json.dumps(value)}")
        return value if action.const else not value  # store_false: true means "switch on"
    numeric = isinstance(action.default, (int, float)) and not isinstance(action.default, bool)
    if numeric and not isinstance(value, (int, float)):
        raise RecipeError(f"{where}: expected a number, got {json.dumps(value)}")
    if not isinstance(value, (str, int, float)):
        raise RecipeError(f"{where}: expected a number or a string, got {json.dumps(value)}")
    if action.type is None and not isinstance(value, str):
        raise RecipeError(f"{where}: expected a string, got {json.dumps(value)}")
    converted: Any = value
    if callable(action.type):
        try:
            converted = action.type(str(value))
        except (argparse.ArgumentTypeError, ValueError, TypeError) as error:
            raise RecipeError(f"{where}: {error}") from None
    if action.choices is not None and converted not in action.choices:
        raise RecipeError(
            f"{where}: {json.dumps(value)} is not one of {sorted(map(str, action.choices))}"
        )
    return converted
