"""Labelling tools as small classes: each turns press / move / release on the canvas into ``segstudio.core``
paint ops on the shown :class:`~segstudio.core.Document`, one undo step per gesture.

The :class:`~segstudio.gui.canvas.Canvas` keeps one instance of each tool (:func:`make_tools`) and forwards
left-button mouse events, in image coordinates ``(y, x)`` (float pixels, pixel centres at integers), to the
current one. A tool reaches the canvas only through its public members: ``doc``, ``current_class``,
``brush_radius``, ``polygon_rule``, ``refresh_patch``, ``show_edit``, ``status``, the scene items
``shape_item`` / ``rect_item`` / ``sp_item``, ``jobs`` (:class:`ToolJobs`) and ``mapFromScene``.

Heavy work (SLIC superpixels, GrabCut, the click model's image encoding and its answers to clicks) runs in a
worker through :class:`ToolJobs`; its result is applied on the GUI thread.
"""

from __future__ import annotations

import logging
import hashlib
import math
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

import threading

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QPointF, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication, QImage, QPainterPath, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem

from segstudio.core import IGNORE_INDEX, Document, Patch, merge_patches
from segstudio.core.history import mask_bbox
from segstudio.core import paint as core_paint
from segstudio.gui.qtutil import collect_garbage_on_gui_thread
from segstudio.gui.workers import Job, start_job
from segstudio.postprocess.grabcut import grabcut_region
from segstudio.postprocess.superpixels import Superpixels

if TYPE_CHECKING:
    from segstudio.gui.canvas import Canvas

log = logging.getLogger(__name__)

TOOL_BRUSH = "brush"
TOOL_ERASER = "eraser"
TOOL_FILL = "fill"
TOOL_POLYGON = "polygon"
TOOL_LASSO = "lasso"
TOOL_SUPERPIXEL = "superpixel"
TOOL_GRABCUT = "grabcut"
TOOL_CLICK = "click"
TOOLS = (TOOL_BRUSH, TOOL_ERASER, TOOL_FILL, TOOL_POLYGON, TOOL_LASSO, TOOL_SUPERPIXEL, TOOL_GRABCUT, TOOL_CLICK)

#: Superpixel boundaries are drawn as a full-size RGBA image only up to this many pixels (memory).
SUPERPIXEL_PREVIEW_MAX_PIXELS = 4096 * 4096


class ToolJobs(QObject):
    """Runs the tools' background work off the GUI thread, at most one job per name.

    :meth:`start` runs ``work(job)`` in a worker; its return value is handed to ``on_result`` on the GUI
    thread (``job.result`` is connected to a bound slot of this GUI-thread object, so the call is queued),
    then ``on_done`` runs whether the work succeeded or not.

    With a project state (the window's canvas) every job goes through the state's one job runner,
    :meth:`ProjectState.start <segstudio.gui.state.ProjectState.start>`, in slot ``"tool:<name>"``
    (:data:`~segstudio.gui.state.TOOL_SLOT`): the state tracks it, and a failure — in the worker, or in
    applying its result on the GUI thread (:meth:`~segstudio.gui.state.ProjectState.report_failure`) —
    reaches the status bar, the log and ``jobFailed`` like any job's. Without one (a canvas on its own, e.g.
    in tests or benchmarks) the job runs on :func:`segstudio.gui.workers.start_job` with its thread owned by
    the application, and :attr:`failed` is the report. Starting a job turns Python's cyclic GC over to the
    GUI thread (:func:`~segstudio.gui.qtutil.collect_garbage_on_gui_thread`), as the main window does, so
    the canvas is safe on its own too.

    Args:
        parent: the canvas.
        state: the :class:`~segstudio.gui.state.ProjectState` whose runner starts the jobs, or ``None``.

    Signals:
        failed(str): a job, or the GUI-thread handling of its result, raised; the message names the job
            and the error (the traceback is logged). Emitted with or without a state.
    """

    failed = Signal(str)

    def __init__(self, parent: QObject, state=None) -> None:
        super().__init__(parent)
        self.state = state
        self._jobs: dict[str, tuple[Job, Callable | None, Callable | None]] = {}

    def running(self, name: str) -> bool:
        """True while the job ``name`` has not ended."""
        return name in self._jobs

    @property
    def busy(self) -> bool:
        """True while any job runs."""
        return bool(self._jobs)

    def start(self, name: str, work: Callable[[Job], object], on_result: Callable | None = None,
              on_done: Callable[[], None] | None = None) -> Job:
        """Start ``work`` in a worker as job ``name``.

        Raises:
            RuntimeError: a job of that name is still running (check :meth:`running` first).
        """
        if name in self._jobs:
            raise RuntimeError(f"job {name!r} is still running")
        collect_garbage_on_gui_thread()  # a worker must never run the cyclic GC on Qt wrappers (idempotent)

        def run(job: Job):
            try:
                job.emit_result(("result", name), work(job))
            finally:
                job.emit_result(("done", name), name)

        job = Job(name, run)
        job.result.connect(self._on_result)
        job.failed.connect(self.failed)
        self._jobs[name] = (job, on_result, on_done)
        if self.state is not None:
            from segstudio.gui.state import TOOL_SLOT

            self.state.start(job, TOOL_SLOT + name)  # tracked, and its failure reported, by the one runner
        else:
            # The thread belongs to the application, not to the canvas: closing the canvas while SLIC or
            # GrabCut runs must not destroy a running QThread (Qt aborts the process); the result of a job
            # whose canvas is gone is simply not delivered (the connection dies with this object).
            start_job(job, QCoreApplication.instance())
        return job

    @Slot(object, object)
    def _on_result(self, kind: tuple[str, str], payload) -> None:
        what, name = kind
        entry = self._jobs.get(name)
        if entry is None:
            return
        _, on_result, on_done = entry
        if what == "done":
            del self._jobs[name]
        callback = on_result if what == "result" else on_done
        if callback is None:
            return
        try:
            callback(payload) if what == "result" else callback()
        except Exception as exc:  # applying a result must never fail silently
            log.exception("%s: handling its %s failed", name, what)
            msg = f"{name} failed: {exc}"
            if self.state is not None:
                self.state.report_failure(name, msg)
            self.failed.emit(msg)


class Tool:
    """A labelling tool: left-button press / move / release in image coordinates ``(y, x)``.

    Subclasses override the event methods they need. A gesture's edit becomes exactly one undo step in
    the document's history, and the canvas is told through :meth:`Canvas.show_edit`.

    Attributes:
        name: one of :data:`TOOLS`.
        round_cursor: the canvas shows the brush-sized round cursor while this tool is on.
    """

    name = ""
    round_cursor = False

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas

    # -- what to paint ----------------------------------------------------------------------
    def value(self) -> int:
        """The label value this tool writes: the canvas's current class id."""
        return int(self.canvas.current_class)

    def check_value(self, doc: Document, value: int) -> bool:
        """True if ``value`` is ``IGNORE_INDEX`` or a class id of ``doc``; else says why on the status bar
        (e.g. a class list edited under a stale current class) and nothing is painted."""
        n = doc.classes.num_classes
        if value == IGNORE_INDEX or 0 <= value < n:
            return True
        self.canvas.status.emit(f"class id {value} is not one of this image's classes 0..{n - 1}; pick a class first")
        return False

    # -- events -----------------------------------------------------------------------------
    def press(self, y: float, x: float) -> None:
        """Left button pressed at ``(y, x)``."""

    def move(self, y: float, x: float, left_down: bool) -> bool:
        """Mouse moved to ``(y, x)``; ``left_down``: the left button is held. True if the move was used
        (the view then does not handle it)."""
        return False

    def release(self, y: float, x: float) -> bool:
        """Left button released at ``(y, x)``; True if the release was used."""
        return False

    def double_click(self, y: float, x: float) -> bool:
        """Left double-click; False lets the canvas treat it as a press."""
        return False

    def key(self, key: int) -> bool:
        """A key the canvas did not use (``Qt.Key``); True if the tool used it."""
        return False

    # -- life cycle -------------------------------------------------------------------------
    @property
    def pending(self) -> bool:
        """True while a gesture has painted pixels not yet recorded as an undo step (undo waits)."""
        return False

    def activate(self, document_changed: bool = False) -> None:
        """The tool became the current one (or, with ``document_changed``, the shown document changed while it is)."""

    def document_shown(self) -> None:
        """The shown document changed while another tool is the current one (background work may start)."""

    def finish(self) -> None:
        """End any gesture in progress: painted pixels become one undo step, an unclosed shape is dropped.
        Called before a tool switch and after a document switch."""
        self.cancel()

    def cancel(self) -> None:
        """Drop an unfinished shape or rectangle (Esc); painted strokes are not affected."""

    def deactivate(self) -> None:
        """The tool stops being the current one."""
        self.finish()


class StrokeTool(Tool):
    """Round-brush stroke: every mouse move paints a capsule of ``brush_radius`` from the last point
    (:func:`segstudio.core.paint.paint_stroke`) straight into the label map for live feedback; on release
    the segments are merged (:func:`segstudio.core.merge_patches`) into one undo step of the document the
    stroke started on."""

    round_cursor = True
    confirms = True  # every pixel under the stroke becomes the person's, changed or not (the eraser: only changed ones)

    def __init__(self, canvas: Canvas) -> None:
        super().__init__(canvas)
        self._doc: Document | None = None
        self._labels: np.ndarray | None = None  # the label map the stroke paints into
        self._patches: list[Patch] = []
        self._touched: np.ndarray | None = None  # bool (H, W): every pixel under the stroke (brush-to-confirm)
        self._last: tuple[float, float] = (0.0, 0.0)

    @property
    def pending(self) -> bool:
        return self._doc is not None

    def can_start(self, doc: Document) -> bool:
        """Whether a stroke may start now (the value is valid)."""
        return self.check_value(doc, self.value())

    def press(self, y: float, x: float) -> None:
        doc = self.canvas.doc
        if doc is None:
            return
        if self._doc is not None:  # a press without the previous release: close that stroke first
            self.finish()
        if not self.can_start(doc):
            return
        self._doc, self._labels, self._patches, self._last = doc, doc.labels, [], (y, x)
        self._touched = np.zeros(doc.shape, dtype=bool)
        self._paint_to(y, x)

    def move(self, y: float, x: float, left_down: bool) -> bool:
        if self._doc is None:
            return False
        self._paint_to(y, x)
        return True

    def release(self, y: float, x: float) -> bool:
        if self._doc is None:
            return False
        self.finish()
        return True

    def _paint_to(self, y: float, x: float) -> None:
        if self._doc.labels is not self._labels:  # labels replaced mid-stroke (prediction, class edit)
            return
        res = core_paint.stroke_mask(self._labels.shape, [self._last, (y, x)], self.canvas.brush_radius)
        self._last = (y, x)
        if res is None:
            return
        y0, x0, mask = res
        self._touch(y0, x0, mask)
        self._add(core_paint.paint_mask(self._labels, y0, x0, mask, self.value()))

    def _touch(self, y0: int, x0: int, mask: np.ndarray) -> None:
        """Remember that the stroke went over ``mask`` (at ``(y0, x0)``): those pixels become the person's."""
        h, w = mask.shape
        self._touched[y0 : y0 + h, x0 : x0 + w] |= mask

    def _add(self, patch: Patch | None) -> None:
        if patch is not None:
            self._patches.append(patch)
            if self._doc is self.canvas.doc:
                self.canvas.refresh_patch(patch)

    def finish(self) -> None:
        doc, labels, patches, touched = self._doc, self._labels, self._patches, self._touched
        self._doc, self._labels, self._patches, self._touched = None, None, [], None
        if doc is None:
            return
        if doc.labels is not labels:  # the map it painted was replaced: its pixels are gone, nothing to record
            log.info("stroke on %s dropped: its label map was replaced while painting", doc.path)
            return
        box = None
        if touched is not None and self.confirms and touched.any():
            r0, r1, c0, c1 = mask_bbox(touched)
            box = (r0, c0, touched[r0:r1, c0:c1])
        # Every pixel under the stroke is the person's now, changed or not (a stroke inside a region the model
        # already predicted as this class confirms it): one undo step even when no value changed.
        patch = doc.apply_patch(merge_patches(labels, patches), touched=box)
        if patch is not None:
            self.canvas.show_edit(patch, doc)


class BrushTool(StrokeTool):
    """Paints the current class with a round brush (radius ``canvas.brush_radius`` px)."""

    name = TOOL_BRUSH


class EraserTool(StrokeTool):
    """Paints ``IGNORE_INDEX`` (unlabelled) with a round brush."""

    name = TOOL_ERASER
    confirms = False

    def value(self) -> int:
        return IGNORE_INDEX


class SuperpixelTool(StrokeTool):
    """Paints every SLIC superpixel (Achanta et al., "SLIC Superpixels Compared to State-of-the-Art
    Superpixel Methods", TPAMI 2012) the round brush touches, each one whole and once per stroke.

    The superpixels of an image are computed once, in a worker, when the tool is switched on (or an image
    is shown while it is on) and kept for the last :attr:`CACHE` images; their boundaries are drawn in
    ``canvas.sp_item`` for images up to :data:`SUPERPIXEL_PREVIEW_MAX_PIXELS` pixels.
    """

    name = TOOL_SUPERPIXEL
    CACHE = 4  # images whose superpixels are kept

    def __init__(self, canvas: Canvas) -> None:
        super().__init__(canvas)
        self._painted: set[int] = set()
        self._cache: OrderedDict[tuple, Superpixels] = OrderedDict()
        self._preview: dict[tuple, QPixmap] = {}

    @staticmethod
    def cache_key(doc: Document | None) -> tuple | None:
        """Cache key of a document's image (path, shape and the image array's identity)."""
        return None if doc is None else (str(doc.path), doc.shape, id(doc.image))

    def superpixels(self, doc: Document | None = None) -> Superpixels | None:
        """Superpixels of ``doc`` (default: the shown one), or ``None`` while not computed."""
        key = self.cache_key(doc or self.canvas.doc)
        return self._cache.get(key) if key is not None else None

    def ensure(self) -> None:
        """Start computing the shown image's superpixels in a worker, unless cached or already running."""
        doc = self.canvas.doc
        key = self.cache_key(doc)
        name = f"superpixels:{key}"
        if key is None or key in self._cache or self.canvas.jobs.running(name):
            return
        image = doc.image
        preview = image.shape[0] * image.shape[1] <= SUPERPIXEL_PREVIEW_MAX_PIXELS

        def work(job: Job):
            from skimage.segmentation import find_boundaries

            job.report(0, 1, f"computing superpixels of {key[0]}")
            sp = Superpixels.compute(image)
            rgba = None
            if preview:
                edge = find_boundaries(sp.segments, mode="inner")
                rgba = np.zeros(edge.shape + (4,), dtype=np.uint8)
                rgba[edge] = (255, 255, 255, 255)
            return key, sp, rgba

        self.canvas.jobs.start(name, work, lambda payload: self._on_result(*payload))
        self.canvas.status.emit("computing superpixels…")

    def _on_result(self, key: tuple, sp: Superpixels, rgba: np.ndarray | None) -> None:
        self._cache[key] = sp
        while len(self._cache) > self.CACHE:
            old, _ = self._cache.popitem(last=False)
            self._preview.pop(old, None)
        if rgba is not None:
            h, w = rgba.shape[:2]
            self._preview[key] = QPixmap.fromImage(QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy())
        if key == self.cache_key(self.canvas.doc):
            self.sync_view()
            self.canvas.status.emit(f"superpixels ready: {sp.count} segments")
            self.canvas.superpixelsReady.emit()

    def sync_view(self) -> None:
        """Show the shown image's superpixel boundaries while this tool is on; hide them otherwise."""
        item = self.canvas.sp_item
        pm = self._preview.get(self.cache_key(self.canvas.doc))
        on = self.canvas.tool == self.name and pm is not None
        if on:
            item.setPixmap(pm)
        item.setVisible(on)

    def activate(self, document_changed: bool = False) -> None:
        self.sync_view()
        self.ensure()

    def deactivate(self) -> None:
        super().deactivate()
        self.canvas.sp_item.hide()

    def can_start(self, doc: Document) -> bool:
        if self.superpixels(doc) is None:
            self.ensure()
            self.canvas.status.emit("superpixels are still being computed for this image; try again in a moment")
            return False
        self._painted = set()
        return super().can_start(doc)

    def _paint_to(self, y: float, x: float) -> None:
        doc = self._doc
        if doc.labels is not self._labels:
            return
        sp = self.superpixels(doc)
        res = core_paint.stroke_mask(doc.shape, [self._last, (y, x)], self.canvas.brush_radius)
        self._last = (y, x)
        if res is None or sp is None:
            return
        y0, x0, mask = res
        for seg_id in sp.ids_in(y0, x0, mask):
            if int(seg_id) in self._painted:
                continue
            self._painted.add(int(seg_id))
            sy, sx, smask = sp.region(int(seg_id))
            self._touch(sy, sx, smask)
            self._add(core_paint.paint_mask(doc.labels, sy, sx, smask, self.value()))


class FillTool(Tool):
    """Flood fill (4-connected, :func:`segstudio.core.paint.flood_fill`) of the region under a click."""

    name = TOOL_FILL

    def fill_at(self, y: int, x: int, value: int | None = None) -> Patch | None:
        """Fill the region under pixel ``(y, x)`` with ``value`` (default :meth:`value`); one undo step.
        Returns the patch, or ``None`` when outside the image or nothing changed."""
        doc = self.canvas.doc
        value = self.value() if value is None else int(value)
        if doc is None or not self.check_value(doc, value):
            return None
        h, w = doc.shape
        if not (0 <= y < h and 0 <= x < w):
            return None
        patch = doc.fill(y, x, value)
        self.canvas.show_edit(patch, doc)
        return patch

    def press(self, y: float, x: float) -> None:
        self.fill_at(int(round(y)), int(round(x)))


class ShapeTool(Tool):
    """A closed shape filled with the current class on close (:meth:`Document.polygon`, rule
    ``canvas.polygon_rule``); drawn in progress in ``canvas.shape_item``."""

    def __init__(self, canvas: Canvas) -> None:
        super().__init__(canvas)
        self.points: list[tuple[float, float]] = []  # (x, y) vertices
        self.hover: tuple[float, float] | None = None  # (x, y) of the rubber-band end (polygon)

    def add_vertex(self, x: float, y: float) -> None:
        """Add vertex ``(x, y)`` (image coordinates); a repeat of the last one is ignored."""
        if self.canvas.doc is None:
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
        doc = self.canvas.doc
        if doc is None or len(pts) < 3:
            if pts:
                self.canvas.status.emit("a polygon needs at least 3 points")
            return None
        value = self.value()
        if not self.check_value(doc, value):
            return None
        patch = doc.polygon(np.asarray(pts, dtype=np.float64), value, self.canvas.polygon_rule)
        self.canvas.show_edit(patch, doc)
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
        self.canvas.shape_item.setPath(path)


class PolygonTool(ShapeTool):
    """Click vertices; a click on the first vertex (within 8 screen px), a double-click or
    ``Canvas.close_shape`` (Enter) closes; Backspace removes the last vertex; Esc cancels."""

    name = TOOL_POLYGON

    def _near_first_vertex(self, x: float, y: float) -> bool:
        if len(self.points) < 3:
            return False
        fx, fy = self.points[0]
        a = self.canvas.mapFromScene(QPointF(fx, fy))
        b = self.canvas.mapFromScene(QPointF(x, y))
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

    name = TOOL_LASSO

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
    current class, one undo step on the document it started on. ``canvas.grabcutDone(bool)`` reports the
    end of each job (True = its result changed the labels)."""

    name = TOOL_GRABCUT
    JOB = "grabcut"

    def __init__(self, canvas: Canvas) -> None:
        super().__init__(canvas)
        self._from: tuple[float, float] | None = None  # (y, x) where the drag started
        self._applied = False

    def _show_rect(self, y: float, x: float) -> None:
        fy, fx = self._from
        self.canvas.rect_item.setRect(QRectF(QPointF(fx + 0.5, fy + 0.5), QPointF(x + 0.5, y + 0.5)).normalized())
        self.canvas.rect_item.show()

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
        self.canvas.rect_item.hide()

    def run(self, rect: tuple[int, int, int, int]) -> bool:
        """Run GrabCut on ``rect`` ``(x, y, w, h)`` (pixels) of the shown image in a worker.

        Returns False (with a status message) when no image is shown, the rectangle overlaps the image by
        less than 4 px a side, the current class is not valid, or a GrabCut job is already running.
        """
        doc = self.canvas.doc
        if doc is None:
            return False
        if self.canvas.jobs.running(self.JOB):
            self.canvas.status.emit("GrabCut is still running")
            return False
        x, y, w, h = (int(round(v)) for v in rect)
        H, W = doc.shape
        if min(x + w, W) - max(x, 0) < 4 or min(y + h, H) - max(y, 0) < 4:
            self.canvas.status.emit("drag a larger rectangle around the object for GrabCut")
            return False
        class_id = self.value()
        if not self.check_value(doc, class_id):
            return False
        image, labels = doc.image, doc.labels.copy()

        def work(job: Job):
            job.report(0, 1, "GrabCut…")
            return grabcut_region(image, labels, (x, y, w, h), class_id)

        self._applied = False
        self.canvas.jobs.start(self.JOB, work, lambda mask: self._on_result(doc, class_id, mask), self._on_done)
        self.canvas.status.emit(f"GrabCut running on {w}x{h} px…")
        return True

    def _on_result(self, doc: Document, class_id: int, mask: np.ndarray) -> None:
        if class_id >= doc.classes.num_classes:  # the classes were edited while GrabCut ran
            self.canvas.status.emit(f"GrabCut result dropped: class id {class_id} no longer exists")
            return
        patch = doc.apply_region(mask, class_id)
        self._applied = patch is not None
        self.canvas.show_edit(patch, doc)
        self.canvas.status.emit(f"GrabCut: {int(mask.sum())} px → class {class_id + 1}")

    def _on_done(self) -> None:
        applied, self._applied = self._applied, False
        self.canvas.grabcutDone.emit(applied)


class _ClickToolFilter(QObject):
    """Routes to a :class:`ClickTool`, while it is the canvas's tool, what the canvas does not forward to tools:
    right-button presses on the viewport (negative clicks; the canvas would pan) and Enter / Backspace while
    clicks are pending (the window's "Close polygon" shortcut would take Enter first)."""

    _KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Backspace)

    def __init__(self, tool: ClickTool) -> None:
        super().__init__(tool.canvas)
        self.tool = tool

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt name)
        tool, cv = self.tool, self.tool.canvas
        if cv.active_tool is not tool or cv.doc is None:
            return False
        t = event.type()
        if t in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease, QEvent.Type.MouseButtonDblClick) \
                and event.button() == Qt.MouseButton.RightButton:
            if t != QEvent.Type.MouseButtonRelease:
                p = cv.mapToScene(event.position().toPoint())
                tool.add_click(p.y() - 0.5, p.x() - 0.5, positive=False)
            return True
        if t == QEvent.Type.ShortcutOverride and event.key() in self._KEYS and tool.clicks:
            event.accept()  # deliver it as a key press to the canvas (→ ClickTool.key), not to a shortcut
            return True
        return False


_CLICK_MODEL_LOCK = threading.Lock()
_CLICK_MODEL: dict[str, object] = {}


def shared_click_model(path=None):
    """The click model (:func:`segstudio.engine.interactive.load_click_model`, default: the shipped one),
    loaded once per process and shared by every canvas; thread-safe (called from workers)."""
    from segstudio.engine.click.session import default_click_model_path, load_click_model

    key = str(path or default_click_model_path())
    with _CLICK_MODEL_LOCK:
        if key not in _CLICK_MODEL:
            _CLICK_MODEL[key] = load_click_model(key)[0]
        return _CLICK_MODEL[key]


def image_key(path, image: np.ndarray) -> tuple:
    """Cache key of an image's click-model encoding: ``(str(path), shape, SHA-1 of the pixels)``.

    Keyed by content, not by file name or array identity: an image prefetched from disk and the same file
    later opened as a :class:`~segstudio.core.Document` share the key, while a file edited or replaced in
    between gets a new one (its old encoding is never served). Hashing costs about 2 ms per megapixel.

    Args:
        path: the image's path (any ``os.PathLike`` or str).
        image: uint8 (H, W, 3) RGB.
    """
    data = memoryview(np.ascontiguousarray(image)).cast("B")
    return str(path), tuple(image.shape), hashlib.sha1(data, usedforsecurity=False).hexdigest()


def connected_to_clicks(mask: np.ndarray, clicks) -> np.ndarray:
    """Keep the parts of a click model's ``mask`` (bool (H, W)) that hold a positive click (8-connected): specks far
    from the clicks are dropped. ``clicks``: objects with ``y``, ``x`` and ``positive``."""
    import cv2

    pos = [(c.y, c.x) for c in clicks if c.positive and 0 <= c.y < mask.shape[0] and 0 <= c.x < mask.shape[1]]
    if not mask.any() or not pos:
        return mask
    _, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    keep = {int(comp[y, x]) for y, x in pos if mask[y, x]}
    return np.isin(comp, list(keep)) & mask if keep else np.zeros_like(mask)


class ClickTool(Tool):
    """Click to segment: left click adds a positive click (on the object), right click (or Shift + left
    click) a negative one; the class-agnostic click model (:mod:`segstudio.models.clicknet`, trained as in
    RITM, Sofiiuk et al., ICIP 2022) shows the object mask after each click; Enter writes it into the
    current class as one undo step; Backspace removes the last click; Esc drops them all.

    The image is encoded once, in a worker, when the tool is switched on or an image is shown while it is
    on (:class:`segstudio.engine.interactive.ClickSession`); each click then only runs the light decoder,
    also in a worker. The previous mask is fed back with every click. When the first click falls on pixels
    already of the current class (e.g. a prediction), that region is the starting mask, so clicks correct it;
    its pixels the final mask drops become unlabelled on Enter.

    **Prefetch.** Once the tool has been switched on in this canvas (:attr:`used`), every image shown is
    encoded in a worker even while another tool is on, and once the shown image's encoding is ready the
    *next* image — the one Next / Right would open (:meth:`Canvas.next_image_path`, i.e. the project state's
    :meth:`~segstudio.gui.state.ProjectState.next_path`) — is read and encoded in a worker too, so opening
    it needs no new encode. A canvas on which the tool was never switched on encodes nothing. Encodings are
    kept in an LRU cache of :attr:`CACHE` images (previous, current, next) keyed by :func:`image_key` (path,
    shape and pixel hash: an edited or replaced file is encoded anew, never served stale).

    Attributes:
        clicks: the clicks of the object in progress.
        mask: bool (H, W) current object mask, or ``None`` before the first answer.
        model_path: weights to load (``None``: the shipped model).
        used: the tool has been switched on (with an image shown) on this canvas.
        encodes: how many images this tool has encoded (shown + prefetched).
        hits: how many times a shown image's encoding was found in the cache (prefetched or kept).
    """

    name = TOOL_CLICK
    CACHE = 3
    JOB_PREDICT = "click:predict"
    JOB_PREFETCH = "click:prefetch"

    def __init__(self, canvas: Canvas) -> None:
        super().__init__(canvas)
        self.clicks: list = []
        self.mask: np.ndarray | None = None
        self.model_path = None
        self.used = False
        self.encodes = 0
        self.hits = 0
        self._doc: Document | None = None
        self._base: np.ndarray | None = None  # the existing region the clicks correct
        self._sessions: OrderedDict[tuple, object] = OrderedDict()
        self._announce = False  # say "ready" when the encoding the person waits for arrives
        self._keys: dict[int, tuple[weakref.ref, tuple]] = {}  # id(image) -> (weak image, image_key)
        self._prefetched: dict[str, tuple[tuple, tuple]] = {}  # path -> (file stat, image_key) of prefetches
        self._prefetch_again = False
        self._prefetch_path = None
        self._hit_doc: Document | None = None
        self._dirty = False
        self._item: QGraphicsPixmapItem | None = None
        self._filter = _ClickToolFilter(self)
        canvas.viewport().installEventFilter(self._filter)
        canvas.installEventFilter(self._filter)

    # -- sessions ---------------------------------------------------------------------------
    def cache_key(self, doc: Document | None) -> tuple | None:
        """:func:`image_key` of ``doc``'s image (hashed once per image array), or ``None`` for no document."""
        if doc is None:
            return None
        image = doc.image
        entry = self._keys.get(id(image))
        if entry is not None and entry[0]() is image:
            return entry[1]
        key = image_key(doc.path, image)
        self._keys = {i: e for i, e in self._keys.items() if e[0]() is not None}  # drop entries of freed images
        self._keys[id(image)] = (weakref.ref(image), key)
        return key

    def session(self, doc: Document | None = None):
        """The encoded :class:`~segstudio.engine.interactive.ClickSession` of ``doc`` (default: the shown
        one), or ``None`` while it is being computed."""
        k = self.cache_key(doc or self.canvas.doc)
        return self._sessions.get(k) if k is not None else None

    def _store(self, k: tuple, session) -> None:
        self._sessions[k] = session
        self._sessions.move_to_end(k)
        while len(self._sessions) > self.CACHE:
            self._sessions.popitem(last=False)

    def ensure(self, quiet: bool = False) -> None:
        """Start encoding the shown image in a worker, unless cached or already running; once it is encoded,
        prefetch the next image (:meth:`prefetch`). ``quiet``: no status-bar message (tool not on)."""
        doc = self.canvas.doc
        k = self.cache_key(doc)
        if k is None:
            return
        if k in self._sessions:
            self._sessions.move_to_end(k)  # the shown image's encoding is the last to be evicted
            if doc is not self._hit_doc:
                self._hit_doc = doc
                self.hits += 1
            self.prefetch()
            return
        name = f"click:encode:{k}"
        if self.canvas.jobs.running(name):
            return
        if self.canvas.jobs.running(self.JOB_PREFETCH) and self._prefetch_path == doc.path:
            if not quiet:  # being prefetched: its end hands the encoding over (or encodes anew if the file changed)
                self._announce = True
                self.canvas.hint.emit("click-to-segment: encoding the image…")
            return
        image, path = doc.image, self.model_path

        def work(job: Job):
            from segstudio.engine.click.session import ClickSession

            job.report(0, 1, "encoding the image for click-to-segment")
            return k, ClickSession(shared_click_model(path), image)

        self.canvas.jobs.start(name, work, lambda payload: self._on_session(*payload))
        if not quiet:
            self._announce = True
            self.canvas.hint.emit("click-to-segment: encoding the image…")

    def _on_session(self, k: tuple, session) -> None:
        self.encodes += 1
        self._store(k, session)
        if self._ready(k):
            self.prefetch()

    def _ready(self, k: tuple) -> bool:
        """An encoding ``k`` arrived: when it is the shown image's, say so and answer pending clicks (True)."""
        if k != self.cache_key(self.canvas.doc):
            return False
        self._hit_doc = self.canvas.doc
        if self.canvas.active_tool is self and self._announce:  # only when the person is waiting for it
            self._announce = False
            self.canvas.hint.emit("click-to-segment ready: left click = object, right click = not object, Enter = apply")
        if self.clicks:
            self._request()
        return True

    def prefetch(self) -> None:
        """Encode the next image (:meth:`Canvas.next_image_path`) in a worker, once the tool has been
        used and the shown image is encoded; nothing when there is no next image, its encoding is cached,
        or a prefetch runs (that one checks again when it ends). The file is read and hashed
        (:func:`image_key`) in the worker; an image the project already has open is used as it is. An
        unreadable file is skipped quietly (opening it reports why)."""
        if not self.used:
            return
        if self.canvas.jobs.running(self.JOB_PREFETCH):
            self._prefetch_again = True
            return
        path = self.canvas.next_image_path()
        current = self.cache_key(self.canvas.doc)
        if path is None or current is None or current not in self._sessions:
            return
        doc = self.canvas.loaded_document(path)
        if doc is not None:
            stat, key, image = None, self.cache_key(doc), doc.image
            if key in self._sessions:
                return
        else:
            try:
                st = path.stat()
            except OSError:
                return  # gone: opening it will say why
            stat, key, image = (st.st_mtime_ns, st.st_size), None, None
            seen = self._prefetched.get(str(path))
            if seen is not None and seen[0] == stat and seen[1] in self._sessions:
                return
        known, model_path = set(self._sessions), self.model_path

        def work(job: Job):
            from segstudio.engine.click.session import ClickSession
            from segstudio.io import ImageReadError, read_image

            job.report(0, 1, f"click-to-segment: prefetching {path.name}")
            try:
                img = image if image is not None else read_image(path)
            except ImageReadError as exc:  # opening that image will say so; a prefetch stays quiet
                log.info("click-to-segment: not prefetching %s: %s", path, exc)
                return None, None
            k = key if key is not None else image_key(path, img)
            if k in known:
                return k, None
            return k, ClickSession(shared_click_model(model_path), img)

        def on_result(payload) -> None:
            k, session = payload
            if k is None:
                return
            if stat is not None:
                self._prefetched = {str(path): (stat, k)}
            if session is not None:
                self.encodes += 1
                self._store(k, session)
                log.debug("click-to-segment: prefetched %s", path)
                if self._ready(k):  # the user already moved to it: now prefetch the one after it
                    self._prefetch_again = True

        def on_done() -> None:
            self._prefetch_path = None
            doc = self.canvas.doc
            if doc is not None and self.cache_key(doc) not in self._sessions:
                self.ensure(quiet=self.canvas.active_tool is not self)  # moved on to an image it did not cover
            elif self._prefetch_again:
                self._prefetch_again = False
                self.prefetch()

        self._prefetch_again = False
        self._prefetch_path = path
        self.canvas.jobs.start(self.JOB_PREFETCH, work, on_result, on_done)

    # -- clicks -----------------------------------------------------------------------------
    def press(self, y: float, x: float) -> None:
        shift = bool(QGuiApplication.keyboardModifiers() & Qt.KeyboardModifier.ShiftModifier)
        self.add_click(y, x, positive=not shift)

    def add_click(self, y: float, x: float, positive: bool = True) -> bool:
        """Add a click at image position ``(y, x)`` (float px, pixel centres at integers) and ask the model.

        Returns False (with a status message) outside the image or with no image shown.
        """
        from segstudio.engine.click.protocol import Click

        doc = self.canvas.doc
        if doc is None:
            return False
        iy, ix = int(round(y)), int(round(x))
        h, w = doc.shape
        if not (0 <= iy < h and 0 <= ix < w):
            return False
        if doc is not self._doc:
            self.cancel()
            self._doc = doc
        if not self.clicks and positive:
            value = self.value()
            if 0 <= value < doc.classes.num_classes and doc.labels[iy, ix] == value:
                import cv2

                _, comp = cv2.connectedComponents((doc.labels == value).astype(np.uint8), connectivity=8)
                self._base = comp == comp[iy, ix]
                self.mask = self._base.copy()
        self.clicks.append(Click(iy, ix, bool(positive)))
        self._request()
        self._show()
        return True

    def _request(self) -> None:
        """Run the decoder for the current clicks in a worker (once the image is encoded); a click that
        arrives while it runs is answered right after."""
        doc = self._doc
        session = self.session(doc)
        if session is None:
            self.ensure()
            return
        if self.canvas.jobs.running(self.JOB_PREDICT):
            self._dirty = True
            return
        clicks, prev = list(self.clicks), (None if self.mask is None else self.mask.copy())
        self._dirty = False

        def work(job: Job):
            return session.predict(clicks, prev)

        self.canvas.jobs.start(self.JOB_PREDICT, work, lambda m: self._on_mask(doc, clicks, m), self._on_done)

    def _on_mask(self, doc: Document, clicks: list, mask: np.ndarray) -> None:
        if doc is not self._doc or clicks != self.clicks[: len(clicks)]:
            return  # the clicks were dropped or belong to another image
        self.mask = mask = connected_to_clicks(mask, clicks)
        self._show()
        self.canvas.status.emit(f"click-to-segment: {int(mask.sum())} px from {len(clicks)} click(s); Enter applies")

    def _on_done(self) -> None:
        if self._dirty and self.clicks:
            self._request()

    @property
    def busy(self) -> bool:
        """True while the answer to the last click is not shown yet."""
        return bool(self.clicks) and (self._dirty or self.canvas.jobs.running(self.JOB_PREDICT) or self.session(self._doc) is None)

    def commit(self) -> Patch | None:
        """Write the mask into the current class as one undo step (pixels of the corrected starting region
        it drops become unlabelled) and end the object. Returns the patch, or ``None``."""
        doc, mask, base = self._doc, self.mask, self._base
        if doc is None or mask is None or doc is not self.canvas.doc:
            self.canvas.status.emit("click on the object first (and wait for its mask)")
            return None
        value = self.value()
        if not self.check_value(doc, value):
            return None
        from segstudio.core.history import make_patch

        region = mask if base is None else (mask | base)
        self.cancel()
        if not region.any():
            return None
        r0, r1 = np.flatnonzero(region.any(1))[[0, -1]]
        c0, c1 = np.flatnonzero(region.any(0))[[0, -1]]
        after = doc.labels[r0 : r1 + 1, c0 : c1 + 1].copy()
        if base is not None:
            after[base[r0 : r1 + 1, c0 : c1 + 1] & ~mask[r0 : r1 + 1, c0 : c1 + 1]] = IGNORE_INDEX
        after[mask[r0 : r1 + 1, c0 : c1 + 1]] = value
        footprint = (int(r0), int(c0), region[r0 : r1 + 1, c0 : c1 + 1])  # confirmed, changed or not
        patch = doc.apply_patch(make_patch(doc.labels, int(r0), int(c0), after), touched=footprint)
        self.canvas.show_edit(patch, doc)
        return patch

    def undo_click(self) -> None:
        """Remove the last click (the mask is recomputed; with no click left everything is dropped)."""
        if not self.clicks:
            return
        self.clicks.pop()
        if not self.clicks:
            self.cancel()
            return
        self.mask = None if self._base is None else self._base.copy()
        self._request()
        self._show()

    def key(self, key: int) -> bool:  # type: ignore[override]
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.clicks:
            self.commit()
            return True
        if key == Qt.Key.Key_Backspace and self.clicks:
            self.undo_click()
            return True
        return False

    # -- view -------------------------------------------------------------------------------
    def _show(self) -> None:
        """Draw the mask (current class colour, half transparent) and the clicks (green +, red −)."""
        if self._item is None:
            self._item = QGraphicsPixmapItem()
            self._item.setZValue(50)
            self.canvas.scene().addItem(self._item)
        doc = self._doc
        if doc is None or not self.clicks or doc is not self.canvas.doc:
            self._item.hide()
            return
        h, w = doc.shape
        rgba = np.zeros((h, w, 4), np.uint8)
        if self.mask is not None:
            v = self.value()
            color = doc.classes.colors[v] if 0 <= v < doc.classes.num_classes else (255, 255, 0)
            rgba[self.mask] = (*color, 140)
        r = max(2, int(round(3 / max(self.canvas.transform().m11(), 1e-3))))
        for c in self.clicks:
            rgba[max(c.y - r, 0) : c.y + r + 1, max(c.x - r, 0) : c.x + r + 1] = (0, 220, 0, 255) if c.positive else (230, 0, 0, 255)
        self._item.setPixmap(QPixmap.fromImage(QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()))
        self._item.show()

    # -- life cycle -------------------------------------------------------------------------
    @property
    def pending(self) -> bool:
        return False  # a pending object is not painted yet: undo of earlier edits may go ahead

    def activate(self, document_changed: bool = False) -> None:
        """Switched on: encode the shown image and say when it is ready. When only the shown image changed, encode
        it quietly (the message of whoever changed it, e.g. the review queue's, stays on the status bar)."""
        self.used = True
        if self._doc is not self.canvas.doc:
            self.cancel()
        self._announce = not document_changed
        self.ensure(quiet=document_changed)

    def document_shown(self) -> None:
        if self.used:  # used in this session: keep the shown (and next) image encoded for a switch back
            self.ensure(quiet=True)

    def cancel(self) -> None:
        self.clicks, self.mask, self._base, self._doc, self._dirty = [], None, None, None, False
        if self._item is not None:
            self._item.hide()

    def finish(self) -> None:
        if self._doc is not self.canvas.doc:
            self.cancel()

    def deactivate(self) -> None:
        self.cancel()


def make_tools(canvas: Canvas) -> dict[str, Tool]:
    """One instance of every tool for ``canvas``, keyed by :data:`TOOLS` name."""
    classes = (BrushTool, EraserTool, FillTool, PolygonTool, LassoTool, SuperpixelTool, GrabCutTool, ClickTool)
    return {cls.name: cls(canvas) for cls in classes}
