"""The label overlay: a label map drawn as colours from cached RGBA tiles.

:class:`LabelOverlayItem` draws from cached RGBA tiles (512 x 512 samples) at a level of detail that
follows the zoom (every ``step``-th pixel, ``step`` a power of two), so neither a repaint nor an edit ever
converts the whole label map: an edit recolours only the part of the cached tiles inside its dirty
rectangle and asks Qt to repaint only that rectangle; a repaint draws only the tiles that intersect the
exposed rectangle. That keeps pan, zoom and painting smooth on 8k x 8k images.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from segstudio.core import IGNORE_INDEX, ClassSpec


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
