"""Downstream classifier on a pretrained ``SkeletonEncoder``.

References:
    - MAMP: Mao et al., "Masked Motion Predictors are Strong 3D Action Representation
      Learners", ICCV 2023 (linear-probe and fine-tune heads).
    - HA-CM: Yin & Cao, "Spatial Hierarchy and Temporal Attention Guided Cross Masking for
      Self-supervised Skeleton-based Action Recognition", arXiv:2409.17951, 2024.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Literal

import torch
from torch import nn

from skelmask._checks import check_positive_int
from skelmask.models.encoder import SkeletonEncoder

__all__ = ["HeadKind", "SkeletonClassifier", "encoder_state_from_mae"]

HeadKind = Literal["linear", "finetune"]
"""Classifier head: the linear probe's or the fine-tuning one."""

_HEADS: tuple[HeadKind, ...] = ("linear", "finetune")

# Wrappers whose state-dict keys carry a prefix: DistributedDataParallel and torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class SkeletonClassifier(nn.Module):
    """Action classifier: clip features of a ``SkeletonEncoder`` and a head.

    Features are ``SkeletonEncoder.forward_features``, the mean of every encoded token over
    time, joints and persons, ``(N, D)``. Heads, all parameters under ``head.*``:

    * ``"linear"`` (MAMP's and HA-CM's linear probe): ``BatchNorm1d(D, affine=False, eps=1e-6)``,
      dropout, ``Linear(D, num_classes)``. Freezing the encoder is the training loop's job.
    * ``"finetune"``: dropout, ``Linear(D, num_classes)``.

    The linear layer starts from a truncated normal with std 0.01 and a zero bias. A
    pretraining checkpoint's encoder loads with ``encoder_state_from_mae``, before or after
    building the classifier: ``drop_path`` adds no parameters or buffers.

    Args:
        encoder: The (pretrained) encoder; the classifier owns it and trains it in place.
        num_classes: Number of classes.
        head: ``"linear"`` or ``"finetune"``.
        dropout: Dropout probability before the linear layer, in ``[0, 1)``.
        drop_path: Stochastic depth of the encoder's blocks while the classifier trains: the
            last block's rate, in ``[0, 1)``, growing linearly from 0 over depth
            (``SkeletonEncoder.set_drop_path``; MAMP fine-tunes with 0.3). Set on ``encoder``
            itself. ``None`` keeps the encoder's rates (0 for the pretraining presets).

    Raises:
        ValueError: On an unknown head, a non-positive ``num_classes``, or ``dropout`` or
            ``drop_path`` outside ``[0, 1)``.
        TypeError: If ``encoder`` is not a ``SkeletonEncoder``.

    Examples:
        >>> from skelmask.models import SkeletonClassifier, SkeletonEncoder
        >>> encoder = SkeletonEncoder(
        ...     num_joints=17, num_frames=8, in_channels=3, embed_dim=16, depth=1
        ... )
        >>> classifier = SkeletonClassifier(encoder, num_classes=5, head="finetune").eval()
        >>> classifier(torch.randn(2, 3, 8, 17, 1)).shape  # (N, C, T, V, M) -> (N, classes)
        torch.Size([2, 5])
        >>> deeper = SkeletonEncoder(num_joints=17, num_frames=8, embed_dim=16, depth=4)
        >>> finetuned = SkeletonClassifier(deeper, 5, head="finetune", drop_path=0.3)
        >>> [round(block.drop_path.p, 2) for block in finetuned.encoder.blocks]
        [0.0, 0.1, 0.2, 0.3]
    """

    def __init__(
        self,
        encoder: SkeletonEncoder,
        num_classes: int,
        *,
        head: HeadKind = "linear",
        dropout: float = 0.0,
        drop_path: float | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, SkeletonEncoder):
            raise TypeError(f"encoder must be a SkeletonEncoder, got {type(encoder).__name__}")
        check_positive_int(num_classes, "num_classes")
        if head not in _HEADS:
            raise ValueError(f"head must be one of {list(_HEADS)}, got {head!r}")
        dropout = float(dropout)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if drop_path is not None:
            encoder.set_drop_path(drop_path)
        self.encoder = encoder
        self.head_kind: HeadKind = head
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if head == "linear":
            layers["norm"] = nn.BatchNorm1d(encoder.embed_dim, affine=False, eps=1e-6)
        layers["dropout"] = nn.Dropout(dropout)
        fc = nn.Linear(encoder.embed_dim, num_classes)
        nn.init.trunc_normal_(fc.weight, std=0.01)
        nn.init.zeros_(fc.bias)
        layers["fc"] = fc
        self.head = nn.Sequential(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classifies a batch.

        Args:
            x: ``(N, C, T, V, M)`` with the encoder's ``C``, ``T`` and ``V``.

        Returns:
            Logits ``(N, num_classes)``.
        """
        logits: torch.Tensor = self.head(self.encoder.forward_features(x))
        return logits

    def no_weight_decay(self) -> set[str]:
        """Names of the parameters exempt from weight decay: the encoder's embeddings."""
        return {f"encoder.{name}" for name in self.encoder.no_weight_decay()}

    def layer_id(self, name: str) -> int:
        """Layer of a parameter for layer-wise learning-rate decay (BEiT numbering).

        Args:
            name: A name from ``named_parameters`` of this classifier.

        Returns:
            ``SkeletonEncoder.layer_id`` for ``encoder.*``; ``depth + 1`` for ``head.*``,
            which therefore trains at the full learning rate like the final norm.

        Raises:
            ValueError: If ``name`` is not a parameter name of this classifier.
        """
        if name.startswith("head."):
            return self.encoder.depth + 1
        if name.startswith("encoder."):
            return self.encoder.layer_id(name.removeprefix("encoder."))
        raise ValueError(f"{name!r} is not a parameter name of SkeletonClassifier")

    def extra_repr(self) -> str:
        """The head kind, shown by ``repr``."""
        return f"head={self.head_kind!r}"


def encoder_state_from_mae(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's weights from a ``TransformerMAE`` state dict.

    Keeps the ``encoder.*`` entries without that prefix and drops the masker's and decoder's.
    Prefixes added by ``DistributedDataParallel`` (``module.``) and ``torch.compile``
    (``_orig_mod.``) are removed first.

    Args:
        state_dict: A pretraining model's ``state_dict()``.

    Returns:
        A state dict for ``SkeletonEncoder``, e.g. for
        ``classifier.encoder.load_state_dict(...)``.

    Raises:
        ValueError: If ``state_dict`` holds no ``encoder.*`` entry.

    Examples:
        >>> from skelmask.models import create_mae, encoder_state_from_mae
        >>> mae = create_mae(
        ...     "mae", layout="coco", num_frames=8, embed_dim=16, depth=1, decoder_dim=8
        ... )
        >>> state = encoder_state_from_mae(mae.state_dict())
        >>> mae.encoder.load_state_dict(state)
        <All keys matched successfully>
    """
    encoder_state: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        name = key
        while name.startswith(_WRAPPER_PREFIXES):
            name = name.split(".", 1)[1]
        if name.startswith("encoder."):
            encoder_state[name.removeprefix("encoder.")] = value
    if not encoder_state:
        examples = ", ".join(repr(key) for key in list(state_dict)[:3])
        raise ValueError(
            f"state_dict holds no 'encoder.*' entry of a SkeletonMAE; its first keys are {examples}"
        )
    return encoder_state
