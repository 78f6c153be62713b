"""Screenshots of the labelling tools (issue 7) in the real main window on a CamVid sample (offscreen Qt).

Usage: QT_QPA_PLATFORM=offscreen python scripts/screenshots_tools.py [OUT_DIR]   (default docs/screenshots)

Writes tools-polygon.png, tools-lasso.png, tools-superpixel.png, tools-grabcut.png, tools-hide-class.png,
tools-outline.png, tools-shortcuts.png and tools-8k.png. Every tool is driven the way a user drives it: its
keyboard shortcut, then mouse events on the canvas viewport.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PySide6.QtCore import QPointF, Qt  # noqa: E402
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from segstudio.core import ClassSpec, Document, default_palette  # noqa: E402
from segstudio.engine import load_checkpoint  # noqa: E402
from segstudio.gui.canvas import Canvas  # noqa: E402
from segstudio.gui.help_dialog import ShortcutsDialog  # noqa: E402
from segstudio.gui.main_window import MainWindow  # noqa: E402
from _qtshots import pump  # noqa: E402

SAMPLE = "Seq05VD_f00660.png"  # a bundled sample (the stroke positions were chosen on the previous sample 0016E5_08079)
BUILDING, POLE, ROAD, PAVEMENT = 1, 2, 3, 4



def mouse(canvas, kind, x, y, buttons=Qt.MouseButton.LeftButton):
    pos = QPointF(canvas.mapFromScene(QPointF(x + 0.5, y + 0.5)))
    ev = QMouseEvent(kind, pos, canvas.mapToGlobal(pos), Qt.MouseButton.LeftButton, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(canvas.viewport(), ev)


def click(canvas, x, y):
    mouse(canvas, QMouseEvent.Type.MouseButtonPress, x, y)
    mouse(canvas, QMouseEvent.Type.MouseButtonRelease, x, y, Qt.MouseButton.NoButton)


def drag(canvas, pts, release=True):
    mouse(canvas, QMouseEvent.Type.MouseButtonPress, *pts[0])
    for p in pts[1:]:
        mouse(canvas, QMouseEvent.Type.MouseMove, *p)
    if release:
        mouse(canvas, QMouseEvent.Type.MouseButtonRelease, *pts[-1], Qt.MouseButton.NoButton)


def key(win, k, mod=Qt.KeyboardModifier.NoModifier, text=""):
    for t in (QKeyEvent.Type.KeyPress, QKeyEvent.Type.KeyRelease):
        QApplication.sendEvent(win.canvas, QKeyEvent(t, k, mod, text))
    QApplication.processEvents()


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="segstudio-tools-"))
    shutil.copy(REPO / "resources" / "samples" / SAMPLE, work / SAMPLE)
    win = MainWindow(load_checkpoint())
    win.resize(1400, 820)
    win.show()
    win.open_folder(work)
    pump(app, lambda: win.job is None and win.current_doc().source == "predicted")
    win.class_panel.opacity.setValue(55)
    canvas, doc = win.canvas, win.current_doc()
    canvas.setFocus()

    # Polygon in progress around the red bike-lane box (P, then clicks; the last edge follows the mouse).
    win.pick_class(ROAD)
    key(win, Qt.Key.Key_P, text="p")
    for x, y in [(147, 264), (292, 261), (350, 320)]:
        click(canvas, x, y)
    mouse(canvas, QMouseEvent.Type.MouseMove, 146, 320, Qt.MouseButton.NoButton)
    win.message("polygon (P): click vertices · Enter / double-click / first vertex closes · Esc cancels")
    pump(app)
    win.grab().save(str(out / "tools-polygon.png"))
    click(canvas, 146, 320)
    key(win, Qt.Key.Key_Return)

    # Lasso around the building facade mislabelled as Tree, top left (L, one freehand drag).
    win.pick_class(BUILDING)
    key(win, Qt.Key.Key_L, text="l")
    t = np.linspace(0, 2 * np.pi, 80)
    drag(canvas, [(62 + 58 * np.cos(a) + 3 * np.sin(5 * a), 40 + 34 * np.sin(a)) for a in t])
    win.message(f"lasso (L): the facade mislabelled as Tree is now Building · {len(doc.history)} edit(s), Ctrl+Z undoes each")
    pump(app)
    win.grab().save(str(out / "tools-lasso.png"))

    # Superpixel brush over the pavement on the right (S; SLIC runs in a worker, then the stroke).
    win.pick_class(PAVEMENT)
    key(win, Qt.Key.Key_S, text="s")
    pump(app, lambda: canvas.superpixels() is not None, 120)
    canvas.set_brush_radius(3)
    drag(canvas, [(x, 215 + 0.1 * (x - 300)) for x in range(300, 460, 4)])
    canvas._update_cursor((230, 460))
    win.message(f"superpixel brush (S): {canvas.superpixels().count} SLIC superpixels; the stroke painted every one it touched")
    pump(app)
    win.grab().save(str(out / "tools-superpixel.png"))

    # GrabCut around the lamp post on the right, missed by the model (G, drag a rectangle; runs in a worker).
    # A one-pixel Pole scribble along it anchors GrabCut's foreground colour model.
    win.pick_class(POLE)
    canvas._auto_fit = False  # zoom x3 on the post, as a user would for a thin object
    canvas.scale(3, 3)
    canvas.centerOn(365, 175)
    pump(app)
    key(win, Qt.Key.Key_B, text="b")
    canvas.set_brush_radius(1)
    drag(canvas, [(365, y) for y in range(140, 216, 5)])
    before = (doc.labels == POLE).sum()
    key(win, Qt.Key.Key_G, text="g")
    drag(canvas, [(357, 127), (365, 170), (374, 224)], release=False)
    pump(app)
    win.grab().save(str(out / "tools-grabcut-drag.png"))
    mouse(canvas, QMouseEvent.Type.MouseButtonRelease, 374, 224, Qt.MouseButton.NoButton)
    pump(app, lambda: not canvas.busy, 120)
    win.message(f"GrabCut (G): the 1-px Pole scribble grew by {int((doc.labels == POLE).sum() - before)} px to the lamp post — one undo step")
    pump(app)
    win.grab().save(str(out / "tools-grabcut.png"))
    canvas.zoom_fit()

    # Per-class show/hide: untick Road and Building in the Classes dock.
    win.class_panel.set_class_visible(ROAD, False)
    win.class_panel.set_class_visible(BUILDING, False)
    win.message("Road and Building hidden (checkboxes in the Classes dock; H toggles the current class)")
    pump(app)
    win.grab().save(str(out / "tools-hide-class.png"))
    win.class_panel.set_class_visible(ROAD, True)
    win.class_panel.set_class_visible(BUILDING, True)

    # Outline mode (Shift+O).
    key(win, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier, "O")
    win.class_panel.opacity.setValue(100)
    win.message("outline mode (Shift+O): only class boundaries are drawn")
    pump(app)
    win.grab().save(str(out / "tools-outline.png"))
    key(win, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier, "O")

    # Help > Keyboard shortcuts (F1), generated from the window's actions.
    dlg = ShortcutsDialog(win)
    dlg.resize(560, 900)
    dlg.show()
    pump(app)
    dlg.grab().save(str(out / "tools-shortcuts.png"))
    dlg.close()
    win.close()
    shutil.rmtree(work, ignore_errors=True)

    # 8192 x 8192: a synthetic image, 20 classes, zoomed to 1:1 after a stroke; tiles are built only where drawn.
    n = 8192
    yy, xx = np.mgrid[0:n:8, 0:n:8]
    small = np.stack([(xx * 255 // n), (yy * 255 // n), ((xx + yy) * 127 // n)], -1).astype(np.uint8)
    image = small.repeat(8, 0).repeat(8, 1)
    labels = ((np.add.outer(np.arange(n) // 700, np.arange(n) // 900)) % 20).astype(np.uint8)
    classes = ClassSpec(tuple(f"c{i}" for i in range(20)), tuple(map(tuple, default_palette(20))))
    big = Document(work / "synthetic-8k.png", image, classes, labels=labels)
    cv = Canvas()
    cv.resize(1000, 700)
    cv.show()
    cv.set_document(big)
    pump(app)
    cv._auto_fit = False
    cv.resetTransform()
    cv.scale(0.5, 0.5)
    cv.centerOn(4100, 4100)
    pump(app)
    cv.current_class = 19
    cv.set_brush_radius(40)
    cv.begin_stroke(3800.0, 3700.0)
    for i in range(60):
        cv.continue_stroke(3800.0 + 10 * i, 3700.0 + 12 * i + 40 * np.sin(i / 6))
    cv.end_stroke()
    pump(app)
    ov = cv.overlay
    caption = (f"8192 x 8192 image, 20 classes, zoom 50 %: {len(ov.cached_tiles)} overlay tiles cached (level of detail "
               f"{ov.last_step}), {ov.stats['built']} built in all; the 61-dab stroke recoloured {ov.stats['recoloured']} "
               f"tile parts, never a whole tile")
    print(caption)
    shot = cv.grab()
    painter = QPainter(shot)
    painter.fillRect(0, 0, shot.width(), 26, QColor(0, 0, 0, 170))
    painter.setPen(QColor(255, 255, 255))
    painter.drawText(8, 18, caption)
    painter.end()
    shot.save(str(out / "tools-8k.png"))
    cv.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
