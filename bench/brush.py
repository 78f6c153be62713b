"""P3: brush dab → overlay repainted, on a 4096 x 4096 image with 20 classes (offscreen Qt).

Measured through the real :class:`segstudio.gui.canvas.Canvas`: each sample is one brush dab
(``Canvas.continue_stroke``: paint into the label map, recolour the dirty tiles) followed by
``QApplication.processEvents()``, which runs the paint event Qt scheduled for the dirty rectangle.

Baseline (same run, same canvas, same kind of dabs): the overlay item is swapped for one that recomposites
the whole label map into a full RGBA image per dab (a uint32 colour-table gather, the fastest numpy way, + a
QImage over it, then ``update()`` of the whole item) — what an overlay without dirty rectangles does.

Goal (issue 9): p95 <= 16 ms and >= 20x faster than the baseline. Also reported: pan (scroll by 40 px) and
zoom (x1.25) repaint times on an 8192 x 8192 image, at 1:1 and fitted.

Usage: ``python -m bench brush [--quick]``
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

N_CLASSES = 20


RECORD_MODELS = ()
"""Bundled models whose weights these figures depend on (``python -m bench brush --record`` names them)."""

def _labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """A 20-class label map of 64 x 64 px blocks (realistic many-region overlay)."""
    blocks = rng.integers(0, N_CLASSES, size=(n // 64 + 1, n // 64 + 1), dtype=np.uint8)
    return np.ascontiguousarray(blocks.repeat(64, 0).repeat(64, 1)[:n, :n])


def _pct(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"n": len(a), "median_ms": float(np.median(a)), "p95_ms": float(np.percentile(a, 95)), "max_ms": float(a.max())}


def _make_full_overlay():
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QGraphicsItem

    class FullRecompositeOverlay(QGraphicsItem):
        """Baseline: recolour the whole label map into one RGBA image per edit."""

        def __init__(self, lut: np.ndarray) -> None:
            super().__init__()
            self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
            self.lut = lut
            self.rgba = np.zeros((1, 1, 4), np.uint8)
            self.qimage = QImage()

        def set_labels(self, labels: np.ndarray) -> None:
            # The fastest whole-map recolour we know: one uint32 gather per pixel (4x faster than lut[labels]),
            # in the same premultiplied ARGB32 format as the tiles.
            self.rgba = self.lut.view(np.uint32).reshape(256)[labels].view(np.uint8).reshape(labels.shape + (4,))
            h, w = labels.shape
            self.qimage = QImage(self.rgba.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)
            self.update()

        def boundingRect(self) -> QRectF:
            return QRectF(0, 0, self.rgba.shape[1], self.rgba.shape[0])

        def paint(self, painter, option, widget=None) -> None:
            r = option.exposedRect.intersected(self.boundingRect()).toAlignedRect()
            painter.drawImage(r, self.qimage, r)

    return FullRecompositeOverlay


def _dab_path(n: int, count: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    """A wandering stroke: ``count`` dab centres (y, x), 3 px apart, inside ``[centre ± 300]``."""
    y, x = n / 2, n / 2
    pts = []
    ang = 0.0
    for _ in range(count):
        ang += rng.normal(0, 0.3)
        y = float(np.clip(y + 3 * np.sin(ang), n / 2 - 300, n / 2 + 300))
        x = float(np.clip(x + 3 * np.cos(ang), n / 2 - 300, n / 2 + 300))
        pts.append((y, x))
    return pts


def _time_dabs(app, canvas, pts, per_dab) -> list[float]:
    ms = []
    for y, x in pts:
        t0 = time.perf_counter()
        per_dab(y, x)
        app.processEvents()
        ms.append(1000 * (time.perf_counter() - t0))
    return ms


def run(args) -> dict:
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtWidgets import QApplication

    from segstudio.core import ClassSpec, Document, default_palette
    from segstudio.core import paint as core_paint
    from segstudio.gui.canvas import Canvas

    quick = bool(getattr(args, "quick", False))
    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    n = 4096
    classes = ClassSpec(tuple(f"class{i}" for i in range(N_CLASSES)), tuple(map(tuple, default_palette(N_CLASSES))))
    image = rng.integers(0, 256, size=(n, n, 3), dtype=np.uint8)
    doc = Document("bench.png", image, classes, labels=_labels(n, rng))
    canvas = Canvas()
    canvas.resize(1280, 800)
    canvas.show()
    canvas.set_document(doc)
    canvas.set_brush_radius(12)
    app.processEvents()
    n_dabs = 60 if quick else 400
    n_base = 15 if quick else 60
    results: dict = {"image": f"{n}x{n}", "classes": N_CLASSES, "brush_radius_px": 12, "view": "1280x800"}

    for zoom_name, setup in (("1:1", lambda: (canvas.resetTransform(), canvas.centerOn(n / 2, n / 2))), ("fit", canvas.zoom_fit)):
        canvas._auto_fit = False
        setup()
        for _ in range(3):
            app.processEvents()
        canvas.viewport().repaint()
        pts = _dab_path(n, n_dabs, rng)
        # Tiled overlay (the app): dab = Canvas.continue_stroke, Qt repaints the dirty rectangle.
        drawn0 = canvas.overlay.stats["drawn"]
        canvas.current_class = 3
        canvas.begin_stroke(*pts[0])
        app.processEvents()
        fast = _time_dabs(app, canvas, pts[1:], canvas.continue_stroke)
        canvas.end_stroke()
        draws_per_dab = (canvas.overlay.stats["drawn"] - drawn0) / len(pts)
        # Baseline: same canvas, overlay item swapped for a full recomposite per dab.
        Full = _make_full_overlay()
        full = Full(canvas.overlay._lut)
        full.setOpacity(canvas.overlay.opacity())
        canvas.overlay.hide()
        canvas.scene().addItem(full)
        full.set_labels(doc.labels)
        app.processEvents()

        def base_dab(y, x):
            core_paint.paint_dab(doc.labels, y, x, canvas.brush_radius, 5)
            full.set_labels(doc.labels)

        base = _time_dabs(app, canvas, _dab_path(n, n_base, rng), base_dab)
        canvas.scene().removeItem(full)
        canvas.overlay.show()
        canvas.refresh_labels()
        f, b = _pct(fast), _pct(base)
        speedup = b["median_ms"] / f["median_ms"]
        results[zoom_name] = {
            "tiled": f,
            "baseline_full_recomposite": b,
            "speedup_median": speedup,
            "speedup_p95": b["p95_ms"] / f["p95_ms"],
            "tile_draws_per_dab": draws_per_dab,
            "level_of_detail_step": canvas.overlay.last_step,
            "goal_p95_le_16ms": f["p95_ms"] <= 16.0,
            "goal_20x": speedup >= 20.0,
        }
        print(
            f"dab @ {zoom_name}: tiled p95 {f['p95_ms']:.2f} ms (median {f['median_ms']:.2f}) | "
            f"full recomposite p95 {b['p95_ms']:.1f} ms (median {b['median_ms']:.1f}) | "
            f"speed-up x{speedup:.0f} (median), x{b['p95_ms'] / f['p95_ms']:.0f} (p95) | LOD step {canvas.overlay.last_step}",
            flush=True,
        )
    canvas.close()
    del canvas, doc, image

    # Pan and zoom on 8192 x 8192: repaint time of the whole viewport.
    m = 4096 if quick else 8192
    big = Document("big.png", np.zeros((m, m, 3), np.uint8) + 90, classes, labels=_labels(m, rng))
    canvas = Canvas()
    canvas.resize(1280, 800)
    canvas.show()
    canvas.set_document(big)
    app.processEvents()
    nav = {}
    for zoom_name in ("1:1", "fit"):
        canvas._auto_fit = False
        if zoom_name == "1:1":
            canvas.resetTransform()
            canvas.centerOn(m / 2, m / 2)
        else:
            canvas.fitInView(QRectF(0, 0, m, m), Qt.AspectRatioMode.KeepAspectRatio)
        app.processEvents()
        canvas.viewport().repaint()
        pan = []
        for i in range(20 if quick else 60):
            t0 = time.perf_counter()
            sb = canvas.horizontalScrollBar()
            sb.setValue(sb.value() + (40 if (i // 10) % 2 == 0 else -40))
            canvas.viewport().repaint()
            pan.append(1000 * (time.perf_counter() - t0))
        zoom = []
        for i in range(10 if quick else 20):
            t0 = time.perf_counter()
            f = 1.25 if (i // 4) % 2 == 0 else 0.8
            canvas.scale(f, f)
            canvas.viewport().repaint()
            zoom.append(1000 * (time.perf_counter() - t0))
        nav[zoom_name] = {"pan": _pct(pan), "zoom": _pct(zoom), "tiles_cached": len(canvas.overlay.cached_tiles)}
        print(f"{m}x{m} @ {zoom_name}: pan p95 {nav[zoom_name]['pan']['p95_ms']:.1f} ms, zoom p95 {nav[zoom_name]['zoom']['p95_ms']:.1f} ms", flush=True)
    results[f"navigate_{m}"] = nav
    canvas.close()
    return results
