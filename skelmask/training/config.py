"""Typed run configurations that round-trip through plain dicts (checkpoints, JSON, YAML)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from skelmask._checks import as_integer, as_real, as_real_pair

__all__ = ["FinetuneConfig", "PretrainConfig", "ProbeConfig"]

_C = TypeVar("_C", bound="_Config")


class _Config:
    """``to_dict``/``from_dict`` shared by the configuration dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        """Returns the fields as a plain dict of numbers, strings, ``None`` and lists.

        Tuples become lists so the dict is JSON-ready; ``from_dict`` turns them back.
        """
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()  # type: ignore[call-overload]
        }

    @classmethod
    # typing.Self needs Python 3.11 and typing_extensions is no declared dependency.
    def from_dict(cls: type[_C], data: dict[str, Any]) -> _C:  # noqa: PYI019
        """Builds a configuration from ``to_dict`` output; missing keys take defaults.

        Raises:
            ValueError: If ``data`` holds keys that are not fields (a typo would otherwise be
                silently ignored).
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {unknown}")
        values = {
            key: tuple(value) if isinstance(fields[key].default, tuple) else value
            for key, value in data.items()
        }
        return cls(**values)


def check_config(config: object, expected: type[_C], name: str = "config") -> _C:
    """Returns ``config`` after checking that it is an ``expected`` instance.

    A plain dict (read from JSON or YAML) is the usual mistake; the error says how to build one.
    """
    if not isinstance(config, expected):
        kind = expected.__name__
        hint = f"; build one with {kind}.from_dict({name})" if isinstance(config, dict) else ""
        raise TypeError(f"{name} must be a {kind}, got {type(config).__name__}{hint}")
    return config


class _Fields:
    """Checks a configuration's fields and stores them as plain Python values.

    Configurations are often read from hand-edited JSON or YAML, where a string ``"false"`` is
    truthy and ``1e-3`` can arrive as a string; every field is checked for its type and range,
    and NumPy scalars are stored as the Python numbers they are.
    """

    def __init__(self, config: _Config) -> None:
        self.config = config
        self.owner = type(config).__name__

    def _fail(self, name: str, expected: str) -> ValueError:
        value = getattr(self.config, name)
        return ValueError(f"{self.owner}.{name} must be {expected}, got {value!r}")

    def integer(self, name: str, minimum: int) -> None:
        """An int ``>= minimum`` (bools are not ints here)."""
        number = as_integer(getattr(self.config, name))
        if number is None or number < minimum:
            raise self._fail(name, f"an integer >= {minimum}")
        setattr(self.config, name, number)

    def real(
        self,
        name: str,
        low: float,
        high: float = math.inf,
        *,
        open_low: bool = False,
        open_high: bool = False,
        optional: bool = False,
    ) -> None:
        """A finite float in the interval from ``low`` to ``high``; None if ``optional``."""
        value = getattr(self.config, name)
        if optional and value is None:
            return
        number = as_real(value)
        above = number is not None and (number > low if open_low else number >= low)
        below = number is not None and (number < high if open_high else number <= high)
        if number is None or not math.isfinite(number) or not (above and below):
            if math.isinf(high):
                bound = f"{'>' if open_low else '>='} {low:g}"
            else:
                bound = f"in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
            kind = "None or a finite number" if optional else "a finite number"
            raise self._fail(name, f"{kind} {bound}")
        setattr(self.config, name, number)

    def flag(self, name: str) -> None:
        """A bool (not a string: ``"false"`` would be truthy)."""
        value = getattr(self.config, name)
        if not isinstance(value, (bool, np.bool_)):
            raise self._fail(name, "True or False")
        setattr(self.config, name, bool(value))

    def common(self) -> None:
        """The fields every configuration has."""
        self.integer("epochs", 1)
        self.integer("batch_size", 1)
        self.real("lr", 0.0, open_low=True)
        self.integer("seed", 0)
        self.integer("num_workers", 0)


@dataclass
class PretrainConfig(_Config):
    """Masked-autoencoder pre-training (MAMP/HA-CM defaults; see ``docs/training.md``).

    Attributes:
        epochs: Number of epochs.
        batch_size: Samples per step **per rank**.
        lr: Peak learning rate, used as is (no batch-size scaling).
        min_lr: Learning rate at the end of the cosine decay.
        warmup_epochs: Epochs of linear warm-up from 0 (applied per iteration).
        weight_decay: AdamW weight decay; biases, 1-D parameters and ``no_weight_decay()`` names
            are exempt.
        betas: AdamW betas.
        grad_clip: Max global gradient norm; ``None`` disables clipping.
        amp: bf16 autocast on CUDA; ignored on CPU, which runs float32.
        compile: Wrap the model in ``torch.compile``.
        seed: Base seed; data order depends only on ``(seed, epoch)``.
        num_workers: DataLoader worker processes.

    Examples:
        >>> from skelmask.training import PretrainConfig
        >>> config = PretrainConfig(epochs=2)
        >>> PretrainConfig.from_dict(config.to_dict()) == config
        True
    """

    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    min_lr: float = 5e-4
    warmup_epochs: int = 5
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = None
    amp: bool = True
    compile: bool = False
    seed: int = 0
    num_workers: int = 0

    def __post_init__(self) -> None:
        fields = _Fields(self)
        fields.common()
        fields.real("min_lr", 0.0)
        fields.integer("warmup_epochs", 0)
        fields.real("weight_decay", 0.0)
        _check_betas(self)
        fields.real("grad_clip", 0.0, open_low=True, optional=True)
        fields.flag("amp")
        fields.flag("compile")


@dataclass
class ProbeConfig(_Config):
    """Linear probe on a frozen encoder (MAMP/HA-CM protocol): SGD, cosine schedule to 0.

    Attributes:
        epochs: Number of epochs.
        batch_size: Samples per step per rank, at least 2 (the head's BatchNorm needs two).
        lr: Peak learning rate.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        seed: Base seed.
        num_workers: DataLoader worker processes.

    Examples:
        >>> from skelmask.training import ProbeConfig
        >>> ProbeConfig.from_dict({"epochs": 3}).lr
        0.1
    """

    epochs: int = 100
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    num_workers: int = 0

    def __post_init__(self) -> None:
        fields = _Fields(self)
        fields.common()
        fields.real("momentum", 0.0, 1.0, open_high=True)
        fields.real("weight_decay", 0.0)
        if self.batch_size < 2:
            raise ValueError(
                f"batch_size must be >= 2 for the linear probe (its BatchNorm head needs two "
                f"samples per step), got {self.batch_size}"
            )


@dataclass
class FinetuneConfig(_Config):
    """End-to-end fine-tuning and semi-supervised training (MAMP/HA-CM protocol).

    Attributes:
        epochs: Number of epochs.
        batch_size: Samples per step per rank.
        lr: Peak learning rate of the last layer (the head).
        min_lr: Learning rate at the end of the cosine decay.
        warmup_epochs: Epochs of linear warm-up from 0.
        weight_decay: AdamW weight decay (same exemptions as pre-training).
        layer_decay: BEiT layer-wise lr decay: layer ``i`` of ``n`` gets
            ``lr · layer_decay ** (n - i)``; ``None`` trains every layer at ``lr``.
        label_smoothing: Cross-entropy label smoothing.
        grad_clip: Max global gradient norm; ``None`` disables clipping.
        amp: bf16 autocast on CUDA; ignored on CPU.
        seed: Base seed (also the seed of the labelled subset).
        num_workers: DataLoader worker processes.
        labelled_ratio: Fraction of the training set that keeps its labels (semi-supervised
            protocol, drawn by ``labelled_subset``); ``None`` uses all.

    Examples:
        >>> from skelmask.training import FinetuneConfig
        >>> FinetuneConfig(labelled_ratio=0.1).to_dict()["labelled_ratio"]
        0.1
    """

    epochs: int = 100
    batch_size: int = 32
    lr: float = 3e-4
    min_lr: float = 1e-5
    warmup_epochs: int = 5
    weight_decay: float = 0.05
    layer_decay: float | None = 0.8
    label_smoothing: float = 0.1
    grad_clip: float | None = None
    amp: bool = True
    seed: int = 0
    num_workers: int = 0
    labelled_ratio: float | None = None

    def __post_init__(self) -> None:
        fields = _Fields(self)
        fields.common()
        fields.real("min_lr", 0.0)
        fields.integer("warmup_epochs", 0)
        fields.real("weight_decay", 0.0)
        fields.real("layer_decay", 0.0, 1.0, open_low=True, optional=True)
        fields.real("label_smoothing", 0.0, 1.0, open_high=True)
        fields.real("grad_clip", 0.0, open_low=True, optional=True)
        fields.flag("amp")
        fields.real("labelled_ratio", 0.0, 1.0, open_low=True, optional=True)


def _check_betas(config: PretrainConfig) -> None:
    """AdamW's betas: two numbers in [0, 1), stored as a tuple of floats."""
    betas = as_real_pair(config.betas)
    if betas is None or not all(0.0 <= beta < 1.0 for beta in betas):
        raise ValueError(
            f"PretrainConfig.betas must be two numbers in [0, 1), got {config.betas!r}"
        )
    config.betas = betas
