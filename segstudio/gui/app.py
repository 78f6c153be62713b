"""Start the app: ``segstudio gui [FOLDER] [--checkpoint PATH]`` or ``segstudio`` alone."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR

SAMPLES = DEFAULT_MODEL_DIR.parent / "samples"


def user_samples_dir() -> Path:
    """A writable copy of the bundled samples (``$SEGSTUDIO_HOME`` or ``~/SegStudio``/samples).

    Labels the user saves go beside this copy, never into the installed package.
    """
    home = Path(os.environ.get("SEGSTUDIO_HOME", Path.home() / "SegStudio"))
    dst = home / "samples"
    if not dst.is_dir():
        dst.mkdir(parents=True)
        for p in SAMPLES.iterdir():
            if p.is_file():
                shutil.copy2(p, dst / p.name)
    return dst


def run(folder: str | None = None, checkpoint: str | None = None) -> int:
    from PySide6.QtWidgets import QApplication, QMessageBox

    from segstudio.engine import CheckpointError, load_checkpoint
    from segstudio.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("SegStudio")
    try:
        model = load_checkpoint(checkpoint)
    except CheckpointError as exc:
        QMessageBox.critical(None, "SegStudio", f"Cannot load the model: {exc}")
        model = None
    window = MainWindow(model)
    window.show()
    window.open_folder(folder or user_samples_dir())
    return app.exec()
