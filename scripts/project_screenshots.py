"""Screenshots of the project features (class editor, versions + A/B view, project view) on CamVid samples.

Usage: QT_QPA_PLATFORM=offscreen python scripts/project_screenshots.py [OUT_DIR]   (default docs/screenshots)

Runs the real window: predicts, paints corrections, saves, marks an image reviewed, fine-tunes a real new
version (30 steps), compares it with the bundled model on an unlabelled image. Active seconds come from
the real ActivityClock fed with a simulated clock (a script has no human pauses).
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

from PySide6.QtGui import QColor, QImage, QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from segstudio.engine import finetune_config, load_checkpoint  # noqa: E402
from segstudio.gui.class_editor import ClassEditorDialog  # noqa: E402
from segstudio.gui.main_window import MainWindow  # noqa: E402
from segstudio.io.project import ActivityClock  # noqa: E402
from _qtshots import pump  # noqa: E402



def side_by_side(a: QImage, b: QImage) -> QImage:
    out = QImage(a.width() + b.width() + 8, max(a.height(), b.height()), QImage.Format.Format_RGB32)
    out.fill(QColor(60, 60, 60))
    p = QPainter(out)
    p.drawImage(0, 0, a)
    p.drawImage(a.width() + 8, 0, b)
    p.end()
    return out


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="segstudio-project-"))
    for p in sorted((REPO / "resources" / "samples").glob("*.png")):
        shutil.copy(p, work / p.name)
    win = MainWindow(load_checkpoint())
    win.resize(1500, 900)
    win.show()
    ctl = win.project_ctl
    t = [0.0]
    win.open_folder(work)
    ctl.clock = ActivityClock(idle_s=30, now=lambda: t[0])
    ctl.clock.start()
    pump(app, lambda: win.job is None and win.current_doc().source == "predicted")

    # Image 0: a few corrections (Road over specks, a Pole traced), 40 s of simulated work; saved.
    for cls, radius, pts in ((3, 7, [(295, x) for x in range(250, 288, 3)]), (2, 3, [(y, 373) for y in range(132, 218, 3)])):
        win.pick_class(cls)
        win.canvas.set_brush_radius(radius)
        t[0] += 20.0
        ctl.eventFilter(win.canvas.viewport(), _FakePress())
        win.canvas.begin_stroke(*pts[0])
        for y, x in pts[1:]:
            win.canvas.continue_stroke(y, x)
        win.canvas.end_stroke()
    win.save_current()
    # Image 1: checked and approved.
    win.files.setCurrentRow(1)
    pump(app, lambda: win.job is None and win.current_doc().source == "predicted")
    t[0] += 12.0
    ctl.mark_reviewed()
    # Image 2: a bigger correction: paint the car on the left as Car.
    win.files.setCurrentRow(2)
    pump(app, lambda: win.job is None and win.current_doc().source == "predicted")
    win.pick_class(8)
    win.canvas.set_brush_radius(12)
    for k in range(4):
        t[0] += 9.0
        ctl.eventFilter(win.canvas.viewport(), _FakePress())
        win.canvas.begin_stroke(250 + 10 * k, 20)
        for x in range(20, 120, 4):
            win.canvas.continue_stroke(250 + 10 * k, x)
        win.canvas.end_stroke()
    win.save_current()

    # Fine-tune a real new version on the three labelled images.
    win.finetune_config = finetune_config(max_steps=30, batch_size=2)
    win.finetune()
    pump(app, lambda: win.job is None and win.model.path.parent.name == "v001")
    pump(app, lambda: win.job is None)
    win.files.setCurrentRow(3)
    pump(app, lambda: win.job is None and win.current_doc().source == "predicted")
    win.class_panel.opacity.setValue(60)
    win.files.setCurrentRow(3)
    ctl.docks["Project"].raise_()
    pump(app, lambda: True, 0)
    win.grab().save(str(out / "project.png"))

    # A/B: the bundled model (A) vs the fine-tuned v001 (B) on image 3.
    default_name = win.model_panel.model_combo.itemText(0)
    ctl.compare(default_name, "v001")
    pump(app, lambda: ctl.ab_job is None and ctl.ab_dialog is not None)
    d = ctl.ab_dialog
    d.resize(960, 700)
    d.slider.setValue(520)
    pump(app, lambda: True, 0)
    side_by_side(ctl.docks["Versions"].grab().toImage(), d.grab().toImage()).save(str(out / "versions-ab.png"))

    # Class editor: Car moved to the top, Road renamed, a new class added, mid-edit.
    dlg = ClassEditorDialog(win.classes, win)
    dlg.move(8, -8)
    dlg.rename(4, "Street")
    dlg.delete(dlg.classes().names.index("Fence"))
    dlg.add_class("Bike lane", (255, 128, 0))
    dlg.list.setCurrentRow(dlg.list.count() - 1)
    dlg.error.setText("")
    dlg.show()
    pump(app, lambda: True, 0)
    dlg.grab().save(str(out / "class-editor.png"))
    dlg.reject()
    print("project summary:", ctl.project.summary())
    win.close()
    shutil.rmtree(work, ignore_errors=True)
    return 0


class _FakePress:
    """Minimal stand-in for a mouse-press QEvent fed to the controller's activity filter."""

    def type(self):
        from PySide6.QtCore import QEvent

        return QEvent.Type.MouseButtonPress


if __name__ == "__main__":
    raise SystemExit(main())
