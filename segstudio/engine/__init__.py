"""The engine the CLI and the GUI share: checkpoints, Predictor, Trainer, evaluation. No Qt."""

from segstudio.engine.checkpoint import (
    DEFAULT_MODEL_DIR,
    CheckpointError,
    LoadedModel,
    build_model,
    default_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from segstudio.engine.devices import available_devices, resolve_device
from segstudio.engine.predictor import Predictor
from segstudio.engine.trainer import CancelToken, Cancelled, TrainConfig, Trainer, finetune_config, train_on_folder
from segstudio.engine.evaluate import evaluate
from segstudio.engine.versions import list_versions, next_version_dir

__all__ = [
    "DEFAULT_MODEL_DIR",
    "CancelToken",
    "Cancelled",
    "CheckpointError",
    "LoadedModel",
    "Predictor",
    "TrainConfig",
    "Trainer",
    "available_devices",
    "build_model",
    "default_checkpoint",
    "evaluate",
    "finetune_config",
    "list_versions",
    "load_checkpoint",
    "next_version_dir",
    "resolve_device",
    "save_checkpoint",
    "train_on_folder",
]
