"""Small vocabulary of the project state: the model picker's rows (:class:`ModelEntry`), a model card's classes
(:func:`card_classes`) and a new class's colour (:func:`contrasting_color`). A leaf: no other gui module."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segstudio.core import IGNORE_INDEX, ClassSpec
from segstudio.engine import LoadedModel
from segstudio.io.layout import CARD_FILENAME


@dataclass
class ModelEntry:
    """One row of the model picker.

    Attributes:
        label: text shown in the picker (``"bundled: ISBI-2012 U-Net"``, ``"<folder>/v002"``...).
        entry: the loaded model, or its weights path (loaded when picked).
        classes: the model's classes from its card (``None`` when unreadable).
        tooltip: picker tooltip.
        folder: the image folder whose version this is (``None`` for bundled / start models); such entries
            go when another folder is opened.
    """

    label: str
    entry: LoadedModel | Path
    classes: ClassSpec | None = None
    tooltip: str = ""
    folder: Path | None = None


def card_classes(weights: Path) -> ClassSpec | None:
    """The classes of the model card beside ``weights`` (``<weights>.json`` or the folder's card), or ``None``."""
    for card_path in (weights.with_suffix(".json"), weights.parent / CARD_FILENAME):
        try:
            return ClassSpec.from_json(json.loads(card_path.read_text(encoding="utf-8"))["classes"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


_CONTRAST_CANDIDATES = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
    (0, 0, 128), (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 0, 255), (0, 255, 255),
]  # Sasha Trubetskoy's "20 distinct colours" + primaries


def contrasting_color(others: list[tuple[int, int, int]]) -> tuple[int, int, int]:
    """A saturated colour far (RGB distance) from every colour in ``others`` and from grey, black and white.

    Args:
        others: ``(r, g, b)`` colours (0..255) already in use.

    Returns:
        The candidate of a fixed 24-colour list whose smallest distance to ``others`` + the greys is largest.
    """
    avoid = np.asarray(list(others) + [(128, 128, 128), (0, 0, 0), (255, 255, 255)], dtype=np.float64)
    cand = np.asarray(_CONTRAST_CANDIDATES, dtype=np.float64)
    d = np.sqrt(((cand[:, None, :] - avoid[None, :, :]) ** 2).sum(-1)).min(1)
    return tuple(int(v) for v in _CONTRAST_CANDIDATES[int(np.argmax(d))])


def recolour_renamed(old: ClassSpec, new: ClassSpec, lut: np.ndarray) -> ClassSpec:
    """A class renamed but left in its old colour gets a new colour that contrasts with the others."""
    colors = list(new.colors)
    origin = {int(lut[i]): i for i in range(old.num_classes) if lut[i] != IGNORE_INDEX}
    if np.array_equal(lut[: old.num_classes], np.arange(old.num_classes)) and new.num_classes >= old.num_classes:
        origin = {i: i for i in range(old.num_classes)}
    changed = False
    for j, name in enumerate(new.names):
        i = origin.get(j)
        if i is not None and old.names[i] != name and tuple(colors[j]) == tuple(old.colors[i]):
            colors[j] = contrasting_color([c for k, c in enumerate(colors) if k != j])
            changed = True
    return ClassSpec(new.names, tuple(colors)) if changed else new


def class_notice_text(model_classes: ClassSpec, lut: np.ndarray, model_name: str) -> str:
    """The notice for a model whose classes ``lut`` (model id → project id) maps partly to nothing: which of its
    classes the project lacks (deleted) and that those pixels show unlabelled; '' when all map (or none does)."""
    lost = [n for i, n in enumerate(model_classes.names) if lut[i] == IGNORE_INDEX]
    if not lost or len(lost) >= model_classes.num_classes:
        return ""
    return (
        f"{model_name} predicts {', '.join(lost)}, "
        f"which {'is' if len(lost) == 1 else 'are'} not a class of this project (deleted): "
        "those pixels are shown unlabelled"
    )


__all__ = ["class_notice_text", "ModelEntry", "card_classes", "contrasting_color", "recolour_renamed"]
