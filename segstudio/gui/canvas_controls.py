"""View controls of the :class:`~segstudio.gui.canvas.Canvas` that are not tools: zoom about the cursor,
1:1 zoom, the hold-key peek under the overlay, Ctrl+drag brush resizing, proportional brush steps and the
cursor position for the status bar.

An event filter on the canvas and its viewport, so the canvas stays small; it changes only the view (zoom,
scroll, overlay visibility while a key is held) and the brush radius, never labels.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtWidgets import QGraphicsView

from segstudio.core import IGNORE_INDEX

BRUSH_STEP = 1.25
"""``]`` multiplies the brush radius by this, ``[`` divides (at least ±1 px), so steps are proportional to the size."""

PEEK_KEY = Qt.Key.Key_V
"""Hold this key to hide the label overlay (peek at the image under it); release to show it again."""

ZOOM_STEP = 1.25
"""One wheel notch zooms in (or out) by this factor."""

ZOOM_RANGE = (0.02, 64.0)
"""Smallest and largest zoom (screen pixels per image pixel)."""


def step_radius(r: int, up: bool, factor: float = BRUSH_STEP) -> int:
    """The next brush radius (pixels, 1..256) after one ``]`` (``up``) or ``[``: ×/÷ ``factor``, at least ±1 px."""
    new = round(r * factor) if up else round(r / factor)
    new = max(new, r + 1) if up else min(new, r - 1)
    return int(min(max(new, 1), 256))


class CanvasControls(QObject):
    """Installs itself on ``canvas`` (keys) and its viewport (mouse, wheel).

    Signals:
        hovered(int x, int y): image pixel under the cursor (may be outside the image; the receiver checks).
        zoomChanged(float): the zoom, screen pixels per image pixel (1.0 = 100 %).
        peekChanged(bool): True while the peek key is held (overlay hidden).
    """

    hovered = Signal(int, int)
    zoomChanged = Signal(float)
    peekChanged = Signal(bool)

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self.peeking = False
        self._overlay_was_visible = True
        self._resize_from: tuple[float, int] | None = None  # (viewport x at press, radius at press)
        canvas.installEventFilter(self)
        canvas.viewport().installEventFilter(self)

    # -- zoom -----------------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        """Screen pixels per image pixel."""
        return float(self.canvas.transform().m11())

    def zoom_at(self, factor: float, pos: QPointF | None = None) -> None:
        """Zoom by ``factor`` keeping the image point under viewport position ``pos`` (default: the centre)
        under it (as far as the scroll range allows: an image smaller than the view stays centred)."""
        cv = self.canvas
        if pos is None:
            pos = QPointF(cv.viewport().rect().center())
        z = self.zoom
        factor = min(max(z * factor, ZOOM_RANGE[0]), ZOOM_RANGE[1]) / z
        before = cv.mapToScene(pos.toPoint())
        cv._auto_fit = False
        anchor = cv.transformationAnchor()
        cv.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        cv.scale(factor, factor)
        cv.setTransformationAnchor(anchor)
        after = cv.mapFromScene(before)
        hs, vs = cv.horizontalScrollBar(), cv.verticalScrollBar()
        hs.setValue(hs.value() + round(after.x() - pos.x()))
        vs.setValue(vs.value() + round(after.y() - pos.y()))
        self.zoomChanged.emit(self.zoom)

    def zoom_1to1(self) -> None:
        """Ctrl+1: one image pixel per screen pixel, centred on the point under the cursor (or the centre)."""
        cv = self.canvas
        vp = cv.viewport()
        pos = vp.mapFromGlobal(cv.cursor().pos())
        pos = QPointF(pos) if vp.rect().contains(pos) else QPointF(vp.rect().center())
        self.zoom_at(1.0 / max(self.zoom, 1e-9), pos)

    # -- brush ----------------------------------------------------------------------------------
    def step_brush(self, up: bool) -> None:
        """``]`` / ``[``: the brush radius ×/÷ :data:`BRUSH_STEP`."""
        self.canvas.set_brush_radius(step_radius(self.canvas.brush_radius, up))

    # -- whole-image edits (one undo step each) ---------------------------------------------------
    def fill_unlabelled(self, value: int):
        """Give every unlabelled (``IGNORE_INDEX``) pixel of the shown image class ``value``: one undo step
        (a person's decision, like a fill). Returns the patch, or ``None`` when nothing was unlabelled.

        Raises:
            ValueError: ``value`` is not one of the document's classes.
        """
        doc = self.canvas.doc
        if doc is None or self.canvas._pending():
            return None
        patch = doc.apply_region(doc.labels == IGNORE_INDEX, int(value))
        return patch

    def clear_labels(self):
        """Erase every label of the shown image (all pixels unlabelled): one undo step, like the eraser.
        Returns the patch, or ``None`` when nothing was labelled."""
        doc = self.canvas.doc
        if doc is None or self.canvas._pending():
            return None
        patch = doc.apply_region(doc.labels != IGNORE_INDEX, IGNORE_INDEX)
        return patch

    # -- events ---------------------------------------------------------------------------------
    def eventFilter(self, obj, event) -> bool:
        t = event.type()
        if obj is self.canvas:
            if t == QEvent.Type.ShortcutOverride and event.key() == PEEK_KEY and not event.modifiers():
                event.accept()  # a press/release pair for us, not the menu entry's shortcut (it only documents the key)
                return True
            if t in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and event.key() == PEEK_KEY and not event.isAutoRepeat():
                self.set_peek(t == QEvent.Type.KeyPress)
                return True
            if t == QEvent.Type.FocusOut and self.peeking:
                self.set_peek(False)
            return False
        if t == QEvent.Type.Wheel:
            self.zoom_at(ZOOM_STEP if event.angleDelta().y() > 0 else 1.0 / ZOOM_STEP, event.position())
            return True
        if t == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton and (
            event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            self._resize_from = (event.position().x(), self.canvas.brush_radius)
            return True
        if t == QEvent.Type.MouseMove:
            if self._resize_from is not None:
                x0, r0 = self._resize_from
                self.canvas.set_brush_radius(round(r0 * 1.02 ** (event.position().x() - x0)))  # ×2 per 35 px
                return True
            p = self.canvas.mapToScene(event.position().toPoint())
            self.hovered.emit(int(p.x() // 1), int(p.y() // 1))
        if t == QEvent.Type.MouseButtonRelease and self._resize_from is not None:
            self._resize_from = None
            return True
        return False

    def set_peek(self, on: bool) -> None:
        """Hide the overlay while ``on`` (the peek key held); restore its previous visibility after."""
        if on == self.peeking:
            return
        ov = self.canvas.overlay
        if on:
            self._overlay_was_visible = ov.isVisible()
            ov.setVisible(False)
        else:
            ov.setVisible(self._overlay_was_visible)
        self.peeking = on
        self.peekChanged.emit(on)
