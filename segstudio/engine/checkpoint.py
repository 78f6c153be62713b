"""Checkpoint format: ``model.safetensors`` (weights) + ``model.json`` (the model card).

The card holds everything needed to rebuild and use the model: architecture and builder
arguments, classes and palette, input normalisation, training data and metrics, lineage.
Weights are never unpickled: safetensors only.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from segstudio.core.labels import ClassSpec
from segstudio.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from segstudio.io.atomic import atomic_write_bytes
from segstudio.models import get_model

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "resources" / "models"
DEFAULT_MODEL_NAME = "camvid_deeplabv3plus_mobilenetv2"


class CheckpointError(ValueError):
    """A checkpoint is missing, malformed, or does not fit the model it is loaded into."""


@dataclass
class LoadedModel:
    """A model ready for inference or fine-tuning, with its card (the parsed ``model.json``)."""

    model: torch.nn.Module
    card: dict
    path: Path | None = None

    @property
    def classes(self) -> ClassSpec:
        return ClassSpec.from_json(self.card["classes"])

    @property
    def mean(self) -> tuple[float, float, float]:
        return tuple(self.card.get("normalization", {}).get("mean", IMAGENET_MEAN))

    @property
    def std(self) -> tuple[float, float, float]:
        return tuple(self.card.get("normalization", {}).get("std", IMAGENET_STD))

    @property
    def display_name(self) -> str:
        return self.card.get("name") or (self.path.parent.name if self.path else self.card["architecture"])


def default_checkpoint() -> Path:
    """Path of the embedded default model's weights."""
    return DEFAULT_MODEL_DIR / f"{DEFAULT_MODEL_NAME}.safetensors"


def _card_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a ``.safetensors`` file or a run folder holding ``model.safetensors``.

    Raises:
        CheckpointError: when nothing loadable is there.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    if path.suffix in (".pt", ".pth"):
        raise CheckpointError(f"{path}: pickled checkpoints are not loaded; convert to safetensors (weights_only)")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint (expected a .safetensors file or a run folder with model.safetensors)")
    if not _card_path(path).is_file():
        raise CheckpointError(f"{path}: the model card {_card_path(path).name} is missing beside the weights")
    return path


def build_model(card: dict, pretrained: bool = False) -> torch.nn.Module:
    """Instantiate the architecture described by a card (random or ImageNet-initialised weights)."""
    kwargs = dict(card.get("model_kwargs", {}))
    kwargs["pretrained"] = pretrained
    return get_model(card["architecture"], num_classes=len(card["classes"]), **kwargs)


def load_state_into(model: torch.nn.Module, state: dict[str, torch.Tensor], allow_new_head: bool = False) -> list[str]:
    """Copy ``state`` into ``model``; returns the keys left at their fresh initialisation.

    With ``allow_new_head`` the classifier weights may differ in shape (a new class set): those keys
    are skipped and returned. Any other missing, unexpected or mis-shaped key is an error.

    Raises:
        CheckpointError: naming each key that does not fit and both shapes.
    """
    own = model.state_dict()
    fresh, problems, load = [], [], {}
    for k, v in own.items():
        if k not in state:
            problems.append(f"missing {k}")
        elif state[k].shape != v.shape:
            if allow_new_head and "classifier" in k.split("."):
                fresh.append(k)
            else:
                problems.append(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}")
        else:
            load[k] = state[k].to(v.dtype)
    problems += [f"unexpected {k}" for k in state if k not in own]
    if problems:
        raise CheckpointError("checkpoint does not fit the model: " + "; ".join(problems[:10]))
    model.load_state_dict(load, strict=False)
    return fresh


def load_checkpoint(path: str | Path | None = None, map_location: str = "cpu") -> LoadedModel:
    """Load weights + card; ``None`` loads the embedded default model.

    Raises:
        CheckpointError: missing files, malformed card, unknown architecture, or weights that do not
            fit the architecture (message names the mismatch).
    """
    weights = resolve_checkpoint(path if path is not None else default_checkpoint())
    try:
        card = json.loads(_card_path(weights).read_text(encoding="utf-8"))
        for key in ("architecture", "classes"):
            if key not in card:
                raise CheckpointError(f"{_card_path(weights)}: card lacks {key!r}")
        ClassSpec.from_json(card["classes"])
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{_card_path(weights)}: invalid model card ({exc})") from exc
    try:
        model = build_model(card)
    except KeyError as exc:
        raise CheckpointError(f"{weights}: {exc.args[0]}") from exc
    try:
        state = load_file(str(weights), device=map_location)
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"{weights}: cannot read safetensors ({exc})") from exc
    load_state_into(model, state)
    model.eval()
    return LoadedModel(model, card, weights)


def save_checkpoint(
    out_dir: str | Path, model: torch.nn.Module, card: dict, half: bool = False, stem: str = "model"
) -> Path:
    """Write ``<out_dir>/<stem>.safetensors`` and ``<stem>.json`` atomically; returns the weights path.

    Args:
        half: store floating-point tensors as float16 (halves the file; loading casts back to float32).
    """
    out_dir = Path(out_dir)
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        if half and v.is_floating_point():
            v = v.half()
        state[k] = v
    card = dict(card)
    card.setdefault("format_version", FORMAT_VERSION)
    card.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    card["num_parameters"] = int(sum(p.numel() for p in model.parameters()))
    card["weights_dtype"] = "float16" if half else "float32"
    weights = out_dir / f"{stem}.safetensors"
    atomic_write_bytes(weights, save(state, metadata={"format": "pt"}))
    atomic_write_bytes(_card_path(weights), (json.dumps(card, indent=1) + "\n").encode("utf-8"))
    return weights


def new_card(architecture: str, classes: ClassSpec, model_kwargs: dict, **extra) -> dict:
    """A fresh model card for ``architecture`` trained on ``classes``."""
    card = {
        "architecture": architecture,
        "model_kwargs": model_kwargs,
        "classes": classes.to_json(),
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "input": "RGB uint8 / 255"},
    }
    card.update(extra)
    return card
