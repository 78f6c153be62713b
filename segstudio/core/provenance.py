"""Per-pixel provenance of a label map: which pixels came from the model, a human, or CRF.

A *provenance map* is a ``numpy.uint8`` array (H, W) beside the label map, holding one of
:data:`PROV_NONE` (0, no label), :data:`PROV_MODEL` (1), :data:`PROV_HUMAN` (2) or :data:`PROV_CRF` (3).
:class:`ProvenanceMap` keeps it in step with a :class:`~segstudio.core.document.Document`: a whole new
label map (prediction, file) resets it, and each undoable edit (a :class:`~segstudio.core.history.Patch`)
stamps its origin on the pixels it changed and on every pixel under the gesture (brush-to-confirm), with its own undo/redo stack that mirrors the document's
history (patches only, like :mod:`segstudio.core.history`).
"""

from __future__ import annotations

import numpy as np

from segstudio.core.history import Patch
from segstudio.core.labels import IGNORE_INDEX

PROV_NONE: int = 0
"""No label (the pixel is :data:`~segstudio.core.labels.IGNORE_INDEX` and nobody decided otherwise)."""
PROV_MODEL: int = 1
"""The label came from a model prediction."""
PROV_HUMAN: int = 2
"""A person set or changed the label (brush, fill, polygon, eraser, or labels imported from a file)."""
PROV_CRF: int = 3
"""The label came from DenseCRF post-processing."""
PROVENANCE_NAMES: tuple[str, ...] = ("none", "model", "human", "crf")
"""Name of each provenance value, indexed by value."""


def provenance_from_labels(labels: np.ndarray, origin: int) -> np.ndarray:
    """A provenance map (uint8, labels' (H, W)) with ``origin`` on labelled pixels and :data:`PROV_NONE` on ignore ones.

    Args:
        labels: uint8 (H, W) label map.
        origin: one of ``PROV_*`` (0..3).

    Raises:
        ValueError: ``origin`` outside 0..3 or ``labels`` not 2-D.
    """
    _check_origin(origin)
    if labels.ndim != 2:
        raise ValueError(f"label map must be 2-D (H, W), got shape {labels.shape}")
    return np.where(labels != IGNORE_INDEX, np.uint8(origin), np.uint8(PROV_NONE)).astype(np.uint8)


def validate_provenance(prov: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Check that ``prov`` is a uint8 (H, W) provenance map with values 0..3 (and the given shape).

    Returns:
        ``prov`` unchanged.

    Raises:
        ValueError: naming the wrong dtype, shape or values.
    """
    if prov.ndim != 2 or prov.dtype != np.uint8:
        raise ValueError(f"provenance map must be uint8 (H, W), got {prov.dtype} {prov.shape}")
    if shape is not None and tuple(prov.shape) != tuple(shape):
        raise ValueError(f"provenance map is {prov.shape[1]}x{prov.shape[0]} (WxH) but the labels are {shape[1]}x{shape[0]}")
    if prov.size and int(prov.max()) >= len(PROVENANCE_NAMES):
        bad = np.unique(prov[prov >= len(PROVENANCE_NAMES)]).tolist()
        raise ValueError(f"provenance map holds values {bad}; valid are 0..{len(PROVENANCE_NAMES) - 1} ({', '.join(PROVENANCE_NAMES)})")
    return prov


def provenance_counts(prov: np.ndarray) -> dict[str, int]:
    """Pixels per origin: ``{"none": n0, "model": n1, "human": n2, "crf": n3}`` (ints, sum = H*W)."""
    counts = np.bincount(prov.ravel(), minlength=len(PROVENANCE_NAMES))
    return {name: int(counts[i]) for i, name in enumerate(PROVENANCE_NAMES)}


def human_labels(labels: np.ndarray, provenance: np.ndarray | None) -> np.ndarray:
    """The label map a model may be *graded* on: only the pixels a person painted or changed.

    A pixel whose label came from a model and was accepted unchanged is a fine training label, but scoring a model
    (or its descendants) on it measures agreement with itself (issue 30). So every pixel whose provenance is not
    :data:`PROV_HUMAN` becomes :data:`~segstudio.core.labels.IGNORE_INDEX`: model pixels, DenseCRF pixels (the
    model's output smoothed by the image, not a person's decision) and unlabelled ones. Use it for held-out and
    validation scoring (the Metrics dock, a fine-tune's validation set); training may use every accepted pixel.

    Args:
        labels: uint8 or uint16 (H, W) label map (class ids, ``IGNORE_INDEX`` = unlabelled).
        provenance: uint8 (H, W) provenance map (``PROV_*``), or ``None`` when the labels have none (a label file
            written outside SegStudio, e.g. a dataset's ground truth or an import: every labelled pixel counts as a
            person's, as :class:`ProvenanceMap` stamps imported labels :data:`PROV_HUMAN`).

    Returns:
        A new label map of ``labels``' dtype and shape: ``labels`` where the provenance is human, ``IGNORE_INDEX`` elsewhere.

    Raises:
        ValueError: ``labels`` not 2-D, or ``provenance`` not a valid map of the same shape
            (:func:`validate_provenance`).
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"label map must be 2-D (H, W), got shape {labels.shape}")
    out = labels.copy()
    if provenance is not None:
        validate_provenance(provenance, labels.shape)
        out[provenance != PROV_HUMAN] = IGNORE_INDEX
    return out


def _check_origin(origin: int) -> None:
    if not 0 <= int(origin) < len(PROVENANCE_NAMES):
        raise ValueError(f"provenance origin must be 0..{len(PROVENANCE_NAMES) - 1} ({', '.join(PROVENANCE_NAMES)}), got {origin}")


class ProvenanceMap:
    """A provenance map with undo/redo that mirrors a document's label history.

    Args:
        shape: ``(H, W)`` of the label map.

    Attributes:
        map: uint8 (H, W), values ``PROV_*``.

    Each :meth:`record` stores only the touched box (before/after), compressed like the label history's
    steps (:meth:`segstudio.core.history.Patch.packed`), so memory grows with the edited area's complexity.
    The owner calls :meth:`undo`/:meth:`redo` exactly when its label history undid/redid a
    step, and :meth:`trim` when that history dropped its oldest steps.
    """

    def __init__(self, shape: tuple[int, int]) -> None:
        self.map = np.zeros(tuple(shape), dtype=np.uint8)
        self._undo: list[Patch] = []
        self._redo: list[Patch] = []

    def reset(self, labels: np.ndarray, origin: int) -> None:
        """Whole new label map: ``origin`` where labelled, none elsewhere; forgets undo/redo."""
        self.map = provenance_from_labels(labels, origin)
        self._undo.clear()
        self._redo.clear()

    def load(self, prov: np.ndarray) -> None:
        """Use a stored provenance map (e.g. read from disk); forgets undo/redo.

        Raises:
            ValueError: wrong dtype, shape or values (see :func:`validate_provenance`).
        """
        validate_provenance(prov, self.map.shape)
        self.map = np.array(prov, dtype=np.uint8, copy=True)
        self._undo.clear()
        self._redo.clear()

    def record(self, patch: Patch, origin: int, touched: tuple[int, int, np.ndarray] | None = None) -> None:
        """Stamp ``origin`` on the pixels ``patch`` changed (``before != after``) and on every pixel of
        ``touched``; one undo step.

        Args:
            patch: the label edit (may change nothing, e.g. a stroke inside a region of its own class).
            origin: one of ``PROV_*``.
            touched: ``(y0, x0, mask)``, bool (h, w) footprint of the gesture (every pixel under a brush
                stroke, a fill, a polygon...): a person painting a pixel confirms it even where its value stays.
        """
        _check_origin(origin)
        ph, pw = patch.shape
        y0, x0, y1, x1 = patch.y0, patch.x0, patch.y0 + ph, patch.x0 + pw
        if touched is not None:
            ty0, tx0, tmask = touched
            th, tw = tmask.shape
            y0, x0, y1, x1 = min(y0, ty0), min(x0, tx0), max(y1, ty0 + th), max(x1, tx0 + tw)
        box = self.map[y0:y1, x0:x1]
        before = box.copy()
        box[patch.y0 - y0 : patch.y0 - y0 + ph, patch.x0 - x0 : patch.x0 - x0 + pw][patch.before != patch.after] = origin
        if touched is not None:
            box[ty0 - y0 : ty0 - y0 + th, tx0 - x0 : tx0 - x0 + tw][tmask] = origin
        self._undo.append(Patch(y0, x0, before, box.copy()).packed())
        self._redo.clear()

    def undo(self) -> None:
        """Restore the provenance before the last recorded step (no-op when there is none)."""
        if self._undo:
            step = self._undo.pop()
            self.map[step.slices] = step.before
            self._redo.append(step)

    def redo(self) -> None:
        """Re-apply the last undone step (no-op when there is none)."""
        if self._redo:
            step = self._redo.pop()
            self.map[step.slices] = step.after
            self._undo.append(step)

    def trim(self, max_steps: int) -> None:
        """Keep at most ``max_steps`` undo steps (drop the oldest), as the label history did."""
        while len(self._undo) > max(int(max_steps), 0):
            self._undo.pop(0)

    def clear_history(self) -> None:
        """Forget undo/redo steps (when the label history was cleared); keeps the map."""
        self._undo.clear()
        self._redo.clear()

    @property
    def nbytes(self) -> int:
        """Bytes held by the undo/redo steps (compressed)."""
        return sum(p.nbytes for p in self._undo) + sum(p.nbytes for p in self._redo)

    def counts(self) -> dict[str, int]:
        """Pixels per origin (see :func:`provenance_counts`)."""
        return provenance_counts(self.map)
