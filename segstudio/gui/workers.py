"""Background jobs on ``QThread`` (``QObject`` + ``moveToThread``), reporting through signals.

A :class:`Job` runs a plain Python function off the GUI thread. The function receives the job and
calls :meth:`Job.report` / :meth:`Job.emit_result`; cancellation goes through the engine's
:class:`~segstudio.engine.CancelToken`, checked between images / steps.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

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


def start_job(job: Job, parent: QObject) -> QThread:
    """Move ``job`` to a new ``QThread`` owned by ``parent`` and start it; the thread quits when the job is done."""
    thread = QThread(parent)
    thread.setObjectName(f"segstudio-{job.name}")
    job.moveToThread(thread)
    thread.started.connect(job.run)
    job.done.connect(thread.quit)
    thread.finished.connect(job.deleteLater)
    thread.finished.connect(thread.deleteLater)
    thread.start()
    return thread
