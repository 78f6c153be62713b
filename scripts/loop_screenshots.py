"""Grab the labelling-loop screenshots (training, uncertainty, metrics, crf-preview, device) of the real
window on the CamVid samples, offscreen.

Usage: QT_QPA_PLATFORM=offscreen python scripts/loop_screenshots.py [OUT_DIR]   (default docs/screenshots)

The bundled ground truth of the 5 samples is saved as "corrected" labels of 4 of them (one is held out by
the fine-tune for the validation curve only when 5 or more are labelled, so all 5 are saved for the
training shot), then a short fine-tune runs with live curves.
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

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QDockWidget  # noqa: E402

from segstudio.engine import finetune_config, load_checkpoint  # noqa: E402
from segstudio.gui.main_window import MainWindow  # noqa: E402
from segstudio.io import load_classes, read_index_png, save_labels  # noqa: E402
from _qtshots import pump  # noqa: E402



def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    samples = REPO / "resources" / "samples"
    work = Path(tempfile.mkdtemp(prefix="segstudio-loop-shots-"))
    for p in sorted(samples.glob("*.png")):
        shutil.copy(p, work / p.name)
    classes = load_classes(samples / "ground_truth" / "classes.json")
    for p in sorted(work.glob("*.png")):
        save_labels(p, read_index_png(samples / "ground_truth" / p.name), classes)

    win = MainWindow(load_checkpoint())
    win.resize(1500, 980)
    win.show()
    win.open_folder(work)
    loop = win.loop
    idle = lambda: win.job is None and not loop.busy()  # noqa: E731
    pump(app, idle)

    # 1. Training: live curves while a short fine-tune runs (4 training images, 1 held out).
    win.finetune_config = finetune_config(max_steps=16, batch_size=2, crop_size=(160, 224), lr=5e-4)
    win.finetune()
    panel = loop.training_panel
    pump(app, lambda: len(panel.steps) >= 11)
    win.grab().save(str(out / "training.png"))
    pump(app, lambda: panel.state != "running")
    pump(app, idle)

    # 2. Metrics of the fine-tuned model on the corrected images (train vs held-out), as a floating dock.
    dock = loop.docks["Metrics"]
    dock.setFloating(True)
    dock.resize(760, 900)
    dock.show()
    loop.metrics.scope.setCurrentText("all")
    pump(app, lambda: loop.metrics.result is not None)
    dock.grab().save(str(out / "metrics.png"))
    dock.setFloating(False)

    # 3. Uncertainty: three images lose their labels so there is something to rank; heat-map on (label
    # overlay hidden so the heat-map reads clearly), Correct-next dock.
    for p in sorted(work.glob("*.png"))[1:4]:
        (work / "labels" / p.name).unlink()
    win.open_folder(work)
    pump(app, idle)
    for d in win.findChildren(QDockWidget):  # the canvas gets the height: no bottom docks in these shots
        if win.dockWidgetArea(d) == Qt.DockWidgetArea.BottomDockWidgetArea:
            d.hide()
    loop.show_correct_next()
    pump(app, idle)
    loop.go_to(loop.correct_next.ranking[0][0])  # "Open next": the most uncertain image
    pump(app, idle)
    win.class_panel.show_overlay.setChecked(False)
    loop.set_heatmap_visible(True)
    pump(app, lambda: loop.heatmap.umap is not None and idle())
    win.grab().save(str(out / "uncertainty.png"))
    loop.set_heatmap_visible(False)
    win.class_panel.show_overlay.setChecked(True)

    # 4. CRF preview on the current (predicted) image, before Accept.
    loop.docks["Correct next"].hide()
    loop.show_refine()
    loop.postprocess_panel.min_area.setValue(150)
    loop.preview.run()
    pump(app, lambda: loop.preview.preview is not None and loop.preview.job is None)
    win.grab().save(str(out / "crf-preview.png"))
    loop.preview.discard()

    # 5. Help ▸ Device with a measured predict speed.
    dlg = loop.show_device()
    dlg.resize(620, dlg.sizeHint().height())
    pump(app, lambda: dlg.speed is not None)
    dlg.grab().save(str(out / "device.png"))
    print(f"wrote training/metrics/uncertainty/crf-preview/device.png to {out}; device: {dlg.speed_label.text()}")
    dlg.close()
    win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
