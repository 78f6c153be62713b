"""Grab the README's screenshots of the real main window on CamVid sample images (offscreen Qt).

Usage: QT_QPA_PLATFORM=offscreen python scripts/screenshots.py [OUT_DIR] [--first-start-only]   (default docs/screenshots)

The offscreen platform's screen is 800×800 and the window now stays within its screen, so the README's picture is
taken on a virtual 1440×900 X screen: ``QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1440x900x24" python
scripts/screenshots.py --first-start-only``.

``--first-start-only`` writes only ``main-overlay.png`` (the bundled samples with the default model's prediction, the
README's first picture); the mid-correction and fine-tune shots paint at positions chosen for a particular frame.
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

from PySide6.QtWidgets import QApplication  # noqa: E402

from segstudio.engine import finetune_config, load_checkpoint  # noqa: E402
from segstudio.gui.main_window import MainWindow  # noqa: E402
from _qtshots import pump  # noqa: E402



def main() -> int:
    argv = [a for a in sys.argv[1:] if a != "--first-start-only"]
    first_start_only = len(argv) < len(sys.argv) - 1
    out = Path(argv[0] if argv else REPO / "docs" / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="segstudio-shots-"))
    for p in sorted((REPO / "resources" / "samples").glob("*.png")):
        shutil.copy(p, work / p.name)
    win = MainWindow(load_checkpoint())
    win.resize(1400, 820)
    win.show()
    win.open_folder(work)
    win.files.setCurrentRow(2)
    pump(app, lambda: win.job is None and win.current_doc().source == "predicted")
    win.class_panel.opacity.setValue(55)
    win.grab().save(str(out / "main-overlay.png"))
    if first_start_only:
        win.close()
        shutil.rmtree(work, ignore_errors=True)
        print(f"wrote {out / 'main-overlay.png'}")
        return 0

    # Mid-correction: the user paints Road (class id 3) over bike-lane specks mis-predicted as Car, then
    # traces the lamp post on the right (missed by the model) with a thin Pole brush (class id 2).
    doc = win.current_doc()
    win.pick_class(3)
    win.canvas.set_brush_radius(7)
    win.canvas.begin_stroke(295, 250)
    for x in range(250, 288, 3):
        win.canvas.continue_stroke(295, x)
    win.canvas.end_stroke()
    win.pick_class(2)
    win.canvas.set_brush_radius(3)
    win.canvas.begin_stroke(132, 373)
    for y in range(132, 218, 3):
        win.canvas.continue_stroke(y, 373)
    win.canvas.end_stroke()
    win.canvas._update_cursor((218, 373))
    win.canvas.cursor_item.show()
    win.message(f"brush · class Pole · radius 3 px · {len(doc.history)} edit(s) — Ctrl+Z to undo")
    pump(app, lambda: True, 0)
    win.grab().save(str(out / "mid-correction.png"))
    win.save_current()

    # During fine-tune.
    win.finetune_config = finetune_config(max_steps=30, batch_size=2)
    win.finetune()
    pump(app, lambda: win.progress.value() >= 3 or win.job is None)
    win.grab().save(str(out / "fine-tune.png"))
    win.cancel_job()
    pump(app, lambda: win.job is None)
    win.close()
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote screenshots to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
