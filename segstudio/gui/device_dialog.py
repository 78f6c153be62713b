"""Help ▸ Device: what hardware SegStudio runs on and how fast the current model predicts there.

:func:`segstudio.engine.devices.device_report` gathers torch device facts (CUDA / MPS availability, GPU name and
memory, CPU threads and RAM); :func:`segstudio.engine.devices.measure_predict_speed` times the current model on
a sample image. The measurement runs in a worker job, so the dialog stays responsive. (No torch in gui/.)
"""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QPushButton, QVBoxLayout

from segstudio.engine.devices import device_report, measure_predict_speed  # noqa: F401  (re-exported)
from segstudio.gui.relay import on_gui
from segstudio.gui.workers import Job, start_job


class DeviceDialog(QDialog):
    """Help ▸ Device: the :func:`device_report` table and a measured predict speed.

    Args:
        predictor: the window's :class:`segstudio.engine.Predictor` (None: no speed measurement).
        image: uint8 (H, W, 3) to time on (the current image or a bundled sample).
        repeats: timed runs.
    Attributes:
        speed: the :func:`measure_predict_speed` result once measured, else None.
    """

    def __init__(self, predictor=None, image: np.ndarray | None = None, repeats: int = 3, parent=None, state=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Device")
        self.predictor, self.image, self.repeats = predictor, image, repeats
        self.state = state  # the window's ProjectState: its job runner times the model (else a plain start_job)
        self.speed: dict | None = None
        self.job: Job | None = None
        lay = QVBoxLayout(self)
        self.form = QFormLayout()
        dev = predictor.device if predictor is not None else "auto"
        for k, v in device_report(dev).items():
            label = QLabel(v)
            label.setWordWrap(True)
            self.form.addRow(f"<b>{k}</b>", label)
        self.speed_label = QLabel("–")
        self.speed_label.setWordWrap(True)
        self.form.addRow("<b>Predict speed</b>", self.speed_label)
        lay.addLayout(self.form)
        self.measure_button = QPushButton("Measure again")
        self.measure_button.clicked.connect(self.measure)
        lay.addWidget(self.measure_button)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.finished.connect(lambda _: self.job is not None and self.job.cancel())

    def measure(self) -> bool:
        """Start timing in a worker; False when there is no model / image or a run is going."""
        if self.predictor is None or self.image is None:
            self.speed_label.setText("No model loaded.")
            return False
        if self.job is not None:
            return False
        predictor, image, repeats = self.predictor, self.image, self.repeats

        def work(job: Job):
            return measure_predict_speed(predictor, image, repeats=repeats, cancel=job.cancel_token)

        h, w = image.shape[:2]
        self.speed_label.setText(f"measuring on a {w}×{h} image…")
        self.measure_button.setEnabled(False)
        self.job = Job("device-speed", work)
        if self.state is not None:  # failures also reach the window's status bar and the log
            self.job.failed.connect(on_gui(self.speed_label.setText, self))
            self.state.start(self.job, "device", on_finished=self._on_speed, on_done=self._on_done)
            return True
        self.job.finished.connect(self._on_speed)
        self.job.failed.connect(self.speed_label.setText)
        self.job.done.connect(self._on_done)
        start_job(self.job, self)
        return True

    def _on_done(self) -> None:
        self.job = None
        self.measure_button.setEnabled(True)

    def _on_speed(self, s: dict) -> None:
        self.speed = s
        name = getattr(self.predictor.loaded, "display_name", "model")
        self.speed_label.setText(
            f"{s['ms']:.0f} ms per {s['width']}×{s['height']} image on {s['device']} "
            f"({s['megapixels_per_s']:.2f} MP/s; best {s['ms_min']:.0f} ms; median of {s['repeats']}) — {name}"
        )
