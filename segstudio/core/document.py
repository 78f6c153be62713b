"""A :class:`Document`: one image, its label map, its edit history and where the labels came from.

A document announces its own changes: every write of its label map goes through one of its methods
(:meth:`Document.apply_patch` and the paint methods built on it, :meth:`~Document.undo`, :meth:`~Document.redo`,
:meth:`~Document.set_labels`, :meth:`~Document.relabel`), and each such call that changed something calls the
document's observers once with a :class:`DocumentEvent` (a plain callback list, no Qt: napari's Labels layer
``data_setitem`` → ``events.labels_update``). Views, the crash journal and the title listen; nobody announces an
edit on a document's behalf.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segstudio.core.history import History, Patch, mask_bbox
from segstudio.core.labels import IGNORE_INDEX, ClassSpec, new_label_map, validate_label_map
from segstudio.core import paint
from segstudio.core.provenance import PROV_HUMAN, PROV_MODEL, PROV_NONE, ProvenanceMap

SOURCE_NONE = "none"
SOURCE_PREDICTED = "predicted"
SOURCE_SAVED = "saved"

EDIT_PATCH = "patch"
"""Event kind: one edit recorded as an undo step (:meth:`Document.apply_patch` and the paint methods)."""
EDIT_UNDO = "undo"
"""Event kind: an undo step was undone."""
EDIT_REDO = "redo"
"""Event kind: an undo step was redone."""
EDIT_LABELS = "labels"
"""Event kind: the whole label map was replaced (:meth:`Document.set_labels`)."""
EDIT_RELABEL = "relabel"
"""Event kind: the classes changed and every label was mapped to the new ids (:meth:`Document.relabel`)."""


@dataclass(frozen=True)
class DocumentEvent:
    """What one write of a :class:`Document` changed.

    Attributes:
        doc: the document.
        kind: :data:`EDIT_PATCH`, :data:`EDIT_UNDO`, :data:`EDIT_REDO`, :data:`EDIT_LABELS` or :data:`EDIT_RELABEL`.
        patch: the undo step written, undone or redone (``None`` for a whole-map change).
        origin: provenance of an :data:`EDIT_PATCH` (``PROV_HUMAN``, ``PROV_MODEL``, ``PROV_CRF``), else ``None``.
    """

    doc: "Document"
    kind: str
    patch: Patch | None = None
    origin: int | None = None

    @property
    def rect(self) -> tuple[int, int, int, int] | None:
        """``(x, y, w, h)`` of the changed box, or ``None`` when the whole map changed."""
        return self.patch.rect if self.patch is not None else None

    @property
    def by_person(self) -> bool:
        """True for a person's edit (or one done at their request, e.g. CRF) and for undo / redo; False for a
        model's prediction filling pixels and for whole-map replacements."""
        if self.kind in (EDIT_UNDO, EDIT_REDO):
            return True
        return self.kind == EDIT_PATCH and self.origin != PROV_MODEL


DocumentObserver = Callable[[DocumentEvent], None]
"""An observer of a document: called with each :class:`DocumentEvent`, after the write."""


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
        provenance: per-pixel origin of the labels (:class:`~segstudio.core.provenance.ProvenanceMap`:
            uint8 (H, W), 0 none / 1 model / 2 human / 3 CRF), kept in step with every edit, undo and redo.
        edits: number of human edit operations (strokes, fills...) since the document was created.

    Observers (:meth:`subscribe`) are called once per write-path call that changed something, after it.
    """

    path: Path
    image: np.ndarray
    classes: ClassSpec
    labels: np.ndarray = None  # type: ignore[assignment]
    source: str = SOURCE_NONE
    dirty: bool = False
    history: History = field(default_factory=History)
    provenance: ProvenanceMap = None  # type: ignore[assignment]
    edits: int = 0
    _observers: list = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(f"Document image must be uint8 (H, W, 3), got {self.image.dtype} {self.image.shape}")
        if self.labels is None:
            self.labels = new_label_map(*self.image.shape[:2])
        validate_label_map(self.labels, self.classes.num_classes, self.image.shape[:2])
        if self.provenance is None:
            self.provenance = ProvenanceMap(self.image.shape[:2])
            self.provenance.reset(self.labels, PROV_HUMAN)

    # -- change events -------------------------------------------------------------------------
    def subscribe(self, observer: DocumentObserver) -> None:
        """Call ``observer(event)`` after every change of this document's labels (once per write; no duplicates)."""
        if observer not in self._observers:
            self._observers.append(observer)

    def unsubscribe(self, observer: DocumentObserver) -> None:
        """Stop calling ``observer`` (nothing when it was not subscribed)."""
        if observer in self._observers:
            self._observers.remove(observer)

    def _announce(self, kind: str, patch: Patch | None = None, origin: int | None = None) -> None:
        event = DocumentEvent(self, kind, patch, origin)
        for observer in list(self._observers):
            observer(event)

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        return self.image.shape[:2]

    def set_labels(self, labels: np.ndarray, source: str) -> None:
        """Replace the whole label map (a prediction or a file); clears undo history.

        Provenance becomes *model* on labelled pixels of a prediction, *human* on those of a file (labels
        saved without a provenance file were made by a person); load a stored map with ``provenance.load``.
        """
        validate_label_map(labels, self.classes.num_classes, self.shape)
        self.labels = np.ascontiguousarray(labels)
        self.source = source
        self.dirty = False
        self.history.clear()
        self.provenance.reset(self.labels, {SOURCE_PREDICTED: PROV_MODEL, SOURCE_NONE: PROV_NONE}.get(source, PROV_HUMAN))
        self._announce(EDIT_LABELS)

    def _edited(self, patch: Patch | None, origin: int = PROV_HUMAN, touched=None) -> Patch | None:
        """Record an edit already written into :attr:`labels` as one undo step.

        ``touched`` (``(y0, x0, bool mask)``, the gesture's footprint) gets provenance ``origin`` whether or not
        its values changed: painting a region of a predicted class confirms it (brush-to-confirm). A gesture
        that changed no value still makes an undo step (its label patch changes nothing) when it confirmed a
        pixel whose provenance was not ``origin`` yet; one that changed and confirmed nothing returns ``None``.
        """
        if touched is not None:
            ty0, tx0, tmask = touched
            tmask = np.asarray(tmask, dtype=bool)
            if not tmask.any():
                touched = None
            else:
                touched = (int(ty0), int(tx0), tmask)
        if patch is None and touched is not None:
            ty0, tx0, tmask = touched
            th, tw = tmask.shape
            if (self.provenance.map[ty0 : ty0 + th, tx0 : tx0 + tw][tmask] != origin).any():
                r0, r1, c0, c1 = mask_bbox(tmask)
                box = self.labels[ty0 + r0 : ty0 + r1, tx0 + c0 : tx0 + c1].copy()
                patch = Patch(ty0 + r0, tx0 + c0, box, box.copy())  # confirms, changes no value
        if patch is not None:
            self.history.push(patch)
            self.dirty = True
            self.provenance.record(patch, origin, touched)
            self.provenance.trim(len(self.history))
            self.edits += int(origin == PROV_HUMAN)
            self._announce(EDIT_PATCH, patch, origin)
        return patch

    @staticmethod
    def _confirm(value: int, footprint):
        """The footprint a gesture painting ``value`` confirms: all of it for a class, nothing for the eraser
        (erasing confirms only the pixels it changed)."""
        return None if value == IGNORE_INDEX else footprint

    def _check_value(self, value: int) -> None:
        if value != IGNORE_INDEX and not 0 <= value < self.classes.num_classes:
            raise ValueError(f"class id {value} is not one of 0..{self.classes.num_classes - 1}")

    def stroke(self, points, radius: float, value: int) -> Patch | None:
        """Paint a brush stroke (``value = IGNORE_INDEX`` erases); one undo step."""
        self._check_value(value)
        res = paint.stroke_mask(self.shape, points, radius)
        if res is None:
            return None
        y0, x0, mask = res
        return self._edited(paint.paint_mask(self.labels, y0, x0, mask, value), touched=self._confirm(value, res))

    def fill(self, y: int, x: int, value: int) -> Patch | None:
        """Flood-fill the region under ``(y, x)``; one undo step. The whole region becomes the person's (filling
        a predicted region with its own class confirms it)."""
        self._check_value(value)
        y0, x0, mask = paint.flood_mask(self.labels, y, x)
        return self._edited(paint.paint_mask(self.labels, y0, x0, mask, value), touched=self._confirm(value, (y0, x0, mask)))

    def polygon(self, points, value: int, rule: str = "nonzero") -> Patch | None:
        """Fill a closed polygon (polygon and lasso tools); one undo step.

        Args:
            points: (N, 2) float ``(x, y)`` vertices in pixels, N >= 3.
            value: class id (or ``IGNORE_INDEX`` to erase).
            rule: ``"nonzero"`` or ``"evenodd"``; see :func:`segstudio.core.paint.polygon_mask`.
        """
        self._check_value(value)
        res = paint.polygon_mask(self.shape, points, rule)
        if res is None:
            return None
        y0, x0, mask = res
        return self._edited(paint.paint_mask(self.labels, y0, x0, mask, value), touched=self._confirm(value, res))

    def apply_region(self, mask: np.ndarray, value: int, origin: tuple[int, int] = (0, 0)) -> Patch | None:
        """Set every pixel of a bool region to ``value`` (superpixel brush, GrabCut); one undo step.

        Args:
            mask: bool (h, w) region; with the default ``origin`` it is the full (H, W) image.
            value: class id (or ``IGNORE_INDEX`` to erase).
            origin: ``(y0, x0)`` of the mask's top-left pixel in the label map.

        Raises:
            ValueError: bad class id, or a mask reaching outside the label map.
        """
        self._check_value(value)
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2:
            raise ValueError(f"region mask must be 2-D (h, w), got shape {mask.shape}")
        if not mask.any():
            return None
        r0, r1, c0, c1 = paint.mask_bbox(mask)
        y0, x0 = origin
        sub = mask[r0:r1, c0:c1]
        return self._edited(paint.paint_mask(self.labels, y0 + r0, x0 + c0, sub, value), touched=self._confirm(value, (y0 + r0, x0 + c0, sub)))

    def apply_patch(self, patch: Patch | None, origin: int = PROV_HUMAN, touched=None) -> Patch | None:
        """Record an edit already written into :attr:`labels` (e.g. a live brush stroke, or a CRF result
        with ``origin=PROV_CRF``); the changed pixels, and every pixel of ``touched`` (``(y0, x0, bool mask)``:
        the gesture's footprint, changed or not), get provenance ``origin``. Returns the undo step's patch
        (one that changes no value when the gesture only confirmed pixels), or ``None``."""
        return self._edited(patch, origin, touched)

    def undo(self) -> Patch | None:
        """Undo the last edit; returns its patch (``None``: nothing to undo)."""
        patch = self.history.undo(self.labels)
        if patch is not None:
            self.dirty = True
            self.provenance.undo()
            self._announce(EDIT_UNDO, patch)
        return patch

    def redo(self) -> Patch | None:
        """Redo the last undone edit; returns its patch (``None``: nothing to redo)."""
        patch = self.history.redo(self.labels)
        if patch is not None:
            self.dirty = True
            self.provenance.redo()
            self._announce(EDIT_REDO, patch)
        return patch

    def mark_saved(self) -> None:
        self.source = SOURCE_SAVED
        self.dirty = False

    def relabel(self, classes: ClassSpec, lut: np.ndarray) -> None:
        """Switch to a new class list, mapping every label through ``lut`` (uint8 (256,): old id → new id,
        :data:`IGNORE_INDEX` for a deleted class). Provenance is kept; undo history is cleared (its patches
        hold old ids).

        Raises:
            ValueError: ``lut`` is not uint8 (256,) or maps a label outside the new classes (nothing changes).
        """
        if lut.shape != (256,) or lut.dtype != np.uint8:
            raise ValueError(f"relabel needs a uint8 (256,) look-up table, got {lut.dtype} {lut.shape}")
        labels = lut[self.labels]
        validate_label_map(labels, classes.num_classes, self.shape)
        self.labels, self.classes = labels, classes
        self.history.clear()
        self.provenance.clear_history()
        self._announce(EDIT_RELABEL)
