"""``Canvas``: the image with its label overlay, pan/zoom, and the labelling tools.

The overlay is a :class:`~segstudio.gui.overlay.LabelOverlayItem` (cached RGBA tiles; an edit recolours
only its dirty rectangle). The tools are small classes in :mod:`segstudio.gui.tools` (brush, eraser, flood
fill, polygon, lasso, superpixel brush, GrabCut) that turn the left-button press / move / release the canvas
forwards to the current one into ``segstudio.core`` paint ops; every gesture is one undo step in the
document's history, and heavy work (SLIC, GrabCut) runs in a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QLabel,
)

import shiboken6

from segstudio.core import IGNORE_INDEX, Document, DocumentEvent, Patch
from segstudio.gui.overlay import LabelOverlayItem, compose_rgba, premultiplied_argb32_lut
from segstudio.gui.qtutil import rgb_to_qimage
from segstudio.gui.tools import (
    SUPERPIXEL_PREVIEW_MAX_PIXELS,
    TOOL_BRUSH,
    TOOL_ERASER,
    TOOL_FILL,
    TOOL_GRABCUT,
    TOOL_LASSO,
    TOOL_POLYGON,
    TOOL_SUPERPIXEL,
    TOOLS,
    ShapeTool,
    StrokeTool,
    Tool,
    ToolJobs,
    make_tools,
)
from segstudio.postprocess.superpixels import Superpixels

log = logging.getLogger(__name__)


def _no_next() -> None:
    """The next image of a canvas without a project state: none."""
    return None

__all__ = [
    "Canvas", "LabelOverlayItem", "compose_rgba", "premultiplied_argb32_lut", "SUPERPIXEL_PREVIEW_MAX_PIXELS",
    "TOOLS", "TOOL_BRUSH", "TOOL_ERASER", "TOOL_FILL", "TOOL_GRABCUT", "TOOL_LASSO", "TOOL_POLYGON",
    "TOOL_SUPERPIXEL",
]


class Canvas(QGraphicsView):
    """Image + overlay view with the labelling tools.

    Tools (:data:`TOOLS`, classes in :mod:`segstudio.gui.tools`): ``brush``/``eraser`` (round brush),
    ``fill`` (flood fill), ``polygon`` (click vertices; Enter, a double-click or a click on the first vertex
    closes; Esc cancels; Backspace removes the last vertex), ``lasso`` (freehand, closes on release),
    ``superpixel`` (paints every SLIC superpixel the stroke touches), ``grabcut`` (drag a rectangle; GrabCut
    runs in a worker and adds the foreground to the current class).

    Attributes:
        doc: the shown document, or ``None``.
        tool: name of the current tool; assigning it switches tools like :meth:`set_tool`.
        tools: the tool instances by name; ``active_tool`` is the current one.
        current_class: class id the tools paint (checked against the document's classes before painting): the
            state's :attr:`~segstudio.gui.state.ProjectState.current_class` (assigning it calls
            :meth:`~segstudio.gui.state.ProjectState.set_current_class`); a canvas without a state keeps its own.
        brush_radius: brush radius in image pixels (1..256; set with :meth:`set_brush_radius`).
        polygon_rule: fill rule of polygon and lasso, ``"nonzero"`` or ``"evenodd"``.
        jobs: the tools' background jobs (:class:`~segstudio.gui.tools.ToolJobs`).
        state: the :class:`~segstudio.gui.state.ProjectState` this canvas shows (``None``: a canvas on its own,
            e.g. in tests); it runs the tools' jobs.
        next_image_provider: callable ``() -> Path | None`` giving the image that will be shown next, for the
            click tool's prefetch (:meth:`next_image_path`). Default: the state's
            :meth:`~segstudio.gui.state.ProjectState.next_path` (the next image of the file list; no state:
            always ``None``). A mode that moves through the images in another order sets its own while it is
            on and puts the previous one back when it ends (the review queue,
            :class:`~segstudio.gui.review.ReviewQueue`).

    Signals:
        edited(): a person changed the shown label map (stroke, fill, region, CRF, undo, redo). Emitted only by
            the canvas, from the shown document's own change events (:class:`~segstudio.core.DocumentEvent`).
        brushSizeChanged(int): radius in image pixels.
        opacityChanged(float): the overlay's opacity was set (:meth:`set_opacity`).
        navigate(int): arrow keys (next/previous image).
        status(str): a message for the status bar.
        hint(str): a tool's passing hint ("ready", "encoding…"): shown unless it would hide a recent message.
        superpixelsReady(): superpixels of the current image became available.
        grabcutDone(bool): a GrabCut job ended (True = its result was applied).

    Mouse: left button uses the current tool; middle or right drag pans; the wheel zooms about the cursor and
    Ctrl+drag resizes the brush (:class:`~segstudio.gui.canvas_controls.CanvasControls`, installed by the window).
    """

    edited = Signal()
    opacityChanged = Signal(float)
    brushSizeChanged = Signal(int)
    navigate = Signal(int)
    status = Signal(str)
    hint = Signal(str)
    superpixelsReady = Signal()
    grabcutDone = Signal(bool)

    _NAV_KEYS = {Qt.Key.Key_Right: 1, Qt.Key.Key_PageDown: 1, Qt.Key.Key_Left: -1, Qt.Key.Key_PageUp: -1}

    def __init__(self, parent=None, state=None) -> None:
        super().__init__(parent)
        self.state = state
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setMouseTracking(True)
        self.setBackgroundBrush(QBrush(QColor(40, 40, 40)))
        self.image_item = QGraphicsPixmapItem()
        self.overlay = LabelOverlayItem()
        self.overlay.setOpacity(0.5)
        self.overlay_on = True  # the user's "show overlay" choice (the class panel's check box sets it)
        self.sp_item = QGraphicsPixmapItem()  # superpixel boundaries while the superpixel tool is on
        self.sp_item.setZValue(5)
        self.sp_item.setOpacity(0.6)
        self.sp_item.hide()
        self.cursor_item = QGraphicsEllipseItem()
        self.cursor_item.setPen(QPen(QColor(255, 255, 255), 0))
        self.cursor_item.setZValue(10)
        self.cursor_item.hide()
        self.shape_item = QGraphicsPathItem()  # polygon / lasso in progress
        self.shape_item.setPen(QPen(QColor(255, 255, 0), 0))
        self.shape_item.setZValue(11)
        self.rect_item = QGraphicsRectItem()  # GrabCut rectangle
        self.rect_item.setPen(QPen(QColor(0, 255, 255), 0, Qt.PenStyle.DashLine))
        self.rect_item.setZValue(11)
        self.rect_item.hide()
        for it in (self.image_item, self.overlay, self.sp_item, self.cursor_item, self.shape_item, self.rect_item):
            self.scene().addItem(it)
        self.doc: Document | None = None  # the document this view shows (set_document); its events repaint it
        self.brush_radius = 8
        self._current_class = 0  # only a canvas without a state keeps its own current class
        self.polygon_rule = "nonzero"
        self._pan_from = None
        self._auto_fit = True  # keep the image fitted to the view until the user zooms
        self.next_image_provider: Callable[[], Path | None] = state.next_path if state is not None else _no_next
        self.jobs = ToolJobs(self, state.runner if state is not None else None)
        if state is None:  # with a state, its job runner reports failures (status bar, log, jobFailed)
            self.jobs.failed.connect(self.status)
            self.hint.connect(self.status)
        self.tools: dict[str, Tool] = make_tools(self)
        self.active_tool: Tool = self.tools[TOOL_BRUSH]
        self.notice = QLabel(self.viewport())  # a banner over the image (e.g. a deleted class's predictions)
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("QLabel { background: rgba(255, 243, 205, 230); color: #5c4400; padding: 3px 8px; }")
        self.notice.hide()
        if state is not None:
            state.classNotice.connect(self.set_notice)

    def set_notice(self, text: str) -> None:
        """Show ``text`` in a banner across the top of the image ('' hides it)."""
        self.notice.setText(text)
        self.notice.setVisible(bool(text))
        self._place_notice()

    def _place_notice(self) -> None:
        w = max(self.viewport().width() - 16, 50)
        self.notice.setFixedWidth(w)
        self.notice.adjustSize()
        self.notice.move(8, 8)

    @property
    def current_class(self) -> int:
        """The class id the tools paint (the state's, when there is one)."""
        return int(self.state.current_class) if self.state is not None else self._current_class

    @current_class.setter
    def current_class(self, c: int) -> None:
        if self.state is not None:
            if int(c) != self.state.current_class:
                self.state.set_current_class(c)
        else:
            self._current_class = int(c)

    # -- document -------------------------------------------------------------------------
    def set_document(self, doc: Document | None, fit: bool = True) -> None:
        """Show ``doc`` (``None``: nothing) and observe its change events (the overlay repaints from them). A
        stroke in progress becomes an undo step of the document it was painted on; an unclosed shape is dropped."""
        if self.doc is not None and self.doc is not doc:
            self.doc.unsubscribe(self._on_document_event)
        self.doc = doc
        self.active_tool.finish()
        if doc is None:
            self.image_item.setPixmap(QPixmap())
            self.overlay.set_labels(np.full((1, 1), IGNORE_INDEX, np.uint8))
            self.sp_item.hide()
            return
        doc.subscribe(self._on_document_event)
        self.image_item.setPixmap(QPixmap.fromImage(rgb_to_qimage(doc.image)))
        self.overlay.set_classes(doc.classes)
        self.overlay.set_labels(doc.labels)
        h, w = doc.shape
        self.scene().setSceneRect(QRectF(0, 0, w, h))
        if fit:
            self._auto_fit = True
            self.fitInView(QRectF(0, 0, w, h), Qt.AspectRatioMode.KeepAspectRatio)
        self.active_tool.activate(document_changed=True)
        for t in self.tools.values():
            if t is not self.active_tool:
                t.document_shown()

    def _on_document_event(self, event: DocumentEvent) -> None:
        """The shown document changed: repaint what changed; a person's edit (or undo / redo) is :attr:`edited`."""
        if not shiboken6.isValid(self):  # the view is gone (the document outlived it)
            event.doc.unsubscribe(self._on_document_event)
            return
        if event.doc is not self.doc:
            return
        if event.patch is not None:
            self.overlay.update_rect(event.doc.labels, *event.patch.rect)
        else:
            self.refresh_labels()
        if event.by_person:
            self.edited.emit()

    def next_image_path(self) -> Path | None:
        """Path of the image that will be shown next, as :attr:`next_image_provider` says: by default the one
        Next / Right would show (:meth:`ProjectState.next_path <segstudio.gui.state.ProjectState.next_path>`),
        in the review queue the queue's next one; ``None`` when there is none (last image, no state)."""
        return self.next_image_provider()

    def loaded_document(self, path) -> Document | None:
        """The project's already open document of ``path`` (never loads one), or ``None``."""
        return self.state.docs.get(path) if self.state is not None else None

    def refresh_labels(self) -> None:
        """Redraw the whole overlay from the document's label map."""
        if self.doc is not None:
            self.overlay.set_classes(self.doc.classes)
            self.overlay.set_labels(self.doc.labels)

    def refresh_patch(self, patch: Patch | None) -> None:
        """Redraw the rectangle of ``patch`` (already written into the shown label map)."""
        if patch is not None and self.doc is not None:
            self.overlay.update_rect(self.doc.labels, *patch.rect)

    def set_overlay_visible(self, on: bool) -> None:
        """Show or hide the label overlay (the user's choice, :attr:`overlay_on`; a preview may hide it meanwhile)."""
        self.overlay_on = bool(on)
        self.overlay.setVisible(self.overlay_on)

    def set_opacity(self, value: float) -> None:
        """Overlay opacity in [0, 1]; emits :attr:`opacityChanged` (previews drawn over the image follow it)."""
        self.overlay.setOpacity(value)
        self.opacityChanged.emit(float(value))

    def set_class_visible(self, class_id: int, visible: bool) -> None:
        """Show or hide one class in the overlay (the labels are untouched)."""
        self.overlay.set_class_visible(int(class_id), bool(visible))

    def set_outline(self, on: bool) -> None:
        """Outline mode: draw only class boundaries."""
        self.overlay.set_outline(on)
        self.status.emit(f"outline mode {'on' if on else 'off'}")

    def set_brush_radius(self, r: int) -> None:
        self.brush_radius = int(min(max(r, 1), 256))
        self.brushSizeChanged.emit(self.brush_radius)
        self._update_cursor(None)

    # -- tools ----------------------------------------------------------------------------------
    @property
    def tool(self) -> str:
        """Name of the current tool (one of :data:`TOOLS`); assigning switches like :meth:`set_tool`."""
        return self.active_tool.name

    @tool.setter
    def tool(self, tool: str) -> None:
        self.set_tool(tool)

    def set_tool(self, tool: str) -> None:
        """Switch tool (one of :data:`TOOLS`): a stroke in progress becomes an undo step, a shape in progress
        is dropped.

        Raises:
            ValueError: unknown tool name.
        """
        if tool not in self.tools:
            raise ValueError(f"unknown tool {tool!r}; tools are {TOOLS}")
        self.active_tool.deactivate()
        self.active_tool = self.tools[tool]
        self._update_cursor(None)
        if self.doc is not None:
            self.active_tool.activate()

    def _stroker(self) -> StrokeTool:
        t = self.active_tool
        return t if isinstance(t, StrokeTool) else self.tools[TOOL_BRUSH]  # type: ignore[return-value]

    def begin_stroke(self, y: float, x: float) -> None:
        """Start a stroke of the current brush/eraser/superpixel tool (the round brush with another tool on)
        at image coordinates ``(y, x)``."""
        self._stroker().press(y, x)

    def continue_stroke(self, y: float, x: float) -> None:
        self._stroker().move(y, x, True)

    def end_stroke(self) -> None:
        """Finish the stroke: all its segments become one undo step."""
        for t in self.tools.values():
            if isinstance(t, StrokeTool) and t.pending:
                t.finish()

    def fill_at(self, y: int, x: int) -> None:
        """Flood-fill the region under pixel ``(y, x)`` (with ``IGNORE_INDEX`` while the eraser is on)."""
        self.tools[TOOL_FILL].fill_at(y, x, self.active_tool.value())

    def _shape_tool(self) -> ShapeTool:
        t = self.active_tool
        return t if isinstance(t, ShapeTool) else self.tools[TOOL_POLYGON]  # type: ignore[return-value]

    def add_vertex(self, x: float, y: float) -> None:
        """Add a vertex at image coordinates ``(x, y)`` to the polygon/lasso in progress (switches to the
        polygon tool when another tool is on)."""
        if not isinstance(self.active_tool, ShapeTool):
            self.set_tool(TOOL_POLYGON)
        self._shape_tool().add_vertex(x, y)

    def remove_vertex(self) -> None:
        self._shape_tool().remove_vertex()

    def close_shape(self) -> Patch | None:
        """Fill the polygon/lasso in progress with the current class (one undo step) and end it."""
        return self.active_tool.close() if isinstance(self.active_tool, ShapeTool) else None

    def cancel_shape(self) -> None:
        """Drop a polygon, lasso or GrabCut rectangle in progress."""
        self.active_tool.cancel()

    @property
    def shape_points(self) -> list[tuple[float, float]]:
        """``(x, y)`` vertices of the polygon/lasso in progress (empty when none)."""
        t = self.active_tool
        return list(t.points) if isinstance(t, ShapeTool) else []

    def superpixels(self) -> Superpixels | None:
        """Superpixels of the current image, or ``None`` while they are not computed yet."""
        return self.tools[TOOL_SUPERPIXEL].superpixels()

    def ensure_superpixels(self) -> None:
        """Compute the current image's SLIC superpixels in a worker (once per image; cached)."""
        self.tools[TOOL_SUPERPIXEL].ensure()

    def grabcut(self, rect: tuple[int, int, int, int]) -> bool:
        """Run GrabCut on ``rect`` ``(x, y, w, h)`` in a worker; its foreground becomes the current class.

        Returns False (with a status message) when no image is open, the rectangle is too small or a
        GrabCut job is already running. The result is applied as one undo step to the document the job
        started on, whichever image is shown when it ends.
        """
        return self.tools[TOOL_GRABCUT].run(rect)

    @property
    def busy(self) -> bool:
        """True while a superpixel or GrabCut job runs."""
        return self.jobs.busy

    # -- undo ------------------------------------------------------------------------------------
    def _pending(self) -> bool:
        return any(t.pending for t in self.tools.values())

    def undo(self) -> None:
        """Undo the shown document's last edit (not while a gesture is pending); its event repaints."""
        if self.doc is not None and not self._pending():
            self.doc.undo()

    def redo(self) -> None:
        """Redo the shown document's last undone edit; its event repaints."""
        if self.doc is not None and not self._pending():
            self.doc.redo()

    # -- mouse ------------------------------------------------------------------------------
    def _image_pos(self, event) -> tuple[float, float]:
        p: QPointF = self.mapToScene(event.position().toPoint())
        return p.y() - 0.5, p.x() - 0.5

    def _update_cursor(self, pos: tuple[float, float] | None) -> None:
        if pos is None:
            pos = (self.cursor_item.rect().center().y() - 0.5, self.cursor_item.rect().center().x() - 0.5)
        r = self.brush_radius
        y, x = pos
        self.cursor_item.setRect(QRectF(x + 0.5 - r, y + 0.5 - r, 2 * r, 2 * r))
        self.cursor_item.setVisible(self.doc is not None and self.active_tool.round_cursor)

    def mousePressEvent(self, event) -> None:
        if event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton):
            self._pan_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if event.button() == Qt.MouseButton.LeftButton and self.doc is not None:
            self.active_tool.press(*self._image_pos(event))
            return
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.doc is not None:
            if self.active_tool.double_click(*self._image_pos(event)):
                return
        self.mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._pan_from is not None:
            d = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(d.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(d.y()))
            return
        pos = self._image_pos(event)
        self._update_cursor(pos)
        left = bool(event.buttons() & Qt.MouseButton.LeftButton)
        if self.doc is not None and self.active_tool.move(*pos, left):
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton):
            self._pan_from = None
            self.unsetCursor()
            return
        if event.button() == Qt.MouseButton.LeftButton and self.active_tool.release(*self._image_pos(event)):
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event) -> None:
        # QGraphicsView would scroll on arrow keys; in SegStudio they move between images.
        step = self._NAV_KEYS.get(event.key())
        if step is not None and event.modifiers() == Qt.KeyboardModifier.NoModifier:
            self.navigate.emit(step)
            return
        if self.active_tool.key(event.key()):
            return
        super().keyPressEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_notice()
        if self._auto_fit:
            self.zoom_fit()

    def zoom_fit(self) -> None:
        if self.doc is not None:
            self._auto_fit = True
            self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
