"""Region tools: closed shapes filled on close (polygon, lasso: :class:`ShapeTool`) and the GrabCut rectangle."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QPainter, QPainterPath, QPen, QPolygonF

from segstudio.core import Document, Patch
from segstudio.gui.tools.base import ICON_ACCENT, ICON_INK, Tool, ToolHost, ToolId
from segstudio.gui.workers import Job
from segstudio.postprocess.grabcut import grabcut_region


class ShapeTool(Tool):
    """A closed shape filled with the current class on close (:meth:`Document.polygon`, rule
    ``host.polygon_rule``); drawn in progress in ``host.shape_item``."""

    def __init__(self, host: ToolHost) -> None:
        super().__init__(host)
        self.points: list[tuple[float, float]] = []  # (x, y) vertices
        self.hover: tuple[float, float] | None = None  # (x, y) of the rubber-band end (polygon)

    def add_vertex(self, x: float, y: float) -> None:
        """Add vertex ``(x, y)`` (image coordinates); a repeat of the last one is ignored."""
        if self.host.doc is None:
            return
        if not self.points or (x, y) != self.points[-1]:
            self.points.append((x, y))
        self.update_item()

    def remove_vertex(self) -> None:
        if self.points:
            self.points.pop()
            self.update_item()

    def close(self) -> Patch | None:
        """Fill the shape with the current class (one undo step) and end it; fewer than 3 vertices only end
        it (with a status message). Returns the patch, or ``None``."""
        pts, self.points, self.hover = self.points, [], None
        self.update_item()
        doc = self.host.doc
        if doc is None or len(pts) < 3:
            if pts:
                self.host.status.emit("a polygon needs at least 3 points")
            return None
        value = self.value()
        if not self.check_value(doc, value):
            return None
        patch = doc.polygon(np.asarray(pts, dtype=np.float64), value, self.host.polygon_rule)
        return patch

    def cancel(self) -> None:
        self.points, self.hover = [], None
        self.update_item()

    def key(self, key: int) -> bool:
        if key == Qt.Key.Key_Backspace and self.points:
            self.remove_vertex()
            return True
        return False

    def update_item(self) -> None:
        """Redraw the shape in progress (pixel centres are at ``+ 0.5`` in scene coordinates)."""
        path = QPainterPath()
        if self.points:
            path.moveTo(self.points[0][0] + 0.5, self.points[0][1] + 0.5)
            for x, y in self.points[1:] + ([self.hover] if self.hover else []):
                path.lineTo(x + 0.5, y + 0.5)
            path.closeSubpath()
        self.host.shape_item.setPath(path)


class PolygonTool(ShapeTool):
    """Click vertices; a click on the first vertex (within 8 screen px), a double-click or
    ``Canvas.close_shape`` (Enter) closes; Backspace removes the last vertex; Esc cancels."""

    name = ToolId.POLYGON
    label = "Polygon"
    shortcut = "P"
    mouse_help = "polygon: click vertices, double-click / Enter / click the first vertex closes, Backspace removes the last vertex"

    @staticmethod
    def draw_icon(p: QPainter) -> None:
        pts = [QPointF(4, 18), QPointF(7, 5), QPointF(19, 4), QPointF(20, 16), QPointF(11, 20)]
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPolygon(QPolygonF(pts))
        p.setBrush(QBrush(ICON_ACCENT))
        for q in pts:
            p.drawEllipse(q, 1.8, 1.8)

    def _near_first_vertex(self, x: float, y: float) -> bool:
        if len(self.points) < 3:
            return False
        fx, fy = self.points[0]
        a = self.host.mapFromScene(QPointF(fx, fy))
        b = self.host.mapFromScene(QPointF(x, y))
        return (a - b).manhattanLength() <= 8

    def press(self, y: float, x: float) -> None:
        if self._near_first_vertex(x, y):
            self.close()
        else:
            self.add_vertex(x, y)

    def move(self, y: float, x: float, left_down: bool) -> bool:
        if self.points:
            self.hover = (x, y)
            self.update_item()
        return False  # the view still sees hover moves

    def double_click(self, y: float, x: float) -> bool:
        if not self.points:
            return False
        self.close()
        return True


class LassoTool(ShapeTool):
    """Freehand outline while the button is held (a vertex per pixel moved); filled on release."""

    name = ToolId.LASSO
    label = "Lasso"
    shortcut = "L"
    mouse_help = "lasso: drag a loop"

    @staticmethod
    def draw_icon(p: QPainter) -> None:
        p.setPen(QPen(ICON_INK, 1.6, Qt.PenStyle.DashLine))
        p.drawEllipse(QRectF(3, 5, 18, 12))
        p.setPen(QPen(ICON_INK, 1.6))
        p.drawLine(QPointF(7, 16), QPointF(5, 22))

    def press(self, y: float, x: float) -> None:
        self.points, self.hover = [], None
        self.add_vertex(x, y)

    def move(self, y: float, x: float, left_down: bool) -> bool:
        if not self.points or not left_down:
            return False
        lx, ly = self.points[-1]
        if abs(x - lx) + abs(y - ly) >= 1.0:
            self.add_vertex(x, y)
        return True

    def release(self, y: float, x: float) -> bool:
        if not self.points:
            return False
        self.close()
        return True


class GrabCutTool(Tool):
    """Drag a rectangle around an object; GrabCut (Rother et al., SIGGRAPH 2004, via
    :func:`segstudio.postprocess.grabcut.grabcut_region`) runs in a worker and its foreground becomes the
    current class, one undo step on the document it started on. ``host.grabcutDone(bool)`` reports the
    end of each job (True = its result changed the labels)."""

    name = ToolId.GRABCUT
    label = "GrabCut rectangle"
    shortcut = "G"
    mouse_help = "GrabCut: drag a rectangle around the object"
    JOB = "grabcut"

    @staticmethod
    def draw_icon(p: QPainter) -> None:
        p.setPen(QPen(ICON_INK, 1.4, Qt.PenStyle.DashLine))
        p.drawRect(QRectF(3, 3, 18, 18))
        p.setPen(QPen(ICON_INK, 1.2))
        p.setBrush(QBrush(ICON_ACCENT))
        p.drawEllipse(QRectF(7, 7, 10, 10))

    def __init__(self, host: ToolHost) -> None:
        super().__init__(host)
        self._from: tuple[float, float] | None = None  # (y, x) where the drag started
        self._applied = False

    def _show_rect(self, y: float, x: float) -> None:
        fy, fx = self._from
        self.host.rect_item.setRect(QRectF(QPointF(fx + 0.5, fy + 0.5), QPointF(x + 0.5, y + 0.5)).normalized())
        self.host.rect_item.show()

    def press(self, y: float, x: float) -> None:
        self._from = (y, x)
        self._show_rect(y, x)

    def move(self, y: float, x: float, left_down: bool) -> bool:
        if self._from is None:
            return False
        self._show_rect(y, x)
        return True

    def release(self, y: float, x: float) -> bool:
        if self._from is None:
            return False
        fy, fx = self._from
        self.cancel()
        # Whole pixels whose centres the dragged rectangle covers.
        x0, y0 = math.floor(min(fx, x) + 0.5), math.floor(min(fy, y) + 0.5)
        x1, y1 = math.ceil(max(fx, x) + 0.5), math.ceil(max(fy, y) + 0.5)
        self.run((x0, y0, x1 - x0, y1 - y0))
        return True

    def cancel(self) -> None:
        self._from = None
        self.host.rect_item.hide()

    def run(self, rect: tuple[int, int, int, int]) -> bool:
        """Run GrabCut on ``rect`` ``(x, y, w, h)`` (pixels) of the shown image in a worker.

        Returns False (with a status message) when no image is shown, the rectangle overlaps the image by
        less than 4 px a side, the current class is not valid, or a GrabCut job is already running.
        """
        doc = self.host.doc
        if doc is None:
            return False
        if self.host.jobs.running(self.JOB):
            self.host.status.emit("GrabCut is still running")
            return False
        x, y, w, h = (int(round(v)) for v in rect)
        H, W = doc.shape
        if min(x + w, W) - max(x, 0) < 4 or min(y + h, H) - max(y, 0) < 4:
            self.host.status.emit("drag a larger rectangle around the object for GrabCut")
            return False
        class_id = self.value()
        if not self.check_value(doc, class_id):
            return False
        image, labels = doc.image, doc.labels.copy()

        def work(job: Job):
            job.report(0, 1, "GrabCut…")
            return grabcut_region(image, labels, (x, y, w, h), class_id)

        self._applied = False
        self.host.jobs.start(self.JOB, work, lambda mask: self._on_result(doc, class_id, mask), self._on_done)
        self.host.status.emit(f"GrabCut running on {w}x{h} px…")
        return True

    def _on_result(self, doc: Document, class_id: int, mask: np.ndarray) -> None:
        if class_id >= doc.classes.num_classes:  # the classes were edited while GrabCut ran
            self.host.status.emit(f"GrabCut result dropped: class id {class_id} no longer exists")
            return
        patch = doc.apply_region(mask, class_id)
        self._applied = patch is not None
        self.host.status.emit(f"GrabCut: {int(mask.sum())} px → class {class_id + 1}")

    def _on_done(self) -> None:
        applied, self._applied = self._applied, False
        self.host.grabcutDone.emit(applied)
