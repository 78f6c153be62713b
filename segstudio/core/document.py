"""A :class:`Document`: one image, its label map, its edit history and where the labels came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segstudio.core.history import History, Patch
from segstudio.core.labels import IGNORE_INDEX, ClassSpec, new_label_map, validate_label_map
from segstudio.core import paint

SOURCE_NONE = "none"
SOURCE_PREDICTED = "predicted"
SOURCE_SAVED = "saved"


@dataclass
class Document:
    """An image being labelled.

    Attributes:
        path: image file.
        image: uint8 (H, W, 3) RGB pixels.
        classes: the project's classes.
        labels: uint8 (H, W) label map (all :data:`IGNORE_INDEX` until predicted or loaded).
        source: where ``labels`` came from: ``"none"``, ``"predicted"`` or ``"saved"``.
        dirty: True when there are edits not yet saved.
        history: undo/redo of edits (patches only).
    """

    path: Path
    image: np.ndarray
    classes: ClassSpec
    labels: np.ndarray = None  # type: ignore[assignment]
    source: str = SOURCE_NONE
    dirty: bool = False
    history: History = field(default_factory=History)

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(f"Document image must be uint8 (H, W, 3), got {self.image.dtype} {self.image.shape}")
        if self.labels is None:
            self.labels = new_label_map(*self.image.shape[:2])
        validate_label_map(self.labels, self.classes.num_classes, self.image.shape[:2])

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        return self.image.shape[:2]

    def set_labels(self, labels: np.ndarray, source: str) -> None:
        """Replace the whole label map (a prediction or a file); clears undo history."""
        validate_label_map(labels, self.classes.num_classes, self.shape)
        self.labels = np.ascontiguousarray(labels)
        self.source = source
        self.dirty = False
        self.history.clear()

    def _edited(self, patch: Patch | None) -> Patch | None:
        if patch is not None:
            self.history.push(patch)
            self.dirty = True
        return patch

    def _check_value(self, value: int) -> None:
        if value != IGNORE_INDEX and not 0 <= value < self.classes.num_classes:
            raise ValueError(f"class id {value} is not one of 0..{self.classes.num_classes - 1}")

    def stroke(self, points, radius: float, value: int) -> Patch | None:
        """Paint a brush stroke (``value = IGNORE_INDEX`` erases); one undo step."""
        self._check_value(value)
        return self._edited(paint.paint_stroke(self.labels, points, radius, value))

    def fill(self, y: int, x: int, value: int) -> Patch | None:
        """Flood-fill the region under ``(y, x)``; one undo step."""
        self._check_value(value)
        return self._edited(paint.flood_fill(self.labels, y, x, value))

    def apply_patch(self, patch: Patch | None) -> Patch | None:
        """Record an edit already written into :attr:`labels` (e.g. a live brush stroke)."""
        return self._edited(patch)

    def undo(self) -> Patch | None:
        patch = self.history.undo(self.labels)
        if patch is not None:
            self.dirty = True
        return patch

    def redo(self) -> Patch | None:
        patch = self.history.redo(self.labels)
        if patch is not None:
            self.dirty = True
        return patch

    def mark_saved(self) -> None:
        self.source = SOURCE_SAVED
        self.dirty = False
