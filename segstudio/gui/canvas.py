"""``Canvas``: the image with its label overlay, pan/zoom, and the labelling tools.

The overlay (:class:`LabelOverlayItem`) is drawn from cached RGBA tiles (512 x 512 samples) at a
level of detail that follows the zoom (every ``step``-th pixel, ``step`` a power of two), so neither a
repaint nor an edit ever converts the whole label map: an edit recolours only the part of the cached
tiles inside its dirty rectangle and asks Qt to repaint only that rectangle; a repaint draws only the
tiles that intersect the exposed rectangle. That keeps pan, zoom and painting smooth on 8k x 8k images.

Tools: brush, eraser, flood fill, polygon, lasso, superpixel brush (SLIC computed once per image in a
worker), GrabCut (in a worker). Every edit is one undo step in the document's history.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QStyleOptionGraphicsItem,
)

from segstudio.core import IGNORE_INDEX, ClassSpec, Document, Patch, merge_patches
from segstudio.core import paint as core_paint
from segstudio.gui.qtutil import rgb_to_qimage
from segstudio.gui.workers import Job, start_job
from segstudio.postprocess.grabcut import grabcut_region
from segstudio.postprocess.superpixels import Superpixels

log = logging.getLogger(__name__)

TOOL_BRUSH = "brush"
TOOL_ERASER = "eraser"
TOOL_FILL = "fill"
TOOL_POLYGON = "polygon"
TOOL_LASSO = "lasso"
TOOL_SUPERPIXEL = "superpixel"
TOOL_GRABCUT = "grabcut"
TOOLS = (TOOL_BRUSH, TOOL_ERASER, TOOL_FILL, TOOL_POLYGON, TOOL_LASSO, TOOL_SUPERPIXEL, TOOL_GRABCUT)
_ROUND_CURSOR_TOOLS = (TOOL_BRUSH, TOOL_ERASER, TOOL_SUPERPIXEL)

#: Superpixel boundaries are drawn as a full-size RGBA image only up to this many pixels (memory).
SUPERPIXEL_PREVIEW_MAX_PIXELS = 4096 * 4096


def compose_rgba(
    labels: np.ndarray, lut: np.ndarray, y0: int, x0: int, h: int, w: int, step: int = 1, outline: bool = False
) -> np.ndarray:
    """Colour a (sub-sampled) block of a label map.

    Args:
        labels: uint8 (H, W) label map.
        lut: uint8 (256, 4): the 4 pixel bytes per label value, in whatever order the QImage format wants
            (the overlay uses premultiplied ARGB32, see :func:`premultiplied_argb32_lut`); byte 3 of a
            row is tested only by the caller, outline mode zeroes all 4 bytes of non-boundary samples.
        y0, x0: first sampled pixel; the block samples rows ``y0 + i * step`` (``i < h``) and columns
            ``x0 + j * step`` (``j < w``), all inside the label map.
        step: sampling stride >= 1 (the overlay's level of detail).
        outline: keep only boundary samples (a 4-neighbour, ``step`` pixels away, has another label;
            image borders are not boundaries); all other samples become 0 (transparent).

    Returns:
        uint8 (h, w, 4), C-contiguous.

    Hand-written instead of ``skimage.segmentation.find_boundaries`` because four array comparisons on
    the sampled block are all that is needed and it must run per brush dab.
    """
    block = labels[y0 : y0 + h * step : step, x0 : x0 + w * step : step]
    # One uint32 gather per pixel (the 4 RGBA bytes at once) is ~4x faster than ``lut[block]`` on (256, 4).
    lut32 = np.ascontiguousarray(lut).view(np.uint32).reshape(256)
    rgba = lut32[block].view(np.uint8).reshape(block.shape + (4,))
    if outline:
        H, W = labels.shape
        ry = np.clip(y0 + step * np.arange(-1, h + 1), 0, H - 1)
        rx = np.clip(x0 + step * np.arange(-1, w + 1), 0, W - 1)
        p = labels[np.ix_(ry, rx)]
        c = p[1:-1, 1:-1]
        edge = (c != p[:-2, 1:-1]) | (c != p[2:, 1:-1]) | (c != p[1:-1, :-2]) | (c != p[1:-1, 2:])
        rgba[~edge] = 0
    return rgba


def premultiplied_argb32_lut(colors: np.ndarray) -> np.ndarray:
    """Colour table for ``QImage.Format_ARGB32_Premultiplied``, the format Qt's raster engine blends
    without a per-draw conversion.

    Args:
        colors: uint8 (256, 4) straight RGBA per label value (alpha 0 or 255 in SegStudio).

    Returns:
        uint8 (256, 4): each row the native-endian bytes of the 32-bit value ``0xAARRGGBB`` with the colour
        premultiplied by alpha (so fully transparent rows are all zero).
    """
    c = colors.astype(np.uint32)
    a = c[:, 3]
    rgb = (c[:, :3] * a[:, None] + 127) // 255
    argb = (a << 24) | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    return argb.astype(np.uint32).view(np.uint8).reshape(256, 4)


class LabelOverlayItem(QGraphicsItem):
    """Draws a label map as colours (ignore and hidden classes transparent) from cached RGBA tiles.

    A tile is keyed by ``(step, tile_row, tile_col)``; it holds ``TILE x TILE`` samples taken every
    ``step`` pixels, i.e. covers ``TILE * step`` image pixels a side. :meth:`paint` picks ``step`` from
    the painter's scale (largest power of two <= 1 / scale, up to ``MAX_STEP``), builds missing tiles
    that intersect the exposed rectangle, and draws only those. :meth:`update_rect` recolours the dirty
    rectangle inside cached tiles only. At most ``MAX_TILES`` tiles are kept (least recently drawn
    dropped first).

    Attributes:
        stats: counters ``built`` (whole tiles coloured), ``recoloured`` (tiles partly recoloured by an
            edit), ``drawn`` (tile draws) for tests and benchmarks; ``last_recoloured`` lists the tile keys
            the last :meth:`update_rect` touched; ``last_step`` is the level of detail of the last paint.
        outline: draw only class boundaries.
        hidden_classes: class ids drawn transparent.
    """

    TILE = 512
    MAX_STEP = 32
    MAX_TILES = 384  # 384 MiB of RGBA at most

    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self._labels = np.full((1, 1), IGNORE_INDEX, dtype=np.uint8)
        self._colors = np.zeros((256, 4), dtype=np.uint8)
        self._lut = self._colors.copy()
        self._tiles: OrderedDict[tuple[int, int, int], tuple[np.ndarray, QImage]] = OrderedDict()
        self.hidden_classes: set[int] = set()
        self.outline = False
        self.stats = {"built": 0, "recoloured": 0, "drawn": 0}
        self.last_step = 1
        self.last_recoloured: list[tuple[int, int, int]] = []  # tile keys recoloured by the last edit

    # -- state -------------------------------------------------------------------------------
    def set_classes(self, classes: ClassSpec) -> None:
        """Take the palette of ``classes`` (alpha 255; ignore stays transparent)."""
        colors = np.zeros((256, 4), dtype=np.uint8)
        colors[: classes.num_classes, :3] = np.asarray(classes.colors, dtype=np.uint8)
        colors[: classes.num_classes, 3] = 255
        self._colors = colors
        self._rebuild_lut()

    def _rebuild_lut(self) -> None:
        colors = self._colors.copy()
        for c in self.hidden_classes:
            if 0 <= c < 256:
                colors[c, 3] = 0
        self._lut = premultiplied_argb32_lut(colors)
        self.invalidate()

    def set_class_visible(self, class_id: int, visible: bool) -> None:
        """Show or hide one class (hidden = transparent, the label map is untouched)."""
        if visible:
            self.hidden_classes.discard(class_id)
        else:
            self.hidden_classes.add(class_id)
        self._rebuild_lut()

    def set_outline(self, on: bool) -> None:
        """Outline mode: draw only the boundaries between labels."""
        self.outline = bool(on)
        self.invalidate()

    def set_labels(self, labels: np.ndarray) -> None:
        """Show a new label map (new image or new prediction); keeps a reference, never a copy."""
        if labels.shape != self._labels.shape:
            self.prepareGeometryChange()
        self._labels = labels
        self.invalidate()

    def invalidate(self) -> None:
        """Drop every cached tile and repaint (palette, visibility, outline or label map changed)."""
        self._tiles.clear()
        self.update()

    @property
    def cached_tiles(self) -> list[tuple[int, int, int]]:
        """Keys ``(step, tile_row, tile_col)`` of the cached tiles."""
        return list(self._tiles)

    def update_rect(self, labels: np.ndarray, x: int, y: int, w: int, h: int) -> None:
        """Recolour ``labels[y:y+h, x:x+w]`` in the cached tiles and repaint only that rectangle."""
        if labels is not self._labels:
            self.set_labels(labels)
            return
        H, W = labels.shape
        if self.outline:  # a changed pixel changes whether its neighbours are boundaries
            x, y, w, h = x - 1, y - 1, w + 2, h + 2
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
        if x1 <= x0 or y1 <= y0:
            return
        self.last_recoloured = []
        for key, (rgba, _) in self._tiles.items():
            step, ty, tx = key
            g = step if self.outline else 0  # at a coarse level neighbours are `step` pixels away
            span = self.TILE * step
            by, bx = ty * span, tx * span
            th, tw = rgba.shape[:2]
            i0 = max(math.ceil((y0 - g - by) / step), 0)
            i1 = min(math.ceil((y1 + g - by) / step), th)
            j0 = max(math.ceil((x0 - g - bx) / step), 0)
            j1 = min(math.ceil((x1 + g - bx) / step), tw)
            if i1 <= i0 or j1 <= j0:
                continue
            rgba[i0:i1, j0:j1] = compose_rgba(
                labels, self._lut, by + i0 * step, bx + j0 * step, i1 - i0, j1 - j0, step, self.outline
            )
            self.stats["recoloured"] += 1
            self.last_recoloured.append(key)
        pad = max((k[0] for k in self._tiles), default=1) if self.outline else 0
        self.update(QRectF(x0 - pad, y0 - pad, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad))

    # -- drawing -----------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._labels.shape[1], self._labels.shape[0])

    def step_for_scale(self, scale: float) -> int:
        """Level of detail for a view scale (screen pixels per image pixel): 1, 2, 4, ... ``MAX_STEP``."""
        step = 1
        while step < self.MAX_STEP and step * 2 * scale <= 1.0:
            step *= 2
        return step

    def _tile(self, step: int, ty: int, tx: int) -> QImage:
        key = (step, ty, tx)
        hit = self._tiles.get(key)
        if hit is not None:
            self._tiles.move_to_end(key)
            return hit[1]
        H, W = self._labels.shape
        span = self.TILE * step
        by, bx = ty * span, tx * span
        th = min(self.TILE, -(-(H - by) // step))
        tw = min(self.TILE, -(-(W - bx) // step))
        rgba = np.ascontiguousarray(compose_rgba(self._labels, self._lut, by, bx, th, tw, step, self.outline))
        # Shares rgba's memory; premultiplied ARGB32 is drawn without a per-paint format conversion.
        qimg = QImage(rgba.data, tw, th, 4 * tw, QImage.Format.Format_ARGB32_Premultiplied)
        self._tiles[key] = (rgba, qimg)
        self.stats["built"] += 1
        while len(self._tiles) > self.MAX_TILES:
            self._tiles.popitem(last=False)
        return qimg

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        H, W = self._labels.shape
        r = option.exposedRect.intersected(self.boundingRect())
        if r.isEmpty() or not self._lut.any():
            return
        t = painter.worldTransform()
        scale = math.hypot(t.m11(), t.m12()) or 1.0
        step = self.step_for_scale(scale)
        self.last_step = step
        span = self.TILE * step
        for ty in range(int(r.top()) // span, min(math.ceil(r.bottom() / span), -(-H // span))):
            for tx in range(int(r.left()) // span, min(math.ceil(r.right() / span), -(-W // span))):
                img = self._tile(step, ty, tx)
                by, bx = ty * span, tx * span
                # The last sample of an edge tile may stand for fewer than `step` pixels: crop the source.
                tw_px, th_px = min(img.width() * step, W - bx), min(img.height() * step, H - by)
                painter.drawImage(QRectF(bx, by, tw_px, th_px), img, QRectF(0, 0, tw_px / step, th_px / step))
                self.stats["drawn"] += 1


class Canvas(QGraphicsView):
    """Image + overlay view with the labelling tools.

    Tools (:data:`TOOLS`): ``brush``/``eraser`` (round brush), ``fill`` (flood fill), ``polygon``
    (click vertices; Enter, a double-click or a click on the first vertex closes; Esc cancels;
    Backspace removes the last vertex), ``lasso`` (freehand, closes on release), ``superpixel``
    (paints every SLIC superpixel the stroke touches), ``grabcut`` (drag a rectangle; GrabCut runs in a
    worker and adds the foreground to the current class).

    Signals:
        edited(): the label map changed (stroke, fill, region, undo, redo).
        brushSizeChanged(int): radius in image pixels.
        navigate(int): arrow keys (next/previous image).
        status(str): a message for the status bar.
        superpixelsReady(): superpixels of the current image became available.
        grabcutDone(bool): a GrabCut job ended (True = its result was applied).

    Mouse: left button uses the current tool; middle or right drag pans; wheel zooms around the cursor.
    """

    edited = Signal()
    brushSizeChanged = Signal(int)
    navigate = Signal(int)
    status = Signal(str)
    superpixelsReady = Signal()
    grabcutDone = Signal(bool)

    _NAV_KEYS = {Qt.Key.Key_Right: 1, Qt.Key.Key_PageDown: 1, Qt.Key.Key_Left: -1, Qt.Key.Key_PageUp: -1}
    SUPERPIXEL_CACHE = 4  # images whose superpixels are kept

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
        self.doc: Document | None = None
        self.tool = TOOL_BRUSH
        self.brush_radius = 8
        self.current_class = 0
        self.polygon_rule = "nonzero"
        self._stroke: list[Patch] | None = None
        self._last: tuple[float, float] | None = None
        self._pan_from = None
        self._auto_fit = True  # keep the image fitted to the view until the user zooms
        self._shape: list[tuple[float, float]] | None = None  # (x, y) vertices of a polygon / lasso
        self._hover: tuple[float, float] | None = None
        self._rect_from: tuple[float, float] | None = None
        self._sp_painted: set[int] = set()
        self._sp_cache: OrderedDict[tuple, Superpixels] = OrderedDict()
        self._sp_preview: dict[tuple, QPixmap] = {}
        self._jobs: dict[str, Job] = {}  # running jobs by name (kept referenced until done)
        self._gc_applied = False

    # -- document -------------------------------------------------------------------------
    def set_document(self, doc: Document | None, fit: bool = True) -> None:
        self.doc = doc
        self._stroke = None
        self.cancel_shape()
        if doc is None:
            self.image_item.setPixmap(QPixmap())
            self.overlay.set_labels(np.full((1, 1), IGNORE_INDEX, np.uint8))
            self.sp_item.hide()
            return
        self.image_item.setPixmap(QPixmap.fromImage(rgb_to_qimage(doc.image)))
        self.overlay.set_classes(doc.classes)
        self.overlay.set_labels(doc.labels)
        h, w = doc.shape
        self.scene().setSceneRect(QRectF(0, 0, w, h))
        if fit:
            self._auto_fit = True
            self.fitInView(QRectF(0, 0, w, h), Qt.AspectRatioMode.KeepAspectRatio)
        self._sync_superpixel_view()
        if self.tool == TOOL_SUPERPIXEL:
            self.ensure_superpixels()

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

    def set_tool(self, tool: str) -> None:
        """Switch tool (one of :data:`TOOLS`); a shape in progress is dropped."""
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}; tools are {TOOLS}")
        if self._stroke is not None:
            self.end_stroke()
        self.cancel_shape()
        self.tool = tool
        self._update_cursor(None)
        self._sync_superpixel_view()
        if tool == TOOL_SUPERPIXEL:
            self.ensure_superpixels()

    # -- brush strokes (brush, eraser, superpixel) ------------------------------------------
    def _value(self) -> int:
        return IGNORE_INDEX if self.tool == TOOL_ERASER else self.current_class

    def begin_stroke(self, y: float, x: float) -> None:
        """Start a brush/eraser/superpixel stroke at image coordinates ``(y, x)``."""
        if self.doc is None:
            return
        if self.tool == TOOL_SUPERPIXEL and self.superpixels() is None:
            self.ensure_superpixels()
            self.status.emit("superpixels are still being computed for this image; try again in a moment")
            return
        self._stroke = []
        self._sp_painted = set()
        self._last = (y, x)
        self._stroke_to(y, x)

    def _stroke_to(self, y: float, x: float) -> None:
        if self.tool == TOOL_SUPERPIXEL:
            self._superpixel_to(y, x)
            return
        patch = core_paint.paint_stroke(self.doc.labels, [self._last, (y, x)], self.brush_radius, self._value())
        self._last = (y, x)
        if patch is not None:
            self._stroke.append(patch)
            self.refresh_patch(patch)

    def _superpixel_to(self, y: float, x: float) -> None:
        sp = self.superpixels()
        res = core_paint.stroke_mask(self.doc.shape, [self._last, (y, x)], self.brush_radius)
        self._last = (y, x)
        if res is None or sp is None:
            return
        y0, x0, mask = res
        for seg_id in sp.ids_in(y0, x0, mask):
            if int(seg_id) in self._sp_painted:
                continue
            self._sp_painted.add(int(seg_id))
            sy, sx, smask = sp.region(int(seg_id))
            patch = core_paint.paint_mask(self.doc.labels, sy, sx, smask, self.current_class)
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

    # -- polygon and lasso --------------------------------------------------------------------
    def add_vertex(self, x: float, y: float) -> None:
        """Add a polygon vertex at image coordinates ``(x, y)`` (starts a polygon if none)."""
        if self.doc is None:
            return
        if self._shape is None:
            self._shape = []
        if not self._shape or (x, y) != self._shape[-1]:
            self._shape.append((x, y))
        self._update_shape_item()

    def remove_vertex(self) -> None:
        if self._shape:
            self._shape.pop()
            self._update_shape_item()

    def close_shape(self) -> Patch | None:
        """Fill the polygon/lasso in progress with the current class (one undo step) and end it."""
        pts, self._shape = self._shape, None
        self._update_shape_item()
        if self.doc is None or not pts or len(pts) < 3:
            if pts:
                self.status.emit("a polygon needs at least 3 points")
            return None
        patch = self.doc.polygon(np.asarray(pts, dtype=np.float64), self.current_class, self.polygon_rule)
        if patch is not None:
            self.refresh_patch(patch)
            self.edited.emit()
        return patch

    def cancel_shape(self) -> None:
        """Drop a polygon, lasso or GrabCut rectangle in progress."""
        self._shape = None
        self._rect_from = None
        self.rect_item.hide()
        self._update_shape_item()

    @property
    def shape_points(self) -> list[tuple[float, float]]:
        """``(x, y)`` vertices of the polygon/lasso in progress (empty when none)."""
        return list(self._shape or [])

    def _update_shape_item(self) -> None:
        path = QPainterPath()
        pts = self._shape or []
        if pts:
            path.moveTo(pts[0][0] + 0.5, pts[0][1] + 0.5)
            for x, y in pts[1:]:
                path.lineTo(x + 0.5, y + 0.5)
            if self.tool == TOOL_POLYGON and self._hover is not None:
                path.lineTo(self._hover[0] + 0.5, self._hover[1] + 0.5)
            path.closeSubpath()
        self.shape_item.setPath(path)

    def _near_first_vertex(self, x: float, y: float) -> bool:
        if not self._shape or len(self._shape) < 3:
            return False
        fx, fy = self._shape[0]
        a = self.mapFromScene(QPointF(fx, fy))
        b = self.mapFromScene(QPointF(x, y))
        return (a - b).manhattanLength() <= 8

    # -- superpixels ----------------------------------------------------------------------------
    def _sp_key(self, doc: Document | None = None) -> tuple | None:
        doc = doc or self.doc
        return None if doc is None else (str(doc.path), doc.shape, id(doc.image))

    def superpixels(self) -> Superpixels | None:
        """Superpixels of the current image, or ``None`` while they are not computed yet."""
        key = self._sp_key()
        return self._sp_cache.get(key) if key is not None else None

    def ensure_superpixels(self) -> None:
        """Compute the current image's SLIC superpixels in a worker (once per image; cached)."""
        key = self._sp_key()
        if key is None or key in self._sp_cache or f"superpixels:{key}" in self._jobs:
            return
        image = self.doc.image
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
            job.emit_result("superpixels", (key, sp, rgba))
            return sp.count

        self._start_job(f"superpixels:{key}", work)
        self.status.emit("computing superpixels…")

    def _on_superpixels(self, key, sp: Superpixels, rgba: np.ndarray | None) -> None:
        self._sp_cache[key] = sp
        while len(self._sp_cache) > self.SUPERPIXEL_CACHE:
            old, _ = self._sp_cache.popitem(last=False)
            self._sp_preview.pop(old, None)
        if rgba is not None:
            h, w = rgba.shape[:2]
            self._sp_preview[key] = QPixmap.fromImage(QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy())
        if key == self._sp_key():
            self._sync_superpixel_view()
            self.status.emit(f"superpixels ready: {sp.count} segments")
            self.superpixelsReady.emit()

    def _sync_superpixel_view(self) -> None:
        pm = self._sp_preview.get(self._sp_key())
        on = self.tool == TOOL_SUPERPIXEL and pm is not None
        if on:
            self.sp_item.setPixmap(pm)
        self.sp_item.setVisible(on)

    # -- GrabCut --------------------------------------------------------------------------------
    def grabcut(self, rect: tuple[int, int, int, int]) -> bool:
        """Run GrabCut on ``rect`` ``(x, y, w, h)`` in a worker; its foreground becomes the current class.

        Returns False (with a status message) when no image is open, the rectangle is too small or a
        GrabCut job is already running. The result is applied as one undo step to the document the job
        started on, whichever image is shown when it ends.
        """
        if self.doc is None:
            return False
        if "grabcut" in self._jobs:
            self.status.emit("GrabCut is still running")
            return False
        x, y, w, h = (int(round(v)) for v in rect)
        H, W = self.doc.shape
        if min(x + w, W) - max(x, 0) < 4 or min(y + h, H) - max(y, 0) < 4:
            self.status.emit("drag a larger rectangle around the object for GrabCut")
            return False
        doc, class_id = self.doc, self.current_class
        image, labels = doc.image, doc.labels.copy()

        def work(job: Job):
            job.report(0, 1, "GrabCut…")
            job.emit_result("grabcut", (doc, class_id, grabcut_region(image, labels, (x, y, w, h), class_id)))

        self._gc_applied = False
        self._start_job("grabcut", work)
        self.status.emit(f"GrabCut running on {w}x{h} px…")
        return True

    def _on_grabcut(self, doc: Document, class_id: int, mask: np.ndarray) -> None:
        patch = doc.apply_region(mask, class_id)
        self._gc_applied = patch is not None
        if doc is self.doc and patch is not None:
            self.refresh_patch(patch)
            self.edited.emit()
        self.status.emit(f"GrabCut: {int(mask.sum())} px → class {class_id + 1}")

    # -- jobs -----------------------------------------------------------------------------------
    def _start_job(self, name: str, work) -> Job:
        """Run ``work(job)`` in a worker; it reports through ``job.emit_result(kind, payload)``, handled by
        :meth:`_on_job_result` on the GUI thread (a bound slot, so the call is queued to this thread)."""

        def run(job: Job):
            try:
                return work(job)
            finally:
                job.emit_result("_done", name)

        job = Job(name, run)
        job.result.connect(self._on_job_result)
        job.failed.connect(self.status)
        self._jobs[name] = job
        start_job(job, self)
        return job

    def _on_job_result(self, kind: str, payload) -> None:
        if kind == "superpixels":
            self._on_superpixels(*payload)
        elif kind == "grabcut":
            self._on_grabcut(*payload)
        elif kind == "_done":
            self._jobs.pop(payload, None)
            if payload == "grabcut":
                self.grabcutDone.emit(self._gc_applied)
                self._gc_applied = False

    @property
    def busy(self) -> bool:
        """True while a superpixel or GrabCut job runs."""
        return bool(self._jobs)

    # -- undo ------------------------------------------------------------------------------------
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
            pos = (self.cursor_item.rect().center().y() - 0.5, self.cursor_item.rect().center().x() - 0.5)
        r = self.brush_radius
        y, x = pos
        self.cursor_item.setRect(QRectF(x + 0.5 - r, y + 0.5 - r, 2 * r, 2 * r))
        self.cursor_item.setVisible(self.doc is not None and self.tool in _ROUND_CURSOR_TOOLS)

    def _set_rect_item(self, y: float, x: float) -> None:
        fy, fx = self._rect_from
        self.rect_item.setRect(QRectF(QPointF(fx + 0.5, fy + 0.5), QPointF(x + 0.5, y + 0.5)).normalized())
        self.rect_item.show()

    def mousePressEvent(self, event) -> None:
        if event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton):
            self._pan_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if event.button() == Qt.MouseButton.LeftButton and self.doc is not None:
            y, x = self._image_pos(event)
            if self.tool == TOOL_FILL:
                self.fill_at(int(round(y)), int(round(x)))
            elif self.tool == TOOL_POLYGON:
                if self._near_first_vertex(x, y):
                    self.close_shape()
                else:
                    self.add_vertex(x, y)
            elif self.tool == TOOL_LASSO:
                self._shape = [(x, y)]
                self._update_shape_item()
            elif self.tool == TOOL_GRABCUT:
                self._rect_from = (y, x)
                self._set_rect_item(y, x)
            else:
                self.begin_stroke(y, x)
            return
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.tool == TOOL_POLYGON and self._shape:
            self.close_shape()
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
        if self._stroke is not None:
            self.continue_stroke(*pos)
            return
        y, x = pos
        if self.tool == TOOL_LASSO and self._shape is not None and event.buttons() & Qt.MouseButton.LeftButton:
            lx, ly = self._shape[-1]
            if abs(x - lx) + abs(y - ly) >= 1.0:
                self._shape.append((x, y))
                self._update_shape_item()
            return
        if self.tool == TOOL_GRABCUT and self._rect_from is not None:
            self._set_rect_item(y, x)
            return
        if self.tool == TOOL_POLYGON and self._shape:
            self._hover = (x, y)
            self._update_shape_item()
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton):
            self._pan_from = None
            self.unsetCursor()
            return
        if event.button() == Qt.MouseButton.LeftButton:
            if self._stroke is not None:
                self.end_stroke()
                return
            if self.tool == TOOL_LASSO and self._shape is not None:
                self.close_shape()
                return
            if self.tool == TOOL_GRABCUT and self._rect_from is not None:
                y, x = self._image_pos(event)
                fy, fx = self._rect_from
                self.cancel_shape()
                x0, y0 = math.floor(min(fx, x) + 0.5), math.floor(min(fy, y) + 0.5)
                x1, y1 = math.ceil(max(fx, x) + 0.5), math.ceil(max(fy, y) + 0.5)
                self.grabcut((x0, y0, x1 - x0, y1 - y0))
                return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event) -> None:
        # QGraphicsView would scroll on arrow keys; in SegStudio they move between images.
        step = self._NAV_KEYS.get(event.key())
        if step is not None and event.modifiers() == Qt.KeyboardModifier.NoModifier:
            self.navigate.emit(step)
            return
        if event.key() == Qt.Key.Key_Backspace and self._shape:
            self.remove_vertex()
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
