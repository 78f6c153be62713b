"""What a training run folder holds, read in one place (no torch).

``segstudio train -o RUN`` writes ``RUN/history.json`` (one row per epoch: ``epoch``, ``step``, ``train_loss``,
``seconds``, and ``val_miou`` on validated epochs) and ``RUN/model.json`` (the card); ``segstudio evaluate -o
RUN/val_metrics.json`` the val figures; the recipe scripts (``scripts/zoo.py``, ``scripts/camvid_recipe.py``)
``RUN/train_seconds.json`` (``{"seconds": wall seconds, "device": ...}``). Every file is optional: a run still
training has no ``val_metrics.json``, one that never validated no curve.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def read_json(path: str | Path, default: Any = None) -> Any:
    """The parsed JSON at ``path``, or ``default`` when there is no such file.

    Raises:
        json.JSONDecodeError: the file exists but is not JSON (a half-written record is an error, not "absent").
    """
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else default


@dataclass(frozen=True)
class RunRecords:
    """The records of one run folder (see the module docstring); absent files read as empty / ``None``."""

    folder: Path
    history: list[dict]
    card: dict
    val: dict | None
    timing: dict

    @property
    def config(self) -> dict:
        """The training config saved in the card (``TrainConfig`` fields), ``{}`` when unknown."""
        return self.card.get("training", {}).get("config", {})

    @property
    def curve(self) -> list[list]:
        """``[[epoch, val mIoU in 0..1 rounded to 4 places], ...]`` of each validated epoch, in order."""
        return [[h["epoch"], round(h["val_miou"], 4)] for h in self.history if h.get("val_miou") is not None]

    @property
    def train_seconds(self) -> float | None:
        """Wall seconds of training from ``train_seconds.json`` (validation included), or ``None``."""
        return self.timing.get("seconds")

    @property
    def seconds_per_step(self) -> float | None:
        """Training seconds a step (validation excluded: the sum of the epochs' ``seconds`` over the last step)."""
        steps = self.history[-1].get("step") if self.history else None
        return round(sum(h["seconds"] for h in self.history) / steps, 2) if steps else None

    def val_iou(self) -> dict[str, float | None] | None:
        """Per-class val IoU (0..1, 4 places; ``None`` for a class absent from val), or ``None`` before evaluation."""
        if self.val is None:
            return None
        return {k: v if v is None else round(v, 4) for k, v in self.val.get("iou", {}).items()}


def read_run(folder: str | Path) -> RunRecords:
    """Read ``folder``'s ``history.json``, ``model.json``, ``val_metrics.json`` and ``train_seconds.json``.

    Raises:
        json.JSONDecodeError: one of them exists but is not JSON.
    """
    folder = Path(folder)
    return RunRecords(folder=folder, history=read_json(folder / "history.json", []),
                      card=read_json(folder / "model.json", {}), val=read_json(folder / "val_metrics.json"),
                      timing=read_json(folder / "train_seconds.json", {}))
