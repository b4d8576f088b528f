"""Typed run configurations that round-trip through plain dicts (checkpoints, JSON, YAML)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

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


def _check_common(epochs: int, batch_size: int, lr: float, num_workers: int) -> None:
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")


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
        _check_common(self.epochs, self.batch_size, self.lr, self.num_workers)


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
        _check_common(self.epochs, self.batch_size, self.lr, self.num_workers)
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
        _check_common(self.epochs, self.batch_size, self.lr, self.num_workers)
        if self.labelled_ratio is not None and not 0 < self.labelled_ratio <= 1:
            raise ValueError(f"labelled_ratio must be in (0, 1], got {self.labelled_ratio}")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ValueError(f"layer_decay must be in (0, 1], got {self.layer_decay}")
