"""The engine the CLI and the GUI share: checkpoints, Predictor, Trainer, evaluation. No Qt.

The names below are loaded on first use (PEP 562 module ``__getattr__``): ``import segstudio.engine`` and its
torch-free sub-modules (:mod:`~segstudio.engine.options`, :mod:`~segstudio.engine.train_config`, used to build the
command line) do not import torch, so ``segstudio --help`` starts fast. ``from segstudio.engine import Predictor``
works as before (it imports :mod:`segstudio.engine.predictor`, and torch, then).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

_EXPORTS = {
    "DEFAULT_MODEL_DIR": "checkpoint",
    "CheckpointError": "checkpoint",
    "LoadedModel": "checkpoint",
    "build_model": "checkpoint",
    "default_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "available_devices": "devices",
    "resolve_device": "devices",
    "Predictor": "predictor",
    "CancelToken": "cancel",
    "Cancelled": "cancel",
    "TrainConfig": "train_config",
    "Trainer": "trainer",
    "finetune_config": "finetune",
    "train_on_folder": "finetune",
    "evaluate": "evaluate",
    "list_versions": "versions",
    "next_version_dir": "versions",
}
"""Public name -> the sub-module of :mod:`segstudio.engine` that defines it."""

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names come from __getattr__
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
    from segstudio.engine.evaluate import evaluate
    from segstudio.engine.predictor import Predictor
    from segstudio.engine.train_config import TrainConfig
    from segstudio.engine.cancel import CancelToken, Cancelled
    from segstudio.engine.finetune import finetune_config, train_on_folder
    from segstudio.engine.trainer import Trainer
    from segstudio.engine.versions import list_versions, next_version_dir


def __getattr__(name: str):
    """Import the sub-module that defines ``name`` (see :data:`_EXPORTS`) and cache the name here.

    Raises:
        AttributeError: ``name`` is neither a public name of the engine nor a sub-module already imported.
    """
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


class _EngineModule(types.ModuleType):
    """``segstudio.engine.evaluate`` is the function, as it always was, although a sub-module has that name too:
    importing the sub-module (``from segstudio.engine.evaluate import ...``) makes Python set the package
    attribute to the module, which this turns into the module's ``evaluate`` function."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name and value.__name__ == f"{__name__}.{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _EngineModule
