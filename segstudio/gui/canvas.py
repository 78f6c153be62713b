"""``Canvas``: the image with its label overlay, pan/zoom, and the paint tools.

The overlay is an RGBA numpy buffer wrapped by a QImage without copying; an edit recolours only its
dirty rectangle in the buffer and asks Qt to repaint only that rectangle.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QStyleOptionGraphicsItem,
)

from segstudio.core import IGNORE_INDEX, ClassSpec, Document, Patch, merge_patches
from segstudio.core import paint as core_paint
from segstudio.gui.qtutil import rgb_to_qimage

TOOL_BRUSH = "brush"
TOOL_ERASER = "eraser"
TOOL_FILL = "fill"
TOOLS = (TOOL_BRUSH, TOOL_ERASER, TOOL_FILL)


class LabelOverlayItem(QGraphicsItem):
    """Draws a label map as colours (ignore = transparent); repaints dirty rectangles only."""

    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self._rgba = np.zeros((1, 1, 4), dtype=np.uint8)
        self._qimage = QImage()
        self._lut = np.zeros((256, 4), dtype=np.uint8)
        self.hidden_classes: set[int] = set()

    def set_classes(self, classes: ClassSpec) -> None:
        lut = np.zeros((256, 4), dtype=np.uint8)
        lut[: classes.num_classes, :3] = np.asarray(classes.colors, dtype=np.uint8)
        lut[: classes.num_classes, 3] = 255
        self._lut = lut

    def set_labels(self, labels: np.ndarray) -> None:
        """Recolour everything (new image or new prediction)."""
        self.prepareGeometryChange()
        self._rgba = np.ascontiguousarray(self._lut[labels])
        h, w = labels.shape
        self._qimage = QImage(self._rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
        self.update()

    def update_rect(self, labels: np.ndarray, x: int, y: int, w: int, h: int) -> None:
        """Recolour and repaint only ``labels[y:y+h, x:x+w]``."""
        self._rgba[y : y + h, x : x + w] = self._lut[labels[y : y + h, x : x + w]]
        self.update(QRectF(x, y, w, h))

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._rgba.shape[1], self._rgba.shape[0])

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        if self._qimage.isNull():
            return
        r = option.exposedRect.intersected(self.boundingRect()).toAlignedRect()
        painter.drawImage(r, self._qimage, r)


class Canvas(QGraphicsView):
    """Image + overlay view with brush, eraser and flood fill.

    Signals:
        edited(): the label map changed (stroke, fill, undo, redo).
        brushSizeChanged(int): radius in image pixels.

    Mouse: left button uses the current tool; middle or right drag pans; wheel zooms around the cursor.
    """

    edited = Signal()
    brushSizeChanged = Signal(int)
    navigate = Signal(int)

    _NAV_KEYS = {Qt.Key.Key_Right: 1, Qt.Key.Key_PageDown: 1, Qt.Key.Key_Left: -1, Qt.Key.Key_PageUp: -1}

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setMouseTracking(True)
        self.setBackgroundBrush(QBrush(QColor(40, 40, 40)))
        self.image_item = QGraphicsPixmapItem()
        self.overlay = LabelOverlayItem()
        self.overlay.setOpacity(0.5)
        self.cursor_item = QGraphicsEllipseItem()
        self.cursor_item.setPen(QPen(QColor(255, 255, 255), 0))
        self.cursor_item.setZValue(10)
        self.cursor_item.hide()
        for it in (self.image_item, self.overlay, self.cursor_item):
            self.scene().addItem(it)
        self.doc: Document | None = None
        self.tool = TOOL_BRUSH
        self.brush_radius = 8
        self.current_class = 0
        self._stroke: list[Patch] | None = None
        self._last: tuple[float, float] | None = None
        self._pan_from = None
        self._auto_fit = True  # keep the image fitted to the view until the user zooms

    # -- document -------------------------------------------------------------------------
    def set_document(self, doc: Document | None, fit: bool = True) -> None:
        self.doc = doc
        self._stroke = None
        if doc is None:
            self.image_item.setPixmap(QPixmap())
            self.overlay.set_labels(np.full((1, 1), IGNORE_INDEX, np.uint8))
            return
        self.image_item.setPixmap(QPixmap.fromImage(rgb_to_qimage(doc.image)))
        self.overlay.set_classes(doc.classes)
        self.overlay.set_labels(doc.labels)
        h, w = doc.shape
        self.scene().setSceneRect(QRectF(0, 0, w, h))
        if fit:
            self._auto_fit = True
            self.fitInView(QRectF(0, 0, w, h), Qt.AspectRatioMode.KeepAspectRatio)

    def refresh_labels(self) -> None:
        """Redraw the whole overlay from the document's label map."""
        if self.doc is not None:
            self.overlay.set_classes(self.doc.classes)
            self.overlay.set_labels(self.doc.labels)

    def refresh_patch(self, patch: Patch | None) -> None:
        if patch is not None and self.doc is not None:
            self.overlay.update_rect(self.doc.labels, *patch.rect)

    def set_overlay_visible(self, on: bool) -> None:
        self.overlay.setVisible(on)

    def set_opacity(self, value: float) -> None:
        self.overlay.setOpacity(value)

    def set_brush_radius(self, r: int) -> None:
        self.brush_radius = int(min(max(r, 1), 256))
        self.brushSizeChanged.emit(self.brush_radius)
        self._update_cursor(None)

    # -- edits ------------------------------------------------------------------------------
    def _value(self) -> int:
        return IGNORE_INDEX if self.tool == TOOL_ERASER else self.current_class

    def begin_stroke(self, y: float, x: float) -> None:
        """Start a brush/eraser stroke at image coordinates ``(y, x)``."""
        if self.doc is None:
            return
        self._stroke = []
        self._last = (y, x)
        self._stroke_to(y, x)

    def _stroke_to(self, y: float, x: float) -> None:
        patch = core_paint.paint_stroke(self.doc.labels, [self._last, (y, x)], self.brush_radius, self._value())
        self._last = (y, x)
        if patch is not None:
            self._stroke.append(patch)
            self.refresh_patch(patch)

    def continue_stroke(self, y: float, x: float) -> None:
        if self._stroke is not None:
            self._stroke_to(y, x)

    def end_stroke(self) -> None:
        """Finish the stroke: all its segments become one undo step."""
        if self._stroke is None:
            return
        patch = merge_patches(self.doc.labels, self._stroke)
        self._stroke = None
        if patch is not None:
            self.doc.apply_patch(patch)
            self.edited.emit()

    def fill_at(self, y: int, x: int) -> None:
        if self.doc is None:
            return
        h, w = self.doc.shape
        if 0 <= y < h and 0 <= x < w:
            patch = self.doc.fill(y, x, self._value())
            if patch is not None:
                self.refresh_patch(patch)
                self.edited.emit()

    def undo(self) -> None:
        if self.doc is not None and self._stroke is None:
            patch = self.doc.undo()
            if patch is not None:
                self.refresh_patch(patch)
                self.edited.emit()

    def redo(self) -> None:
        if self.doc is not None and self._stroke is None:
            patch = self.doc.redo()
            if patch is not None:
                self.refresh_patch(patch)
                self.edited.emit()

    # -- mouse ------------------------------------------------------------------------------
    def _image_pos(self, event) -> tuple[float, float]:
        p: QPointF = self.mapToScene(event.position().toPoint())
        return p.y() - 0.5, p.x() - 0.5

    def _update_cursor(self, pos: tuple[float, float] | None) -> None:
        if pos is None:
            pos = (self.cursor_item.rect().center().y(), self.cursor_item.rect().center().x())
        r = self.brush_radius
        y, x = pos
        self.cursor_item.setRect(QRectF(x + 0.5 - r, y + 0.5 - r, 2 * r, 2 * r))
        self.cursor_item.setVisible(self.doc is not None and self.tool in (TOOL_BRUSH, TOOL_ERASER))

    def mousePressEvent(self, event) -> None:
        if event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton):
            self._pan_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if event.button() == Qt.MouseButton.LeftButton and self.doc is not None:
            y, x = self._image_pos(event)
            if self.tool == TOOL_FILL:
                self.fill_at(int(round(y)), int(round(x)))
            else:
                self.begin_stroke(y, x)
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._pan_from is not None:
            d = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(d.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(d.y()))
            return
        pos = self._image_pos(event)
        self._update_cursor(pos)
        if self._stroke is not None:
            self.continue_stroke(*pos)
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton):
            self._pan_from = None
            self.unsetCursor()
            return
        if event.button() == Qt.MouseButton.LeftButton and self._stroke is not None:
            self.end_stroke()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event) -> None:
        # QGraphicsView would scroll on arrow keys; in SegStudio they move between images.
        step = self._NAV_KEYS.get(event.key())
        if step is not None and event.modifiers() == Qt.KeyboardModifier.NoModifier:
            self.navigate.emit(step)
            return
        super().keyPressEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._auto_fit:
            self.zoom_fit()

    def wheelEvent(self, event) -> None:
        self._auto_fit = False
        factor = 1.25 if event.angleDelta().y() > 0 else 0.8
        self.scale(factor, factor)

    def zoom_fit(self) -> None:
        if self.doc is not None:
            self._auto_fit = True
            self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
