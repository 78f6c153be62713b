"""Training dock: live loss and validation-mIoU curves (pyqtgraph), ETA, Cancel.

The trainer runs in a :class:`~segstudio.gui.workers.Job`; its callbacks (``"step"``, ``"epoch"``,
``"checkpoint"``, ``"done"``; see :data:`segstudio.engine.trainer.Callback`) are forwarded through the job's
``result`` signal, so :meth:`TrainingPanel.on_event` always runs on the GUI thread.
"""

from __future__ import annotations

import time
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


def format_eta(seconds: float | None) -> str:
    """``"1:05"`` / ``"1:02:03"`` for a duration in seconds; ``"–"`` when unknown (None, NaN, negative)."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class StepTimer:
    """ETA from the timing of training steps.

    The first step (model warm-up, data-loader start) is excluded; the remaining time is
    ``(total − done) × mean seconds per step`` over the steps since then.

    Args:
        clock: time source in seconds (tests pass a fake one).
    """

    def __init__(self, clock=time.perf_counter) -> None:
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        """Forget the timing of a previous run."""
        self._t0: float | None = None
        self._step0 = 0
        self.seconds_per_step: float | None = None

    def step(self, done: int, total: int) -> float | None:
        """Record that ``done`` of ``total`` steps are finished; returns the ETA in seconds or None (unknown yet)."""
        now = self.clock()
        if self._t0 is None:
            self._t0, self._step0 = now, done
            return None
        if done > self._step0:
            self.seconds_per_step = (now - self._t0) / (done - self._step0)
        if self.seconds_per_step is None:
            return None
        return max(0, total - done) * self.seconds_per_step


class TrainingPanel(QWidget):
    """Live view of a fine-tune: loss per step, validation mIoU per epoch, ETA, Cancel.

    Signals:
        cancelRequested(): the Cancel button was pressed while training.
        optionsRequested(): "Fine-tune with options…" was pressed.
        useCheckpointRequested(str): path of the last good checkpoint of a cancelled run to switch to.

    Attributes:
        steps, losses: x/y data of the loss curve (global step, loss).
        epochs, val_miou: x/y data of the validation curve (epoch, mIoU in %).
        last_checkpoint: ``model.safetensors`` of the latest ``"checkpoint"`` event, or None.
        state: ``"idle"``, ``"running"``, ``"done"``, ``"cancelled"`` or ``"failed"``.
    """

    cancelRequested = Signal()
    optionsRequested = Signal()
    useCheckpointRequested = Signal(str)

    def __init__(self, parent=None, clock=time.perf_counter) -> None:
        super().__init__(parent)
        self.timer = StepTimer(clock)
        lay = QVBoxLayout(self)
        self.title = QLabel("No training yet. Model ▸ Fine-tune (Ctrl+T) trains on your saved labels.")
        self.title.setWordWrap(True)
        lay.addWidget(self.title)
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        row.addWidget(self.progress, 1)
        self.eta = QLabel("ETA –")
        row.addWidget(self.eta)
        lay.addLayout(row)

        pg.setConfigOptions(antialias=True, background="w", foreground="k")
        self.loss_plot = pg.PlotWidget()
        self.loss_plot.setTitle("training loss")
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.showGrid(x=True, y=True, alpha=0.3)
        self.loss_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#1f77b4", width=2))
        self.miou_plot = pg.PlotWidget()
        self.miou_plot.setTitle("validation mIoU (%) on images set aside")
        self.miou_plot.setLabel("bottom", "epoch")
        self.miou_plot.showGrid(x=True, y=True, alpha=0.3)
        self.miou_curve = self.miou_plot.plot(
            [], [], pen=pg.mkPen("#d62728", width=2), symbol="o", symbolSize=6, symbolBrush="#d62728"
        )
        plots = QHBoxLayout()
        for p in (self.loss_plot, self.miou_plot):
            p.setMinimumHeight(140)
            plots.addWidget(p, 1)
        lay.addLayout(plots, 1)
        self.val_note = QLabel()
        self.val_note.setWordWrap(True)
        lay.addWidget(self.val_note)

        buttons = QHBoxLayout()
        self.options_button = QPushButton("Fine-tune with options…")
        self.options_button.clicked.connect(self.optionsRequested)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._on_cancel)
        self.use_checkpoint = QPushButton("Use last checkpoint")
        self.use_checkpoint.setToolTip("Switch to the last checkpoint the cancelled run saved")
        self.use_checkpoint.hide()
        self.use_checkpoint.clicked.connect(lambda: self.last_checkpoint and self.useCheckpointRequested.emit(str(self.last_checkpoint)))
        for b in (self.options_button, self.cancel_button, self.use_checkpoint):
            buttons.addWidget(b)
        lay.addLayout(buttons)
        self.state = "idle"
        self.budget_s: float | None = None
        self._planned, self._first_total, self._t_start = True, None, 0.0
        self._clear()

    def _clear(self) -> None:
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.epochs: list[int] = []
        self.val_miou: list[float] = []
        self.last_checkpoint: Path | None = None
        self.last_epoch = 0
        self.loss_curve.setData([], [])
        self.miou_curve.setData([], [])
        self.timer.reset()

    def reset_view(self) -> None:
        """Back to "no training yet" (another folder was opened: its runs are not this folder's)."""
        self._clear()
        self.state = "idle"
        self.title.setText("No training yet. Model ▸ Fine-tune (Ctrl+T) trains on your saved labels.")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.eta.setText("ETA –")
        self.val_note.setText("")
        self.cancel_button.setEnabled(False)
        self.options_button.setEnabled(True)
        self.use_checkpoint.hide()

    # -- run life cycle ------------------------------------------------------------------------
    def start(self, name: str, budget_s: float | None = None) -> None:
        """A new run named ``name`` (e.g. ``"v003"``) starts: clear the curves, enable Cancel.

        ``budget_s``: the run's time budget (seconds), when it has one. Such a run plans its number of steps from
        the timing of its first steps; until the plan is known the dock shows the budget and the time used (the
        step cap before that, e.g. "step 1/2000000", means nothing to a person)."""
        self._clear()
        self.state = "running"
        self.budget_s = float(budget_s) if budget_s else None
        self._first_total: int | None = None
        self._planned = self.budget_s is None
        self._t_start = self.timer.clock()
        budget = f" within {format_eta(self.budget_s)}" if self.budget_s else ""
        self.title.setText(f"Fine-tuning {name}{budget}… (starting)")
        self.progress.setRange(0, 0)
        self.eta.setText("ETA –")
        self.val_note.setText("")
        self.cancel_button.setEnabled(True)
        self.options_button.setEnabled(False)
        self.use_checkpoint.hide()

    def on_event(self, event: str, info: dict) -> None:
        """One trainer callback (GUI thread): update curves, progress, ETA."""
        if event == "step":
            step, total = int(info["global_step"]), int(info["total_steps"])
            self.steps.append(step)
            self.losses.append(float(info["loss"]))
            self.loss_curve.setData(self.steps, self.losses)
            eta = self.timer.step(step, total)
            if not self._planned:  # a budget run: the step count is planned once the first steps are timed
                if self._first_total is None:
                    self._first_total = total
                elif total != self._first_total:
                    self._planned = True
            tail = f" · epoch {int(info['epoch']) + 1} · loss {float(info['loss']):.3f} · lr {float(info['lr']):.2e}"
            if self._planned:
                self.progress.setRange(0, max(total, 1))
                self.progress.setValue(step)
                self.eta.setText(f"ETA {format_eta(eta)}")
                self.title.setText(f"Fine-tuning: step {step}/{total}{tail}")
            else:
                used = max(self.timer.clock() - self._t_start, 0.0)
                self.progress.setRange(0, max(int(round(self.budget_s)), 1))
                self.progress.setValue(min(int(used), self.progress.maximum()))
                self.eta.setText(f"ETA ≤ {format_eta(max(self.budget_s - used, 0.0))}")
                self.title.setText(
                    f"Fine-tuning: step {step} · {format_eta(used)} of a {format_eta(self.budget_s)} budget "
                    f"(steps planned from the first steps' timing){tail}"
                )
        elif event == "epoch":
            self.last_epoch = int(info["epoch"])
            miou = info.get("val_miou")
            if miou is not None:
                self.epochs.append(self.last_epoch)
                self.val_miou.append(100.0 * float(miou))
                self.miou_curve.setData(self.epochs, self.val_miou)
                self.val_note.setText(f"best validation mIoU {max(self.val_miou):.1f}% (epoch {self.epochs[self.val_miou.index(max(self.val_miou))]})")
            elif not self.val_miou:
                self.val_note.setText(
                    "Every corrected image trains: no validation curve (Edit ▸ Set aside for validation keeps an image out)."
                )
        elif event == "checkpoint":
            self.last_checkpoint = Path(info["path"])
        elif event == "done":
            self.last_checkpoint = Path(info["path"])

    def finish(self, outcome: str, message: str = "") -> None:
        """The run ended: ``outcome`` is ``"done"``, ``"cancelled"`` or ``"failed"``."""
        self.state = outcome
        self.cancel_button.setEnabled(False)
        self.options_button.setEnabled(True)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        if outcome == "done":
            self.progress.setValue(self.progress.maximum())
            self.eta.setText("ETA 0:00")
            self.title.setText(message or "Fine-tune finished.")
        elif outcome == "cancelled":
            kept = self.last_checkpoint is not None and self.last_checkpoint.is_file()
            self.title.setText(
                f"Cancelled at step {self.steps[-1] if self.steps else 0}. "
                + (
                    f"The last good checkpoint (epoch {self.last_epoch}) is kept: {self.last_checkpoint.parent.name}/{self.last_checkpoint.name}."
                    if kept
                    else "No epoch had finished, so no checkpoint was written; the model in use is unchanged."
                )
            )
            self.use_checkpoint.setVisible(kept)
            self.eta.setText("ETA –")
        else:
            self.title.setText(f"Training failed: {message}")
            self.eta.setText("ETA –")

    def _on_cancel(self) -> None:
        if self.state == "running":
            self.cancel_button.setEnabled(False)
            self.title.setText("Cancelling after the current step…")
            self.cancelRequested.emit()
