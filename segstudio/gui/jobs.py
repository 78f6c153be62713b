"""The window's one job runner: every background job (predict, fine-tune, metrics, the canvas tools' SLIC /
GrabCut / click-model work) starts here, in a named slot, and its failure always reaches the user.

A room of its own so that the project state (:class:`~segstudio.gui.state.ProjectState`, which owns one
:class:`JobRunner`) and the tools (:class:`~segstudio.gui.tools.base.ToolJobs`, which start their work on it)
both use it without importing each other. The slot names (:data:`MAIN`, :data:`TOOL_SLOT`) and the progress
reporters of worker functions (:func:`tile_reporter`) live here too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from segstudio.gui.relay import on_gui
from segstudio.gui.workers import Job, start_job

log = logging.getLogger(__name__)

MAIN = "main"
"""Job slot of the window's model work (predict, fine-tune, import): one at a time."""

TOOL_SLOT = "tool:"
"""Prefix of the job slots of the canvas tools' work (SLIC, GrabCut, click model): ``"tool:<job name>"``,
started by :class:`~segstudio.gui.tools.base.ToolJobs` through :meth:`JobRunner.start`."""


def tile_reporter(job: Job, name: str, index: int, count: int) -> Callable[[int, int], None]:
    """Progress callback for :meth:`segstudio.engine.Predictor.tile_progress` in a predict worker.

    Each finished tile of a sliding-window prediction reports ``"predicting NAME (i/n): tile d/t"`` through
    ``job`` (the status-bar progress bar) and checks the job's cancel token, so a large image can be
    cancelled between tiles.
    """

    def on_tile(done: int, total: int) -> None:
        job.cancel_token.check()
        job.report(done, total, f"predicting {name} ({index + 1}/{count}): tile {done}/{total} (sliding window)")

    return on_tile


class JobRunner(QObject):
    """Starts every background job of the window on :func:`~segstudio.gui.workers.start_job`, one per slot.

    Slot :data:`MAIN` holds one job at a time; any other slot cancels the job it held when a new one starts.
    Callbacks run on the GUI thread. A failure is reported through :attr:`jobFailed` and ``say`` (the status
    bar; the traceback goes to the log); a cancel through :attr:`jobCancelled`.

    Args:
        parent: the owner (the project state); it owns the job threads.
        say: status-bar message function (``say(text)``).
        after_main_job: called with a :data:`MAIN` job after it ended and its ``on_done`` ran (the owner's
            follow-up work, e.g. predicting the image the user moved to meanwhile).

    Attributes:
        jobs: running jobs by slot.

    Signals:
        jobStarted(str slot, str name), jobProgress(int, int, str) (the :data:`MAIN` job's),
        jobFinished(str slot, str name), jobFailed(str name, str message), jobCancelled(str name).
    """

    jobStarted = Signal(str, str)
    jobProgress = Signal(int, int, str)
    jobFinished = Signal(str, str)
    jobFailed = Signal(str, str)
    jobCancelled = Signal(str)

    def __init__(self, parent: QObject | None = None, say: Callable[[str], None] | None = None,
                 after_main_job: Callable[[Job], None] | None = None) -> None:
        super().__init__(parent)
        self.jobs: dict[str, Job] = {}
        self._say = say or (lambda text: log.info("%s", text))
        self._after_main_job = after_main_job

    @property
    def job(self) -> Job | None:
        """The running :data:`MAIN` job, or ``None``."""
        return self.jobs.get(MAIN)

    def start(
        self, job: Job, slot: str = MAIN, on_result=None, on_finished=None, on_progress=None, on_done=None, on_ready=None
    ) -> bool:
        """Run ``job`` on a worker thread in ``slot``.

        Slot :data:`MAIN` holds one job at a time (False and a "busy" message when taken); any other slot
        cancels the job it held. The canvas tools' jobs use slots ``TOOL_SLOT + name``. The callbacks run on
        the GUI thread; ``on_ready(job)`` runs after this runner's connections and before the thread starts
        (observers connect there, after the runner's own handlers).
        """
        if slot == MAIN and self.job is not None:
            self._say(f"busy: {self.job.name} is running")
            return False
        if slot != MAIN:
            self.cancel(slot)
        relay = QObject(self)  # GUI-thread owner of this job's relays (the job itself moves to its thread)
        job.relay_parent = relay
        for signal, fn in ((job.result, on_result), (job.finished, on_finished), (job.progress, on_progress)):
            if fn is not None:
                signal.connect(on_gui(fn, relay))
        if slot == MAIN:
            job.progress.connect(on_gui(self.jobProgress.emit, relay))
        job.failed.connect(on_gui(lambda msg, j=job: self.report_failure(j.name, msg), relay))
        job.cancelled.connect(on_gui(lambda j=job: self._on_cancelled(j), relay))

        def done(j=job, s=slot) -> None:
            if self.jobs.get(s) is j:
                self.jobs.pop(s)
            if on_done is not None:
                on_done()
            self.jobFinished.emit(s, j.name)
            relay.deleteLater()
            if s == MAIN and self._after_main_job is not None:
                self._after_main_job(j)

        job.done.connect(on_gui(done, relay))
        if on_ready is not None:
            on_ready(job)
        self.jobs[slot] = job
        self.jobStarted.emit(slot, job.name)
        start_job(job, self)
        return True

    def cancel(self, slot: str = MAIN) -> None:
        """Ask the job in ``slot`` to stop (it ends at its next check)."""
        job = self.jobs.get(slot)
        if job is not None:
            job.cancel()
            if slot == MAIN:
                self._say(f"cancelling {job.name}…")
            else:
                self.jobs.pop(slot)

    def cancel_all(self) -> None:
        """Ask every running job to stop."""
        for slot in list(self.jobs):
            job = self.jobs.get(slot)
            if job is not None:
                job.cancel()

    def report_failure(self, name: str, message: str) -> None:
        """Report that job ``name`` failed (in its worker, or outside its worker's own error path, e.g. applying
        its result on the GUI thread raised): the log, the status bar and ``jobFailed(name, message)``."""
        log.error("%s", message)
        self._say(message)
        self.jobFailed.emit(name, message)

    def _on_cancelled(self, job: Job) -> None:
        self._say(f"{job.name} cancelled")
        self.jobCancelled.emit(job.name)


__all__ = ["MAIN", "TOOL_SLOT", "JobRunner", "tile_reporter"]
