"""Help ▸ Device: what hardware SegStudio runs on and how fast the current model predicts there.

:func:`device_report` gathers torch device facts (CUDA / MPS availability, GPU name and memory, CPU
threads and RAM); :func:`measure_predict_speed` times the current model on a sample image. The
measurement runs in a worker job, so the dialog stays responsive.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QPushButton, QVBoxLayout

from segstudio.engine import available_devices
from segstudio.gui.relay import on_gui
from segstudio.gui.workers import Job, start_job

_GIB = 1024**3


def _ram_bytes() -> tuple[int | None, int | None]:
    """(total, available) physical memory in bytes from /proc/meminfo or sysconf; None when unknown."""
    try:
        info = {}
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                k, v = line.split(":", 1)
                info[k] = int(v.split()[0]) * 1024
        return info.get("MemTotal"), info.get("MemAvailable")
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), None
    except (ValueError, OSError, AttributeError):
        return None, None


def device_report(device: str | torch.device = "auto") -> dict[str, str]:
    """Human-readable facts about the compute devices, in display order.

    Args:
        device: the device the app predicts on (``"auto"`` → the best available).
    Returns:
        ``{label: text}``: torch version, device in use, CUDA and MPS availability, GPU name(s) with total /
        free memory (CUDA), CPU model, torch threads and logical cores, RAM total / available (GiB).
    """
    from segstudio.engine import resolve_device

    dev = resolve_device(str(device))
    out = {"PyTorch": torch.__version__, "Device in use": str(dev), "Available": ", ".join(available_devices())}
    if torch.cuda.is_available():
        out["CUDA"] = f"yes (CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU)"
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            free, total = torch.cuda.mem_get_info(i)
            out[f"GPU {i}"] = f"{props.name}: {total / _GIB:.1f} GiB total, {free / _GIB:.1f} GiB free"
    else:
        out["CUDA"] = "no" + (f" (PyTorch built with CUDA {torch.version.cuda}, no GPU found)" if torch.version.cuda else " (CPU build of PyTorch)")
    mps = getattr(torch.backends, "mps", None)
    out["MPS (Apple)"] = "yes" if mps is not None and mps.is_available() else "no"
    out["CPU"] = platform.processor() or platform.machine()
    out["CPU threads"] = f"{torch.get_num_threads()} used by torch of {os.cpu_count()} logical cores"
    total, avail = _ram_bytes()
    out["RAM"] = "unknown" if total is None else f"{total / _GIB:.1f} GiB" + (f" ({avail / _GIB:.1f} GiB available)" if avail else "")
    return out


def measure_predict_speed(predictor, image: np.ndarray, repeats: int = 3, warmup: int = 1, cancel=None) -> dict:
    """Time ``predictor.predict(image)``.

    Args:
        predictor: a :class:`segstudio.engine.Predictor`.
        image: uint8 (H, W, 3) RGB.
        repeats: timed runs (≥ 1); warmup: untimed runs first (cuDNN autotune, allocator, caches).
        cancel: optional :class:`~segstudio.engine.CancelToken`, checked between runs.
    Returns:
        ``{"ms": median milliseconds per image, "ms_min", "megapixels_per_s", "height", "width", "device", "repeats"}``.
    Raises:
        ValueError: ``repeats < 1``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    sync = torch.cuda.synchronize if predictor.device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        predictor.predict(image)
    times = []
    for _ in range(repeats):
        if cancel is not None:
            cancel.check()
        sync()
        t0 = time.perf_counter()
        predictor.predict(image)
        sync()
        times.append(time.perf_counter() - t0)
    h, w = image.shape[:2]
    med = float(np.median(times))
    return {
        "ms": 1000 * med,
        "ms_min": 1000 * min(times),
        "megapixels_per_s": h * w / 1e6 / med,
        "height": h,
        "width": w,
        "device": str(predictor.device),
        "repeats": repeats,
    }


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
