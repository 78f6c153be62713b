"""Screenshots of issue 19's window (first start) and review queue, grabbed from a real X server.

Usage (an X server at 1920×1080, e.g. ``Xvfb :61 -screen 0 1920x1080x24 &``)::

    DISPLAY=:61 QT_QPA_PLATFORM=xcb python scripts/review_screenshots.py [OUT_DIR]   (default docs/screenshots)

The settings live in a temporary folder (a first start, nothing of the user's is read or written). Picture 1:
the window as it first opens on the bundled CamVid samples. Picture 2: Model ▸ Predict folder and review
(Ctrl+Shift+R): the samples predicted and queued most uncertain first; the first one accepted with Enter (an X
key event from ``xdotool``), the second shown. Each picture is the X server's pixels (``QScreen.grabWindow``
of the root window, cropped to the window frame).
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

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from segstudio.engine import load_checkpoint  # noqa: E402
from segstudio.gui.main_window import MainWindow  # noqa: E402
import _qtshots  # noqa: E402
from _qtshots import grab  # noqa: E402

pump = functools.partial(_qtshots.pump, settle=0.5)

SAMPLES = REPO / "resources" / "samples"



def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    settings = tempfile.mkdtemp(prefix="segstudio-settings-")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, settings)
    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="segstudio-review-"))
    for p in sorted(SAMPLES.glob("*.png")):
        shutil.copy(p, work / p.name)
    win = MainWindow(load_checkpoint(None))
    win.show()
    pump(app, lambda: win.isVisible())
    win.open_folder(work)
    pump(app, lambda: win.job is None, settle=1.0)
    x, y = win.canvas.mapToGlobal(win.canvas.rect().center()).toTuple()
    subprocess.run(["xdotool", "mousemove", str(x), str(y)], check=False)
    pump(app, settle=0.8)
    grab(app, win, out / "review-1-first-start.png")

    win.review.start()
    pump(app, lambda: win.job is None and win.review.active, settle=1.0)
    wid = str(int(win.winId()))
    subprocess.run(["xdotool", "windowactivate", "--sync", wid], check=False)
    win.canvas.setFocus()
    pump(app, settle=0.3)
    subprocess.run(["xdotool", "key", "--window", wid, "Return"], check=False)
    pump(app, lambda: win.review.pos == 1, timeout=20, settle=1.0)
    subprocess.run(["xdotool", "mousemove", str(x + 60), str(y + 40)], check=False)
    pump(app, settle=0.8)
    print("review position", win.review.pos, "outcomes", {p.name: o for p, o in win.review.outcome.items()})
    grab(app, win, out / "review-2-review-queue.png")
    win.state.prompts.ask_yes_no = lambda *a, **k: True
    win.close()
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(settings, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    sys.exit(main())
