"""Labelling tools: polygon/lasso fill, superpixel brush, GrabCut, per-class show/hide, outline mode, the tiled
overlay on an 8k x 8k image and the keyboard-shortcut help — the numpy functions directly, the GUI through the
real window with key presses and mouse events (pytest-qt, offscreen)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtGui import QKeySequence, QMouseEvent
from PySide6.QtWidgets import QApplication
from skimage.draw import polygon as sk_polygon

from segstudio.core import IGNORE_INDEX, ClassSpec, Document
from segstudio.core.paint import polygon_fill, polygon_mask
from segstudio.engine import load_checkpoint
from segstudio.gui.canvas import Canvas, LabelOverlayItem, compose_rgba
from segstudio.gui.help_dialog import ShortcutsDialog, action_shortcuts, duplicate_shortcuts
from segstudio.gui.main_window import MainWindow
from segstudio.io import save_labels
from segstudio.postprocess.grabcut import grabcut_region, grabcut_seed_mask
from segstudio.postprocess.superpixels import Superpixels, compute_superpixels

H, W = 240, 320
DISC = (120, 200, 45)  # cy, cx, r of the dark object GrabCut must find
BOX = (30, 40, 100, 120)  # y0, x0, y1, x1 of the red block


def synthetic_image(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Grey noisy background, a red block and a dark-blue disc; returns (image, disc mask)."""
    rng = np.random.default_rng(seed)
    img = np.full((H, W, 3), (170, 170, 160), np.float64)
    y0, x0, y1, x1 = BOX
    img[y0:y1, x0:x1] = (200, 40, 40)
    yy, xx = np.mgrid[:H, :W]
    cy, cx, r = DISC
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    img[disc] = (30, 50, 110)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), disc


# -- pure numpy ---------------------------------------------------------------------------------------
def _full(shape, res):
    out = np.zeros(shape, bool)
    if res is not None:
        y0, x0, m = res
        out[y0 : y0 + m.shape[0], x0 : x0 + m.shape[1]] = m
    return out


def test_polygon_mask_evenodd_matches_skimage_and_nonzero_fills_self_overlaps():
    rng = np.random.default_rng(1)
    for _ in range(20):  # random (often self-intersecting) polygons partly outside the image
        pts = rng.uniform(-10, 90, (int(rng.integers(3, 9)), 2))
        rr, cc = sk_polygon(pts[:, 1], pts[:, 0], (60, 80))
        ref = np.zeros((60, 80), bool)
        ref[rr, cc] = True
        np.testing.assert_array_equal(_full((60, 80), polygon_mask((60, 80), pts, "evenodd")), ref)
    # Pentagram: even-odd leaves the centre pentagon empty, nonzero fills it.
    ang = -np.pi / 2 + np.arange(5) * 4 * np.pi / 5
    star = np.stack([50 + 40 * np.cos(ang), 50 + 40 * np.sin(ang)], 1)
    eo, nz = _full((100, 100), polygon_mask((100, 100), star, "evenodd")), _full((100, 100), polygon_mask((100, 100), star))
    assert not eo[50, 50] and nz[50, 50]
    assert (eo & ~nz).sum() == 0 and nz.sum() > eo.sum() + 300
    # An axis-aligned rectangle covers exactly the pixel centres inside it (half-open edges).
    np.testing.assert_array_equal(np.argwhere(_full((20, 20), polygon_mask((20, 20), [(2, 3), (9, 3), (9, 7), (2, 7)]))).min(0), [3, 2])
    assert _full((20, 20), polygon_mask((20, 20), [(2, 3), (9, 3), (9, 7), (2, 7)])).sum() == 7 * 4


def test_polygon_fill_and_errors():
    labels = np.full((30, 30), IGNORE_INDEX, np.uint8)
    patch = polygon_fill(labels, np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]]), 2)
    assert patch is not None and (labels == 2).sum() == patch.after.size - (patch.after != 2).sum()
    assert labels[1, 1] == 2 and labels[15, 15] == IGNORE_INDEX
    assert polygon_fill(labels, [(100, 100), (120, 100), (110, 120)], 1) is None  # fully outside
    with pytest.raises(ValueError, match="at least 3"):
        polygon_fill(labels, [(0, 0), (5, 5)], 1)
    with pytest.raises(ValueError, match="rule"):
        polygon_fill(labels, [(0, 0), (5, 5), (0, 5)], 1, rule="winding")
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        polygon_fill(labels, np.zeros((4, 3)), 1)


def test_document_polygon_and_region_are_one_undo_step_each():
    classes = ClassSpec(("a", "b", "c"))
    doc = Document("x.png", np.zeros((40, 50, 3), np.uint8), classes)
    assert doc.polygon([(5, 5), (30, 5), (30, 30), (5, 30)], 1) is not None
    m = np.zeros((10, 10), bool)
    m[2:5, 3:8] = True
    doc.apply_region(m, 2, origin=(20, 25))
    assert len(doc.history) == 2 and (doc.labels == 2).sum() == 15 and doc.labels[22, 28] == 2
    doc.undo()
    assert (doc.labels == 2).sum() == 0 and (doc.labels == 1).sum() == 25 * 25
    with pytest.raises(ValueError, match="outside"):
        doc.apply_region(m, 2, origin=(35, 45))
    with pytest.raises(ValueError, match="class id"):
        doc.apply_region(m, 7)


def test_superpixels_follow_colour_edges_and_have_boxes():
    img, disc = synthetic_image()
    seg = compute_superpixels(img, n_segments=120)
    assert seg.dtype == np.int32 and seg.shape == (H, W)
    ids = np.unique(seg)
    np.testing.assert_array_equal(ids, np.arange(len(ids)))  # consecutive ids
    assert 40 < len(ids) < 300
    # SLIC adheres to colour boundaries: almost every superpixel lies on one side of the disc's edge, and the
    # under-segmentation leak (pixels on the minority side, Achanta et al. 2012 Sec. 5) beats a square grid.
    def leak(s):
        n = s.max() + 1
        inside, total = np.bincount(s.ravel(), disc.ravel(), n), np.bincount(s.ravel(), None, n)
        return np.minimum(inside, total - inside).sum() / disc.size

    frac = np.array([disc[seg == i].mean() for i in ids])
    assert ((frac < 0.1) | (frac > 0.9)).mean() > 0.95
    yy, xx = np.mgrid[:H, :W]
    side = int(np.sqrt(H * W / len(ids)))
    assert leak(seg) < 0.5 * leak((yy // side) * (W // side + 1) + xx // side)
    sp = Superpixels.from_segments(seg)
    for i in (0, len(ids) // 2, len(ids) - 1):
        y0, x0, m = sp.region(i)
        assert m.sum() == (seg == i).sum() and m.any(0).all() and m.any(1).all()
    with pytest.raises(ValueError, match="uint8"):
        compute_superpixels(img.astype(np.float32))


def test_grabcut_finds_object_and_respects_rectangle():
    img, disc = synthetic_image()
    labels = np.full((H, W), IGNORE_INDEX, np.uint8)
    cy, cx, r = DISC
    rect = (cx - r - 12, cy - r - 12, 2 * r + 24, 2 * r + 24)
    fg = grabcut_region(img, labels, rect, class_id=1)
    assert fg.dtype == bool and fg.shape == (H, W)
    iou = (fg & disc).sum() / (fg | disc).sum()
    assert iou > 0.9, iou
    x, y, w, h = rect
    outside = np.ones((H, W), bool)
    outside[y : y + h, x : x + w] = False
    assert not fg[outside].any()
    # Seeds: labelled other classes inside the rectangle are probable background, outside is sure background.
    labels[cy, cx] = 3
    import cv2

    seed = grabcut_seed_mask(labels, rect, 1)
    assert seed[cy, cx] == cv2.GC_PR_BGD and seed[cy, cx + 1] == cv2.GC_PR_FGD and seed[0, 0] == cv2.GC_BGD
    # Pixels already of the class are the sure-foreground core (a thin scribble entirely, a region its interior).
    labels[100:140, 180:220] = 1
    labels[cy - 30 : cy + 30, cx - 30] = 1
    seed = grabcut_seed_mask(labels, rect, 1, core_px=2)
    assert seed[120, 200] == cv2.GC_FGD and seed[100, 200] == cv2.GC_PR_FGD
    seed = grabcut_seed_mask(labels[:, : cx - 20], (x, y, cx - 20 - x, h), 1)
    assert seed[cy, cx - 30] == cv2.GC_FGD
    with pytest.raises(ValueError, match="2x2"):
        grabcut_region(img, labels, (W + 5, 0, 10, 10), 1)


def test_compose_rgba_outline_and_hidden():
    labels = np.zeros((8, 8), np.uint8)
    labels[2:6, 2:6] = 1
    lut = np.zeros((256, 4), np.uint8)
    lut[0] = (10, 10, 10, 255)
    lut[1] = (200, 0, 0, 255)
    full = compose_rgba(labels, lut, 0, 0, 8, 8)
    assert (full[..., 3] == 255).all()
    out = compose_rgba(labels, lut, 0, 0, 8, 8, outline=True)
    inner = np.zeros((8, 8), bool)
    inner[2:6, 2:6] = True
    edge = inner & ~np.pad(np.ones((2, 2), bool), 3)
    ring = np.zeros((8, 8), bool)
    ring[1:7, 1:7] = True
    ring[2:6, 2:6] = False
    ring[[1, 1, 6, 6], [1, 6, 1, 6]] = False  # diagonal neighbours are not 4-neighbours
    np.testing.assert_array_equal(out[..., 3] > 0, edge | ring)
    sub = compose_rgba(labels, lut, 1, 1, 3, 3, step=2)
    np.testing.assert_array_equal(sub[..., 0], lut[labels[1:7:2, 1:7:2], 0])


# -- GUI ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    return load_checkpoint()


@pytest.fixture()
def window(qtbot, tmp_path, model):
    """The main window on a folder holding the synthetic image with saved (all ignore) labels."""
    import cv2

    img, disc = synthetic_image()
    path = tmp_path / "synthetic.png"
    cv2.imwrite(str(path), img[..., ::-1])
    save_labels(path, np.full((H, W), IGNORE_INDEX, np.uint8), model.classes)
    win = MainWindow(model)
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    qtbot.waitExposed(win)
    win.open_folder(tmp_path)
    assert win.current_doc().source == "saved"
    win.canvas.setFocus()
    win.disc = disc
    yield win
    win.close()


def mouse(canvas, kind, x, y, buttons=Qt.MouseButton.LeftButton, button=Qt.MouseButton.LeftButton):
    pos = QPointF(canvas.mapFromScene(QPointF(x + 0.5, y + 0.5)))
    QApplication.sendEvent(
        canvas.viewport(),
        QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier),
    )


def click(canvas, x, y):
    mouse(canvas, QMouseEvent.Type.MouseButtonPress, x, y)
    mouse(canvas, QMouseEvent.Type.MouseButtonRelease, x, y, Qt.MouseButton.NoButton)


def drag(canvas, pts):
    mouse(canvas, QMouseEvent.Type.MouseButtonPress, *pts[0])
    for p in pts[1:]:
        mouse(canvas, QMouseEvent.Type.MouseMove, *p)
    mouse(canvas, QMouseEvent.Type.MouseButtonRelease, *pts[-1], buttons=Qt.MouseButton.NoButton)


def test_polygon_and_lasso_tools(qtbot, window):
    win, canvas = window, window.canvas
    doc = win.current_doc()
    qtbot.keyClick(win, Qt.Key.Key_3)  # class id 2
    qtbot.keyClick(win, Qt.Key.Key_P)
    assert canvas.tool == "polygon"
    for x, y in [(20, 20), (100, 20), (100, 80), (20, 80)]:
        click(canvas, x, y)
    assert len(canvas.shape_points) == 4 and (doc.labels == IGNORE_INDEX).all()  # nothing until closed
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    assert canvas.shape_points == []
    painted = doc.labels == 2
    # Mouse positions are whole viewport pixels, so vertices land within a pixel of the asked ones.
    assert abs(int(painted.sum()) - 80 * 60) <= 2 * (80 + 60) and painted[21:79, 21:99].all()
    assert not painted[:19].any() and not painted[:, 102:].any()
    assert len(doc.history) == 1
    # Esc drops a polygon in progress; Backspace removes the last vertex.
    click(canvas, 150, 150)
    click(canvas, 160, 150)
    qtbot.keyClick(canvas, Qt.Key.Key_Backspace)
    assert len(canvas.shape_points) == 1
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    assert canvas.shape_points == [] and len(doc.history) == 1
    # Lasso: one freehand loop around a circle of radius 30 at (200, 150), filled on release.
    qtbot.keyClick(win, Qt.Key.Key_4)
    qtbot.keyClick(win, Qt.Key.Key_L)
    t = np.linspace(0, 2 * np.pi, 60)
    drag(canvas, [(200 + 30 * np.cos(a), 150 + 30 * np.sin(a)) for a in t])
    lasso = doc.labels == 3
    assert abs(lasso.sum() - np.pi * 30**2) < 0.03 * np.pi * 30**2
    assert lasso[150, 200] and not lasso[150, 235]
    assert len(doc.history) == 2
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not (doc.labels == 3).any() and (doc.labels == 2).sum() == painted.sum()


def test_superpixel_brush_paints_whole_superpixels_computed_in_worker(qtbot, window):
    win, canvas = window, window.canvas
    doc = win.current_doc()
    qtbot.keyClick(win, Qt.Key.Key_2)  # class id 1
    with qtbot.waitSignal(canvas.superpixelsReady, timeout=60_000):
        qtbot.keyClick(win, Qt.Key.Key_S)
    assert canvas.tool == "superpixel"
    sp = canvas.superpixels()
    assert sp is not None and sp.shape == (H, W) and canvas.sp_item.isVisible()
    canvas.set_brush_radius(2)
    drag(canvas, [(60, 60), (80, 62), (100, 64)])
    painted = doc.labels == 1
    touched = np.unique(sp.segments[painted])
    assert len(touched) >= 2
    # Every superpixel the stroke touched is painted entirely, and nothing else.
    np.testing.assert_array_equal(painted, np.isin(sp.segments, touched))
    assert painted.sum() > 3 * 5 * 40  # much more than the thin brush footprint
    assert len(doc.history) == 1
    # Switching back and forth reuses the cached superpixels (no second computation).
    qtbot.waitUntil(lambda: not canvas.busy, timeout=10_000)
    qtbot.keyClick(win, Qt.Key.Key_B)
    qtbot.keyClick(win, Qt.Key.Key_S)
    assert canvas.superpixels() is sp and not canvas.busy


def test_grabcut_rectangle_runs_in_worker_and_is_one_undo_step(qtbot, window):
    win, canvas = window, window.canvas
    doc = win.current_doc()
    qtbot.keyClick(win, Qt.Key.Key_5)  # class id 4
    qtbot.keyClick(win, Qt.Key.Key_G)
    cy, cx, r = DISC
    with qtbot.waitSignal(canvas.grabcutDone, timeout=60_000) as sig:
        drag(canvas, [(cx - r - 12, cy - r - 12), (cx, cy), (cx + r + 12, cy + r + 12)])
        assert canvas.busy  # the work is in a worker; the GUI thread returned at once
    assert sig.args == [True]
    got = doc.labels == 4
    iou = (got & win.disc).sum() / (got | win.disc).sum()
    assert iou > 0.9, iou
    assert len(doc.history) == 1 and doc.dirty
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert (doc.labels == IGNORE_INDEX).all()


def repaint(canvas):
    """Let the scene process pending geometry changes, then paint the viewport now."""
    QApplication.processEvents()
    canvas.viewport().repaint()


def _overlay_alpha(canvas) -> np.ndarray:
    """Alpha of the overlay as drawn, rebuilt from the cached tiles (after a repaint)."""
    ov = canvas.overlay
    h, w = canvas.doc.shape
    out = np.zeros((h, w), np.uint8)
    for (step, ty, tx), (rgba, _) in ov._tiles.items():
        assert step == 1
        out[ty * ov.TILE : ty * ov.TILE + rgba.shape[0], tx * ov.TILE : tx * ov.TILE + rgba.shape[1]] = rgba[..., 3]
    return out


def test_class_show_hide_and_outline_mode(qtbot, window):
    win, canvas = window, window.canvas
    doc = win.current_doc()
    doc.labels[:] = 0
    doc.labels[50:150, 60:200] = 1
    canvas.refresh_labels()
    canvas.resetTransform()  # 1:1 so the tiles hold every pixel
    canvas._auto_fit = False
    repaint(canvas)
    assert (_overlay_alpha(canvas) == 255).all()
    # Untick class "1" (id 0) in the Classes dock: its pixels turn transparent, class id 1 stays.
    item = win.class_panel.legend.item(0)
    item.setCheckState(Qt.CheckState.Unchecked)
    assert canvas.overlay.hidden_classes == {0}
    repaint(canvas)
    a = _overlay_alpha(canvas)
    assert (a[doc.labels == 0] == 0).all() and (a[doc.labels == 1] == 255).all()
    np.testing.assert_array_equal(np.unique(doc.labels), [0, 1])  # labels untouched
    # H toggles the current class (id 0 is current): visible again.
    win.pick_class(0)
    qtbot.keyClick(win, Qt.Key.Key_H)
    assert item.checkState() == Qt.CheckState.Checked and not canvas.overlay.hidden_classes
    # Shift+O: outline mode draws only the boundary between the two classes.
    qtbot.keyClick(win, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)
    assert win.act_outline.isChecked() and canvas.overlay.outline
    repaint(canvas)
    a = _overlay_alpha(canvas)
    drawn = a > 0
    assert drawn[50, 100] and drawn[49, 100] and not drawn[100, 100] and not drawn[10, 10]
    # A 1-px ring each side of the rectangle's border: inside 2(100 + 140) - 4 px, outside 2(100 + 140)
    # (outer corners have no 4-neighbour in the rectangle).
    assert drawn.sum() == 4 * (100 + 140) - 4
    # An edit in outline mode updates the outline around it.
    canvas.set_tool("brush")
    canvas.current_class = 1
    canvas.set_brush_radius(3)
    canvas.begin_stroke(100.0, 20.0)
    canvas.end_stroke()
    repaint(canvas)
    a = _overlay_alpha(canvas)
    assert a[100, 17] > 0 and a[100, 20] == 0 and a[100, 16] > 0
    qtbot.keyClick(win, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)
    assert not canvas.overlay.outline


def test_8k_image_stroke_recolours_only_dirty_tiles(qtbot):
    n = 8192
    classes = ClassSpec(tuple(f"c{i}" for i in range(20)))
    labels = (np.arange(n, dtype=np.uint16)[None, :] // 400 % 20).astype(np.uint8).repeat(n, 0)
    doc = Document("big.png", np.zeros((n, n, 3), np.uint8), classes, labels=labels)
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(900, 700)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_document(doc)
    repaint(canvas)
    ov = canvas.overlay
    # Fitted to the view, a coarse level of detail is drawn from a handful of tiles, not 256 full ones.
    assert ov.last_step >= 8 and ov.stats["built"] <= 4
    canvas._auto_fit = False
    canvas.resetTransform()
    canvas.centerOn(1024, 1024)
    repaint(canvas)
    assert ov.last_step == 1
    visible = {k for k in ov.cached_tiles if k[0] == 1}
    assert 1 <= len(visible) <= 9  # a 900 x 700 view at 1:1 meets at most 3 x 3 tiles of 512 px
    built = ov.stats["built"]
    coarse = {k for k in ov.cached_tiles if k[0] > 1}

    def coarse_at(y, x):  # the cached coarse tile holding pixel (y, x)
        return {k for k in coarse if (k[1], k[2]) == (y // (ov.TILE * k[0]), x // (ov.TILE * k[0]))}

    # A dab inside one tile recolours only the tiles that hold its dirty rectangle: the fine tile (1, 2, 2)
    # and the cached coarse tile of the fitted view.
    canvas.current_class = 7
    canvas.set_brush_radius(10)
    canvas.begin_stroke(1100.0, 1100.0)
    assert len(coarse_at(1100, 1100)) == 1
    assert set(ov.last_recoloured) == {(1, 2, 2)} | coarse_at(1100, 1100)
    canvas.continue_stroke(1110.0, 1130.0)
    assert set(ov.last_recoloured) == {(1, 2, 2)} | coarse_at(1100, 1100)
    canvas.end_stroke()
    repaint(canvas)
    assert ov.stats["built"] == built, "no tile may be rebuilt for a stroke"
    rgba, _ = ov._tiles[(1, 2, 2)]
    px = rgba[1100 - 1024, 1100 - 1024].copy().view(np.uint32)[0]  # premultiplied 0xAARRGGBB, alpha 255
    assert (px >> 24, (px >> 16) & 255, (px >> 8) & 255, px & 255) == (255, *classes.colors[7])
    # A dab on the corner of four tiles recolours exactly those four fine tiles (+ the coarse one).
    canvas.begin_stroke(1023.5, 1023.5)
    canvas.end_stroke()
    assert set(ov.last_recoloured) == {(1, 1, 1), (1, 1, 2), (1, 2, 1), (1, 2, 2)} | coarse_at(1024, 1024)
    assert len(doc.history) == 2


def test_shortcuts_unique_and_help_table_generated_from_actions(qtbot, window):
    win = window
    dup = duplicate_shortcuts(win)
    assert dup == {}, f"the same key is bound to several actions: {dup}"
    rows = action_shortcuts(win)
    keys = {text: k for _, text, k in rows}
    for text, k in [("Polygon", "P"), ("Lasso", "L"), ("Superpixel brush", "S"), ("GrabCut rectangle", "G"),
                    ("Outline mode", "Shift+O"), ("Hide/show current class", "H"), ("Brush", "B"), ("Eraser", "E"),
                    ("Flood fill", "F"), ("Keyboard shortcuts", "F1")]:
        assert keys.get(text) == QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText), text
    # F1 opens the dialog; its table has one row per action with a shortcut.
    seen = {}

    def inspect():
        dlg = QApplication.activeModalWidget()
        seen["dlg"] = dlg
        seen["rows"] = dlg.table.rowCount() if isinstance(dlg, ShortcutsDialog) else -1
        seen["texts"] = {dlg.table.item(i, 1).text() for i in range(dlg.table.rowCount())} if seen["rows"] > 0 else set()
        dlg.close()

    QTimer.singleShot(200, inspect)
    qtbot.keyClick(win, Qt.Key.Key_F1)
    qtbot.waitUntil(lambda: "dlg" in seen, timeout=5000)
    assert seen["rows"] == len(rows)
    assert {"Polygon", "GrabCut rectangle", "Undo", "Class 1"} <= seen["texts"]
