"""Screenshots of issue 17's class-edit and model-switch flows, grabbed from a real X server.

Usage (an X server, e.g. ``Xvfb :58 -screen 0 1920x1300x24 &``)::

    DISPLAY=:58 QT_QPA_PLATFORM=xcb python scripts/state_screenshots.py [OUT_DIR]   (default docs/screenshots)

The issue's scenario on three ISBI-2012 EM images in a folder of their own (no classes saved): the bundled
street model (CamVid) predicts them; the user, painting with class 5, renames Sky→membrane and Building→cell
and deletes the nine others; then switches to the bundled ISBI U-Net, then back to the street model and presses
Ctrl+P (sent with ``xdotool`` to the X window). Each picture is the window as the X server shows it
(``QScreen.grabWindow`` of the root window, cropped to the window).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from segstudio.core import IGNORE_INDEX, ClassSpec  # noqa: E402
from segstudio.engine import load_checkpoint  # noqa: E402
from segstudio.gui.main_window import MainWindow  # noqa: E402
import _qtshots  # noqa: E402
from _qtshots import grab  # noqa: E402

pump = functools.partial(_qtshots.pump, settle=0.3)

ISBI = REPO.parent / "shared" / "datasets" / "isbi2012_membrane" / "images"



def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="segstudio-em-"))
    for name in ("00.png", "01.png", "02.png"):
        shutil.copy(ISBI / name, work / name)
    win = MainWindow(load_checkpoint())  # the bundled street model (CamVid, 11 classes)
    win.resize(1600, 1160)
    win.move(0, 0)
    win.show()
    pump(app, lambda: win.isVisible())
    win.open_folder(work)
    pump(app, lambda: win.job is None and win.current_doc() is not None and win.current_doc().source == "predicted")
    win.pick_class(4)  # painting with class 5 (Pavement) when the classes change
    pump(app)
    grab(app, win, out / "state-1-street-model-on-em.png")

    # Class edit: Sky -> membrane, Building -> cell, the other nine deleted (colours left as they were).
    old = win.classes
    new = ClassSpec(("membrane", "cell"), (old.colors[0], old.colors[1]))
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    lut[[0, 1]] = [0, 1]
    win.project_ctl.apply_classes(new, lut, True, "renamed Sky→membrane, Building→cell; deleted 9", confirm=False)
    pump(app, lambda: win.job is None)
    doc = win.current_doc()
    c = win.canvas.current_class
    doc_before = doc.labels.copy()
    win.canvas.set_brush_radius(9)
    win.canvas.begin_stroke(120, 90)
    for x in range(90, 420, 10):
        win.canvas.continue_stroke(120 + 0.25 * (x - 90), x)
    win.canvas.end_stroke()
    win.message(
        f"classes updated: current class {c + 1} {win.classes.names[c]}; predicted pixels reset to unlabelled; "
        f"{int((doc.labels != doc_before).sum())} px painted"
    )
    pump(app)
    grab(app, win, out / "state-2-after-class-edit.png")

    # Model switch to the bundled ISBI U-Net (membrane/cell): re-predicted around the stroke.
    idx = win.state.find_model("bundled: ISBI-2012 U-Net")
    win.model_panel.model_combo.setCurrentIndex(idx)
    win.state.pick_model(idx)
    pump(app, lambda: win.job is None and win.current_doc().source == "predicted", settle=0.6)
    grab(app, win, out / "state-3-model-switch-repredicted.png")

    # Back to the street model: no class in common, the overlay is marked stale; Ctrl+P (real X key event).
    idx = win.state.find_model(load_checkpoint().display_name)
    win.model_panel.model_combo.setCurrentIndex(idx)
    win.state.pick_model(idx)
    pump(app)
    win.activateWindow()
    win.canvas.setFocus()
    pump(app)
    if shutil.which("xdotool") and os.environ.get("DISPLAY"):
        wid = subprocess.run(["xdotool", "search", "--name", "SegStudio"], capture_output=True, text=True).stdout.split()
        if wid:
            subprocess.run(["xdotool", "key", "--window", wid[0], "ctrl+p"], check=False)
    pump(app, lambda: win.job is None, settle=0.8)
    grab(app, win, out / "state-4-model-switch-stale.png")
    win.close()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
