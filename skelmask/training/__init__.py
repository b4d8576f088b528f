"""Training engine: seeding, DDP setup, checkpoints, schedules, logging and training loops.

``pretrain`` trains any masked autoencoder whose forward returns an object with ``.loss``;
``linear_probe``, ``knn_accuracy`` (on ``extract_features``) and ``finetune`` evaluate encoders
with ``forward_features(x) -> (N, D)``. All three training stages run the same loop
(``skelmask.training.loop``). Everything runs single-process on CPU or under ``torchrun`` with
DDP; checkpoints load with ``torch.load(weights_only=True)``, after their zip CRCs are checked.

The loops work with any module that follows these interfaces, so they import neither
``skelmask.models`` nor ``skelmask.data``: datasets yield ``(x, label)`` with ``x`` of any shape
(``(C, T, V, M)`` for skeletons) and a 0-d int64 label; batch sizes are per rank; data order
depends only on ``(seed, epoch)``; the test split is only ever reported (last epoch first); only
rank 0 logs and writes.
"""

from __future__ import annotations

from skelmask.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_weights,
    model_config_differences,
    save_checkpoint,
)
from skelmask.training.config import FinetuneConfig, PretrainConfig, ProbeConfig
from skelmask.training.dist import DistributedContext, cleanup_distributed, setup_distributed
from skelmask.training.evaluate import (
    EvalResult,
    RawCoordinates,
    extract_features,
    knn_accuracy,
    linear_probe,
)
from skelmask.training.finetune import finetune, labelled_subset
from skelmask.training.logging import MetricLogger, progress
from skelmask.training.pretrain import CHECKPOINT_NAME, pretrain
from skelmask.training.schedule import WarmupCosineScheduler, param_groups, warmup_cosine
from skelmask.training.seed import seed_everything, worker_init_fn

__all__ = [
    "CHECKPOINT_NAME",
    "CheckpointError",
    "DistributedContext",
    "EvalResult",
    "FinetuneConfig",
    "MetricLogger",
    "PretrainConfig",
    "ProbeConfig",
    "RawCoordinates",
    "WarmupCosineScheduler",
    "cleanup_distributed",
    "extract_features",
    "finetune",
    "knn_accuracy",
    "labelled_subset",
    "linear_probe",
    "load_checkpoint",
    "load_weights",
    "model_config_differences",
    "param_groups",
    "pretrain",
    "progress",
    "save_checkpoint",
    "seed_everything",
    "setup_distributed",
    "warmup_cosine",
    "worker_init_fn",
]
