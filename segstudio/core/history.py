"""Undo/redo history that stores only the touched patch of each edit, compressed.

Each :class:`Patch` keeps the *before* and *after* contents of the bounding box an edit touched
(the approach of napari's labels layer), so memory grows with the painted area, never with the
size of the label map. :class:`History` stores its steps *packed* (:meth:`Patch.packed`): the
*before* box and the XOR of *after* with *before* (zero wherever the edit left a pixel alone),
each deflated with ``zlib`` level 1. Label boxes are long runs of a few values and the XOR is
mostly zeros, so a long brush stroke's step shrinks ~10-50x; packing or unpacking a typical stroke's
box takes well under a millisecond. Undo and redo restore the boxes bit for bit (zlib is lossless).
"""

from __future__ import annotations

import zlib

import numpy as np

ZLIB_LEVEL = 1
"""Compression level of packed patches: 1 (fastest) packs label boxes nearly as small as 9, 5-10x faster."""


class Patch:
    """One reversible edit of a label map.

    ``Patch(y0, x0, before, after)`` holds the two boxes as given (what the paint operations return, used
    while a stroke is live); :meth:`packed` returns the same edit stored compressed (what :class:`History`
    keeps). Both kinds have the same read-only interface, and are immutable.

    Attributes:
        y0, x0: top-left corner of the touched box, pixels.
        before, after: uint8 (h, w) contents of the box before and after the edit (a packed patch
            decompresses them on each access, as read-only arrays).
    """

    __slots__ = ("y0", "x0", "shape", "_before", "_after", "_zbefore", "_zdiff")

    def __init__(self, y0: int, x0: int, before: np.ndarray, after: np.ndarray) -> None:
        if before.shape != after.shape or before.ndim != 2:
            raise ValueError(f"before and after must be (h, w) boxes of one shape, got {before.shape} and {after.shape}")
        _set = object.__setattr__
        _set(self, "y0", int(y0))
        _set(self, "x0", int(x0))
        _set(self, "shape", tuple(before.shape))
        _set(self, "_before", before)
        _set(self, "_after", after)
        _set(self, "_zbefore", None)
        _set(self, "_zdiff", None)

    def __setattr__(self, name, value):
        raise AttributeError(f"Patch is immutable (cannot set {name!r})")

    def __delattr__(self, name):
        raise AttributeError(f"Patch is immutable (cannot delete {name!r})")

    def __repr__(self) -> str:
        kind = "packed " if self.is_packed else ""
        return f"<{kind}Patch y0={self.y0} x0={self.x0} shape={self.shape} nbytes={self.nbytes}>"

    # -- packing -------------------------------------------------------------------------------
    @property
    def is_packed(self) -> bool:
        """True when the boxes are stored compressed."""
        return self._zbefore is not None

    def packed(self) -> Patch:
        """This edit stored compressed: zlib of *before* and of ``after ^ before`` (uint8). Returns ``self``
        when already packed."""
        if self.is_packed:
            return self
        before = np.ascontiguousarray(self._before, dtype=np.uint8)
        diff = np.bitwise_xor(before, np.asarray(self._after, dtype=np.uint8))
        p = object.__new__(Patch)
        _set = object.__setattr__
        _set(p, "y0", self.y0)
        _set(p, "x0", self.x0)
        _set(p, "shape", self.shape)
        _set(p, "_before", None)
        _set(p, "_after", None)
        _set(p, "_zbefore", zlib.compress(before.data, ZLIB_LEVEL))
        _set(p, "_zdiff", zlib.compress(diff.data, ZLIB_LEVEL))
        return p

    def _unpack(self, blob: bytes) -> np.ndarray:
        return np.frombuffer(zlib.decompress(blob), dtype=np.uint8).reshape(self.shape)

    @property
    def before(self) -> np.ndarray:
        """uint8 (h, w) box before the edit."""
        if self._zbefore is None:
            return self._before
        return self._unpack(self._zbefore)

    @property
    def after(self) -> np.ndarray:
        """uint8 (h, w) box after the edit."""
        if self._zbefore is None:
            return self._after
        out = self._unpack(self._zbefore).copy()
        np.bitwise_xor(out, self._unpack(self._zdiff), out=out)
        out.flags.writeable = False
        return out

    # -- geometry ------------------------------------------------------------------------------
    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices of the box in the full label map."""
        h, w = self.shape
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)

    @property
    def nbytes(self) -> int:
        """Bytes held by the two boxes (compressed sizes for a packed patch)."""
        if self._zbefore is not None:
            return len(self._zbefore) + len(self._zdiff)
        return self._before.nbytes + self._after.nbytes

    @property
    def rect(self) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of the touched box, for dirty-rectangle repaint."""
        h, w = self.shape
        return self.x0, self.y0, w, h

    def apply_before(self, labels: np.ndarray) -> None:
        """Write the *before* box into ``labels`` (undo)."""
        labels[self.slices] = self.before

    def apply_after(self, labels: np.ndarray) -> None:
        """Write the *after* box into ``labels`` (redo); a packed patch XORs its diff in place."""
        if self._zbefore is None:
            labels[self.slices] = self._after
            return
        box = labels[self.slices]
        box[...] = self._unpack(self._zbefore)
        np.bitwise_xor(box, self._unpack(self._zdiff), out=box)

    def __reduce__(self):
        return _restore_patch, (self.y0, self.x0, self.shape, self._before, self._after, self._zbefore, self._zdiff)


def _restore_patch(y0, x0, shape, before, after, zbefore, zdiff) -> Patch:
    p = object.__new__(Patch)
    for name, value in zip(Patch.__slots__, (y0, x0, shape, before, after, zbefore, zdiff)):
        object.__setattr__(p, name, value)
    return p


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
    y1 = max(p.y0 + p.shape[0] for p in patches)
    x1 = max(p.x0 + p.shape[1] for p in patches)
    after = labels[y0:y1, x0:x1].copy()
    before = after.copy()
    for p in reversed(patches):
        h, w = p.shape
        before[p.y0 - y0 : p.y0 - y0 + h, p.x0 - x0 : p.x0 - x0 + w] = p.before
    changed = before != after
    if not changed.any():
        return None
    r0, r1, c0, c1 = mask_bbox(changed)
    return Patch(int(y0 + r0), int(x0 + c0), before[r0:r1, c0:c1].copy(), after[r0:r1, c0:c1].copy())


class History:
    """Linear undo/redo stack of :class:`Patch` edits, stored packed (see :meth:`Patch.packed`).

    Args:
        max_bytes: memory budget for stored (compressed) patches; the oldest steps are dropped beyond it.

    A new edit clears the redo stack (as every editor does). :meth:`undo` and :meth:`redo` return the
    stored, packed patch (same interface as the one pushed).
    """

    def __init__(self, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_bytes = int(max_bytes)
        self._undo: list[Patch] = []
        self._redo: list[Patch] = []
        self._nbytes = 0  # running total of the stored patches' nbytes

    def push(self, patch: Patch | None) -> None:
        """Record an edit that has already been applied (``None`` is ignored)."""
        if patch is None:
            return
        patch = patch.packed()
        self._nbytes -= sum(p.nbytes for p in self._redo)
        self._redo.clear()
        self._undo.append(patch)
        self._nbytes += patch.nbytes
        while len(self._undo) > 1 and self._nbytes > self.max_bytes:
            self._nbytes -= self._undo.pop(0).nbytes

    def undo(self, labels: np.ndarray) -> Patch | None:
        """Restore the *before* box of the last edit into ``labels``; return the patch or ``None``."""
        if not self._undo:
            return None
        patch = self._undo.pop()
        patch.apply_before(labels)
        self._redo.append(patch)
        return patch

    def redo(self, labels: np.ndarray) -> Patch | None:
        """Re-apply the last undone edit into ``labels``; return the patch or ``None``."""
        if not self._redo:
            return None
        patch = self._redo.pop()
        patch.apply_after(labels)
        self._undo.append(patch)
        return patch

    def clear(self) -> None:
        """Forget all steps (e.g. when a new prediction replaces the label map)."""
        self._undo.clear()
        self._redo.clear()
        self._nbytes = 0

    def last_steps(self) -> tuple[Patch | None, Patch | None]:
        """``(last undo step, last redo step)``, each ``None`` when that stack is empty (e.g. for an edit journal)."""
        return (self._undo[-1] if self._undo else None, self._redo[-1] if self._redo else None)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def nbytes(self) -> int:
        """Bytes held by all undo and redo patches (compressed sizes)."""
        return self._nbytes

    def __len__(self) -> int:
        return len(self._undo)
