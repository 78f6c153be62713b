"""Before/after screenshots of the one-click fine-tune on a DRIVE fundus image (issue 16), offscreen.

Usage: QT_QPA_PLATFORM=offscreen python scripts/drive_screenshots.py [OUT_DIR] [--budget MIN]   (default docs/screenshots)

An app folder gets the first 8 DRIVE ``train.txt`` images with their masks saved as the user's corrected labels
and one DRIVE test image without labels. The bundled CamVid model cannot predict DRIVE's classes, so:

1. *before*: the one-click fine-tune as it was before issue 16 (40 steps, batch 4, 256² crops, lr 2e-4, plain
   CE, BatchNorm frozen), then the test image predicted → ``drive-before.png``;
2. the current one-click fine-tune (``finetune_config()``: the recipe within the budget, default the CPU's 3
   min), started from the same bundled model, with a screenshot of the live curves → ``drive-training.png``;
3. *after*: the test image predicted by that version → ``drive-after.png``.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("SEGSTUDIO_SHARED", REPO.parent / "shared"))

from PySide6.QtWidgets import QApplication, QDockWidget  # noqa: E402

from segstudio.engine import TrainConfig, default_checkpoint, finetune_config, load_checkpoint  # noqa: E402
from segstudio.gui.main_window import MainWindow  # noqa: E402
import _qtshots  # noqa: E402

pump = functools.partial(_qtshots.pump, timeout=1800)  # a fine-tune runs inside: allow 30 min


OLD_ONE_CLICK = TrainConfig(
    epochs=1000, batch_size=4, lr=2e-4, crop_size=(256, 256), scale_range=(0.75, 1.5), freeze_bn=True, max_steps=40,
    holdout_fraction=0.2,
)
"""``finetune_config()`` before issue 16."""



def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default=str(REPO / "docs" / "screenshots"))
    ap.add_argument("--budget", type=float, help="minutes (default: the device's default budget)")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    drive = SHARED / "datasets" / "drive"
    work = Path(tempfile.mkdtemp(prefix="segstudio-drive-shots-"))
    (work / "labels").mkdir()
    shutil.copy(drive / "classes.json", work / "labels" / "classes.json")
    for stem in (drive / "train.txt").read_text().split()[:8]:
        shutil.copy(drive / "images" / f"{stem}.png", work / f"{stem}.png")
        shutil.copy(drive / "masks" / f"{stem}.png", work / "labels" / f"{stem}.png")
    test = (drive / "test.txt").read_text().split()[0]
    shutil.copy(drive / "images" / f"{test}.png", work / f"zz_{test}.png")  # sorts last: the unlabelled image

    app = QApplication.instance() or QApplication([])
    win = MainWindow(load_checkpoint())
    win.resize(1500, 980)
    win.show()
    win.open_folder(work)
    loop = win.loop
    idle = lambda: win.job is None and not loop.busy()  # noqa: E731
    pump(app, idle)

    def shot_test_image(name: str) -> None:
        loop.go_to(work / f"zz_{test}.png")
        pump(app, idle)
        win.predict_current()
        pump(app, idle)
        for d in win.findChildren(QDockWidget):
            if d.objectName() == "Metrics":
                d.hide()
        win.grab().save(str(out / name))

    t0 = time.time()
    win.finetune_config = OLD_ONE_CLICK
    win.finetune()
    pump(app, lambda: loop.training_panel.state != "running" and idle())
    shot_test_image("drive-before.png")
    before_s = time.time() - t0

    win.set_model(load_checkpoint(default_checkpoint()), "default")  # the new recipe starts from the same model
    pump(app, idle)
    win.finetune_config = finetune_config() if a.budget is None else finetune_config(budget_s=60 * a.budget)
    t0 = time.time()
    win.finetune()
    panel = loop.training_panel
    pump(app, lambda: len(panel.val_miou) >= 3 or panel.state != "running")
    win.grab().save(str(out / "drive-training.png"))
    pump(app, lambda: panel.state != "running" and idle())
    shot_test_image("drive-after.png")
    print(f"old one-click {before_s:.0f} s, recipe {time.time() - t0:.0f} s; wrote drive-before/training/after.png to {out}")
    win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
