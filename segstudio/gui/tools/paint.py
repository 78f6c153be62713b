"""Painting tools: the round brush and eraser, the superpixel brush (:class:`StrokeTool` family) and flood fill."""

from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPainterPath, QPixmap

from segstudio.core import IGNORE_INDEX, Document, Patch, merge_patches
from segstudio.core import paint as core_paint
from segstudio.core.history import mask_bbox
from segstudio.gui.tools.base import ICON_ACCENT, Tool, ToolHost, ToolId
from segstudio.gui.workers import Job
from segstudio.postprocess.superpixels import Superpixels

log = logging.getLogger(__name__)

#: Superpixel boundaries are drawn as a full-size RGBA image only up to this many pixels (memory).
SUPERPIXEL_PREVIEW_MAX_PIXELS = 4096 * 4096


class StrokeTool(Tool):
    """Round-brush stroke: every mouse move paints a capsule of ``brush_radius`` from the last point
    (:func:`segstudio.core.paint.paint_stroke`) straight into the label map for live feedback; on release
    the segments are merged (:func:`segstudio.core.merge_patches`) into one undo step of the document the
    stroke started on."""

    round_cursor = True
    confirms = True  # every pixel under the stroke becomes the person's, changed or not (the eraser: only changed ones)

    def __init__(self, host: ToolHost) -> None:
        super().__init__(host)
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
        doc = self.host.doc
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
        res = core_paint.stroke_mask(self._labels.shape, [self._last, (y, x)], self.host.brush_radius)
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
            if self._doc is self.host.doc:
                self.host.refresh_patch(patch)

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
        doc.apply_patch(merge_patches(labels, patches), touched=box)  # its event repaints the view


class BrushTool(StrokeTool):
    """Paints the current class with a round brush (radius ``host.brush_radius`` px)."""

    name = ToolId.BRUSH
    label = "Brush"
    shortcut = "B"

    @staticmethod
    def draw_icon(p: QPainter) -> None:
        p.setBrush(QBrush(ICON_ACCENT))
        p.drawEllipse(QPointF(12, 12), 7.5, 7.5)


class EraserTool(StrokeTool):
    """Paints ``IGNORE_INDEX`` (unlabelled) with a round brush."""

    name = ToolId.ERASER
    label = "Eraser"
    shortcut = "E"
    confirms = False

    @staticmethod
    def draw_icon(p: QPainter) -> None:
        p.translate(12, 12)
        p.rotate(-35)
        p.setBrush(QBrush(QColor(240, 240, 240)))
        p.drawRect(QRectF(-8, -4.5, 16, 9))
        p.setBrush(QBrush(QColor(229, 57, 53)))
        p.drawRect(QRectF(-8, -4.5, 6, 9))

    def value(self) -> int:
        return IGNORE_INDEX


class SuperpixelTool(StrokeTool):
    """Paints every SLIC superpixel (Achanta et al., "SLIC Superpixels Compared to State-of-the-Art
    Superpixel Methods", TPAMI 2012) the round brush touches, each one whole and once per stroke.

    The superpixels of an image are computed once, in a worker, when the tool is switched on (or an image
    is shown while it is on) and kept for the last :attr:`CACHE` images; their boundaries are drawn in
    ``host.sp_item`` for images up to :data:`SUPERPIXEL_PREVIEW_MAX_PIXELS` pixels.
    """

    name = ToolId.SUPERPIXEL
    label = "Superpixel brush"
    shortcut = "S"
    CACHE = 4  # images whose superpixels are kept

    @staticmethod
    def draw_icon(p: QPainter) -> None:
        p.setBrush(QBrush(ICON_ACCENT))
        for i in range(3):
            for j in range(3):
                if (i + j) % 2 == 0:
                    p.drawRect(QRectF(3 + 6 * j, 3 + 6 * i, 6, 6))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(QRectF(3, 3, 18, 18))

    def __init__(self, host: ToolHost) -> None:
        super().__init__(host)
        self._painted: set[int] = set()
        self._cache: OrderedDict[tuple, Superpixels] = OrderedDict()
        self._preview: dict[tuple, QPixmap] = {}

    @staticmethod
    def cache_key(doc: Document | None) -> tuple | None:
        """Cache key of a document's image (path, shape and the image array's identity)."""
        return None if doc is None else (str(doc.path), doc.shape, id(doc.image))

    def superpixels(self, doc: Document | None = None) -> Superpixels | None:
        """Superpixels of ``doc`` (default: the shown one), or ``None`` while not computed."""
        key = self.cache_key(doc or self.host.doc)
        return self._cache.get(key) if key is not None else None

    def ensure(self) -> None:
        """Start computing the shown image's superpixels in a worker, unless cached or already running."""
        doc = self.host.doc
        key = self.cache_key(doc)
        name = f"superpixels:{key}"
        if key is None or key in self._cache or self.host.jobs.running(name):
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

        self.host.jobs.start(name, work, lambda payload: self._on_result(*payload))
        self.host.status.emit("computing superpixels…")

    def _on_result(self, key: tuple, sp: Superpixels, rgba: np.ndarray | None) -> None:
        self._cache[key] = sp
        while len(self._cache) > self.CACHE:
            old, _ = self._cache.popitem(last=False)
            self._preview.pop(old, None)
        if rgba is not None:
            h, w = rgba.shape[:2]
            self._preview[key] = QPixmap.fromImage(QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy())
        if key == self.cache_key(self.host.doc):
            self.sync_view()
            self.host.status.emit(f"superpixels ready: {sp.count} segments")
            self.host.superpixelsReady.emit()

    def sync_view(self) -> None:
        """Show the shown image's superpixel boundaries while this tool is on; hide them otherwise."""
        item = self.host.sp_item
        pm = self._preview.get(self.cache_key(self.host.doc))
        on = self.host.active_tool is self and pm is not None
        if on:
            item.setPixmap(pm)
        item.setVisible(on)

    def activate(self, document_changed: bool = False) -> None:
        self.sync_view()
        self.ensure()

    def deactivate(self) -> None:
        super().deactivate()
        self.host.sp_item.hide()

    def can_start(self, doc: Document) -> bool:
        if self.superpixels(doc) is None:
            self.ensure()
            self.host.status.emit("superpixels are still being computed for this image; try again in a moment")
            return False
        self._painted = set()
        return super().can_start(doc)

    def _paint_to(self, y: float, x: float) -> None:
        doc = self._doc
        if doc.labels is not self._labels:
            return
        sp = self.superpixels(doc)
        res = core_paint.stroke_mask(doc.shape, [self._last, (y, x)], self.host.brush_radius)
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

    name = ToolId.FILL
    label = "Flood fill"
    shortcut = "F"

    @staticmethod
    def draw_icon(p: QPainter) -> None:
        path = QPainterPath(QPointF(12, 3))
        path.cubicTo(QPointF(20, 12), QPointF(19, 21), QPointF(12, 21))
        path.cubicTo(QPointF(5, 21), QPointF(4, 12), QPointF(12, 3))
        p.setBrush(QBrush(ICON_ACCENT))
        p.drawPath(path)

    def fill_at(self, y: int, x: int, value: int | None = None) -> Patch | None:
        """Fill the region under pixel ``(y, x)`` with ``value`` (default :meth:`value`); one undo step.
        Returns the patch, or ``None`` when outside the image or nothing changed."""
        doc = self.host.doc
        value = self.value() if value is None else int(value)
        if doc is None or not self.check_value(doc, value):
            return None
        h, w = doc.shape
        if not (0 <= y < h and 0 <= x < w):
            return None
        patch = doc.fill(y, x, value)
        return patch

    def press(self, y: float, x: float) -> None:
        self.fill_at(int(round(y)), int(round(x)))
