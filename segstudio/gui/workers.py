"""Background jobs on ``QThread`` (``QObject`` + ``moveToThread``), reporting through signals.

A :class:`Job` runs a plain Python function off the GUI thread. The function receives the job and
calls :meth:`Job.report` / :meth:`Job.emit_result`; cancellation goes through the engine's
:class:`~segstudio.engine.CancelToken`, checked between images / steps.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from segstudio.engine import CancelToken, Cancelled

log = logging.getLogger(__name__)


class Job(QObject):
    """A function run on a worker thread.

    Signals:
        progress(int done, int total, str text)
        result(object, object): intermediate results (e.g. ``(path, labels)`` per image).
        finished(object): return value of the function.
        cancelled()
        failed(str): error message (the traceback goes to the log).
    """

    progress = Signal(int, int, str)
    result = Signal(object, object)
    finished = Signal(object)
    cancelled = Signal()
    failed = Signal(str)
    done = Signal()

    def __init__(self, name: str, fn: Callable[["Job"], object]) -> None:
        super().__init__()
        self.name = name
        self.fn = fn
        self.cancel_token = CancelToken()
        self.thread_name: str | None = None

    def report(self, done: int, total: int, text: str = "") -> None:
        self.progress.emit(done, total, text)

    def emit_result(self, a: object, b: object = None) -> None:
        self.result.emit(a, b)

    def cancel(self) -> None:
        self.cancel_token.cancel()

    @Slot()
    def run(self) -> None:
        self.thread_name = QThread.currentThread().objectName() or repr(QThread.currentThread())
        try:
            out = self.fn(self)
        except Cancelled:
            self.cancelled.emit()
        except Exception as exc:  # reported to the user, never a crash of the GUI
            log.error("%s failed:\n%s", self.name, traceback.format_exc())
            self.failed.emit(f"{self.name} failed: {exc}")
        else:
            self.finished.emit(out)
        finally:
            self.done.emit()


class _Release(QObject):
    """Drops the last in-flight reference to a job once its thread has finished (lives on the GUI thread)."""

    def __init__(self, job: Job) -> None:
        super().__init__(QCoreApplication.instance())  # C++-owned: deleted by deleteLater, never by Python's GC
        self.job: Job | None = job

    @Slot()
    def release(self) -> None:
        _IN_FLIGHT.discard(self.job)
        self.job = None
        self.deleteLater()


_IN_FLIGHT: set[Job] = set()
"""Jobs whose threads have not finished yet; see :func:`start_job`."""


def start_job(job: Job, parent: QObject) -> QThread:
    """Move ``job`` to a new ``QThread`` owned by ``parent`` and start it; the thread quits when the job is done.

    Call it from the GUI thread. The job is a Python-owned ``QObject``: its C++ object is deleted when the
    last Python reference goes. A reference is held here until the thread has *finished* (released on the
    GUI thread), so dropping the caller's reference in a ``done`` handler cannot delete the job while the
    worker is still inside :meth:`Job.run` or emitting from it; and the job is never also ``deleteLater``'d
    by the thread, which would race that Python-side delete (a double free: intermittent segfaults).
    """
    thread = QThread(parent)
    thread.setObjectName(f"segstudio-{job.name}")
    job.moveToThread(thread)
    thread.started.connect(job.run)
    job.done.connect(thread.quit)
    _IN_FLIGHT.add(job)
    thread.finished.connect(_Release(job).release)  # queued: the releaser lives on the GUI thread
    thread.finished.connect(thread.deleteLater)
    thread.start()
    return thread
