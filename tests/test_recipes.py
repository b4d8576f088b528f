"""Recipes of the examples: every shipped one resolves, precedence, errors, config.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))
try:
    import recipe as recipes
    import train_hacm
    import train_skelemixclr
    import train_skeletonmae
finally:
    sys.path.remove(str(EXAMPLES))

SCRIPTS: dict[str, ModuleType] = {
    "train_hacm": train_hacm,
    "train_skelemixclr": train_skelemixclr,
    "train_skeletonmae": train_skeletonmae,
}
SHIPPED = recipes.list_recipes()


def _data_args(tmp_path: Path) -> list[str]:
    """Stand-ins for the paths a recipe leaves to the command line (only checked to exist)."""
    placeholder = tmp_path / "split.npz"
    placeholder.touch()
    return ["--train-file", str(placeholder), "--test-file", str(placeholder),
            "--data-root", str(tmp_path), "--output-dir", str(tmp_path / "run")]  # fmt: skip


def _write(tmp_path: Path, content: dict[str, Any], name: str = "mine.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(content))
    return path


def _recipe(**options: Any) -> dict[str, Any]:
    return {"source": "a test", "notes": "", "examples": ["train_hacm"], "options": options}


def test_the_shipped_recipes_cover_the_published_protocols() -> None:
    expected = {
        "mamp-ntu60-xsub", "mamp-ntu60-xview", "mamp-ntu120-xsub", "mamp-ntu120-xset",
        "mamp-pku1", "mamp-pku2", "hacm-ntu60-xsub", "hacm-ntu60-xview", "hacm-ntu120-xsub",
        "hacm-pku2", "nwucla-views12to3", "msr-action3d-xsub",
    }  # fmt: skip
    assert expected <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_recipe_resolves_against_every_example_it_names(
    name: str, tmp_path: Path
) -> None:
    recipe = recipes.load_recipe(name)
    assert recipe.source.strip()
    assert recipe.examples
    for example in recipe.examples:
        args = SCRIPTS[example].parse_args(["--recipe", name, *_data_args(tmp_path)])
        assert args.recipe_info == {
            "name": name,
            "file": str(recipes.RECIPES_DIR / f"{name}.json"),
            "source": recipe.source,
        }
        for key, value in recipe.options.items():
            dest = "method" if key == "preset" else key.replace("-", "_")
            assert getattr(args, dest) == value, (example, key)


def test_mamp_recipe_holds_the_papers_pretraining_values(tmp_path: Path) -> None:
    args = train_hacm.parse_args(["--recipe", "mamp-ntu60-xsub", *_data_args(tmp_path)])
    assert (args.method, args.window, args.t_patch, args.embed_dim, args.depth) == (
        "mamp", 120, 4, 256, 8,
    )  # fmt: skip
    assert (args.epochs, args.warmup_epochs, args.lr, args.min_lr) == (400, 20, 1e-3, 5e-4)
    assert args.mask_temperature == 0.8
    ntu120 = train_hacm.parse_args(["--recipe", "mamp-ntu120-xset", *_data_args(tmp_path)])
    assert ntu120.mask_temperature == 0.75  # MAMP's tau for NTU-120
    for name in ("mamp-ntu60-xsub", "mamp-ntu60-xview", "mamp-ntu120-xsub", "mamp-ntu120-xset",
                 "mamp-pku1", "mamp-pku2"):  # fmt: skip
        finetuning = train_hacm.parse_args(["--recipe", name, *_data_args(tmp_path)])
        assert (finetuning.drop_path, finetuning.finetune_batch_size) == (0.3, 24), name
        assert finetuning.velocity_input is False, name


@pytest.mark.parametrize(
    ("name", "velocity"),
    [("hacm-ntu60-xsub", False), ("hacm-ntu60-xview", False), ("hacm-ntu120-xsub", True),
     ("hacm-pku2", True)],
)  # fmt: skip
def test_hacm_recipes_feed_velocity_where_its_configs_do(
    name: str, velocity: bool, tmp_path: Path
) -> None:
    args = train_hacm.parse_args(["--recipe", name, *_data_args(tmp_path)])
    assert args.velocity_input is velocity
    assert args.model_config["velocity_input"] is velocity  # checkpoints record it


def test_no_recipe_still_claims_an_option_is_missing() -> None:
    for name in SHIPPED:
        notes = recipes.load_recipe(name).notes
        for stale in ("no drop-path option", "fine-tuning uses --batch-size", "no such option"):
            assert stale not in notes, (name, stale)


def test_command_line_overrides_the_recipe_which_overrides_the_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, _recipe(epochs=7, window=24))
    args = train_hacm.parse_args(["--recipe", str(path), "--epochs", "3", "--output-dir", "x"])
    assert args.epochs == 3  # command line
    assert args.window == 24  # recipe
    assert args.lr == train_hacm.parse_args(["--output-dir", "x"]).lr  # default


def test_a_recipe_switch_and_its_conversion_by_the_option_type(tmp_path: Path) -> None:
    path = _write(tmp_path, _recipe(**{"normalize-view": True, "lr": 1, "no-amp": False}))
    args = train_hacm.parse_args(["--recipe", str(path), "--output-dir", "x"])
    assert args.normalize_view is True
    assert args.no_amp is False
    assert isinstance(args.lr, float)
    assert args.lr == 1.0


@pytest.mark.parametrize(
    ("content", "names"),
    [
        ({**_recipe(), "epochs": 3}, ["unknown key", "'epochs'"]),
        ({"source": "s", "notes": "", "examples": []}, ["missing key 'options'"]),
        ({**_recipe(), "options": []}, ["'options' must be a JSON object"]),
        (_recipe(epochs="400"), ["options.epochs", "expected a number"]),
        (_recipe(epochs=1.5), ["options.epochs", "expected an integer"]),
        (_recipe(epochs=0), ["options.epochs", ">= 1"]),
        (_recipe(lr=True), ["options.lr", "expected a number or a string"]),
        (_recipe(**{"no-amp": 1}), ["options.no-amp", "expected true or false"]),
        (_recipe(preset="bert"), ["options.preset", "not one of"]),
        (_recipe(tau=0.8), ["options.tau", "has no option --tau", "train_hacm"]),
        (_recipe(**{"data-root": "/data"}), ["options.data-root", "not part of a recipe"]),
        (_recipe(t_patch=3), ["options.t_patch", "has no option --t_patch"]),
    ],
)
def test_a_bad_recipe_is_a_one_line_error_naming_file_and_key(
    content: dict[str, Any], names: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, content, "bad.json")
    with pytest.raises(SystemExit) as raised:
        train_hacm.parse_args(["--recipe", str(path), "--output-dir", "x"])
    assert raised.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(path) in message
    for name in names:
        assert name in message


def test_invalid_json_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "source": "s",\n  "options": {,}\n}\n')
    with pytest.raises(SystemExit) as raised:
        train_hacm.parse_args(["--recipe", str(path)])
    assert raised.value.code == 2
    assert f"{path}: not valid JSON at line 3" in capsys.readouterr().err


def test_an_unknown_recipe_lists_the_shipped_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        train_hacm.parse_args(["--recipe", "mamp-ntu61"])
    assert raised.value.code == 2
    message = capsys.readouterr().err
    assert "no recipe named 'mamp-ntu61'" in message
    assert "mamp-ntu60-xsub" in message


def test_recipe_list_and_help_show_the_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        train_skelemixclr.parse_args(["--recipe", "list"])
    assert raised.value.code == 0
    assert capsys.readouterr().out.split() == SHIPPED
    with pytest.raises(SystemExit):
        train_skeletonmae.parse_args(["--help"])
    assert "nwucla-views12to3" in " ".join(capsys.readouterr().out.split())


def test_an_abbreviated_recipe_option_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        train_hacm.parse_args(["--recip", "mamp-ntu60-xsub"])
    assert raised.value.code == 2
    assert "write the option in full" in capsys.readouterr().err


def test_the_run_saves_its_resolved_configuration(tmp_path: Path) -> None:
    path = _write(tmp_path, _recipe(**{"probe-epochs": 1, "normalize-view": True}))
    output = tmp_path / "run"
    argv = ["--recipe", str(path), "--stages", "raw", "--train-samples", "40",
            "--test-samples", "10", "--probe-batch-size", "20", "--window", "8",
            "--device", "cpu", "--output-dir", str(output)]  # fmt: skip
    train_hacm.main(argv)
    config = json.loads((output / "config.json").read_text())
    assert config["recipe"] == {"name": "mine", "file": str(path), "source": "a test"}
    options = config["options"]
    assert options["probe_epochs"] == 1
    assert options["normalize_view"] is True
    assert options["window"] == 8
    assert options["stages"] == ["raw"]
    assert options["embed_dim"] == train_hacm.parse_args(["--output-dir", "x"]).embed_dim
    assert options["output_dir"] == str(output)
    # The folder now holds a run: a second run into it needs --overwrite, which replaces it.
    with pytest.raises(SystemExit):
        train_hacm.main(argv)
    train_hacm.main([*argv, "--overwrite", "--window", "12"])
    assert json.loads((output / "config.json").read_text())["options"]["window"] == 12
