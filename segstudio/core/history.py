"""Undo/redo history that stores only the touched patch of each edit.

Each :class:`Patch` keeps the *before* and *after* contents of the bounding box an edit touched
(the approach of napari's labels layer), so memory grows with the painted area, never with the
size of the label map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Patch:
    """One reversible edit of a label map.

    Attributes:
        y0, x0: top-left corner of the touched box, pixels.
        before, after: uint8 (h, w) contents of the box before and after the edit.
    """

    y0: int
    x0: int
    before: np.ndarray
    after: np.ndarray

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices of the box in the full label map."""
        h, w = self.before.shape
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)

    @property
    def nbytes(self) -> int:
        """Bytes held by the two patches."""
        return self.before.nbytes + self.after.nbytes

    @property
    def rect(self) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of the touched box, for dirty-rectangle repaint."""
        h, w = self.before.shape
        return self.x0, self.y0, w, h


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(row0, row1, col0, col1)`` (end-exclusive) of the True pixels of a non-empty bool (h, w) mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def make_patch(labels: np.ndarray, y0: int, x0: int, after: np.ndarray) -> Patch | None:
    """Write ``after`` into ``labels`` at ``(y0, x0)`` and return the :class:`Patch`, or ``None`` if nothing changed.

    The returned patch is cropped to the bounding box of pixels that really changed.
    """
    h, w = after.shape
    region = labels[y0 : y0 + h, x0 : x0 + w]
    changed = region != after
    if not changed.any():
        return None
    r0, r1, c0, c1 = mask_bbox(changed)
    before = region[r0:r1, c0:c1].copy()
    new = after[r0:r1, c0:c1].copy()
    region[r0:r1, c0:c1] = new
    return Patch(int(y0 + r0), int(x0 + c0), before, new)


def merge_patches(labels: np.ndarray, patches: list[Patch]) -> Patch | None:
    """Combine consecutive patches already applied to ``labels`` into one undo step.

    Used for a live brush stroke painted segment by segment. The merged box is the union of the
    boxes; its *before* is rebuilt by undoing the patches (newest first) on a copy of that box only.
    """
    patches = [p for p in patches if p is not None]
    if not patches:
        return None
    y0 = min(p.y0 for p in patches)
    x0 = min(p.x0 for p in patches)
    y1 = max(p.y0 + p.before.shape[0] for p in patches)
    x1 = max(p.x0 + p.before.shape[1] for p in patches)
    after = labels[y0:y1, x0:x1].copy()
    before = after.copy()
    for p in reversed(patches):
        h, w = p.before.shape
        before[p.y0 - y0 : p.y0 - y0 + h, p.x0 - x0 : p.x0 - x0 + w] = p.before
    changed = before != after
    if not changed.any():
        return None
    r0, r1, c0, c1 = mask_bbox(changed)
    return Patch(int(y0 + r0), int(x0 + c0), before[r0:r1, c0:c1].copy(), after[r0:r1, c0:c1].copy())


class History:
    """Linear undo/redo stack of :class:`Patch` edits.

    Args:
        max_bytes: memory budget for stored patches; the oldest steps are dropped beyond it.

    A new edit clears the redo stack (as every editor does).
    """

    def __init__(self, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_bytes = int(max_bytes)
        self._undo: list[Patch] = []
        self._redo: list[Patch] = []

    def push(self, patch: Patch | None) -> None:
        """Record an edit that has already been applied (``None`` is ignored)."""
        if patch is None:
            return
        self._undo.append(patch)
        self._redo.clear()
        while len(self._undo) > 1 and self.nbytes > self.max_bytes:
            self._undo.pop(0)

    def undo(self, labels: np.ndarray) -> Patch | None:
        """Restore the *before* box of the last edit into ``labels``; return the patch or ``None``."""
        if not self._undo:
            return None
        patch = self._undo.pop()
        labels[patch.slices] = patch.before
        self._redo.append(patch)
        return patch

    def redo(self, labels: np.ndarray) -> Patch | None:
        """Re-apply the last undone edit into ``labels``; return the patch or ``None``."""
        if not self._redo:
            return None
        patch = self._redo.pop()
        labels[patch.slices] = patch.after
        self._undo.append(patch)
        return patch

    def clear(self) -> None:
        """Forget all steps (e.g. when a new prediction replaces the label map)."""
        self._undo.clear()
        self._redo.clear()

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def nbytes(self) -> int:
        """Bytes held by all undo and redo patches."""
        return sum(p.nbytes for p in self._undo) + sum(p.nbytes for p in self._redo)

    def __len__(self) -> int:
        return len(self._undo)
