"""segstudio.gui.workers: a Job's lifetime across its worker thread (pytest-qt, offscreen)."""

from __future__ import annotations

import gc
import threading
import weakref

from PySide6.QtCore import QCoreApplication, QObject

from segstudio.gui import workers
from segstudio.gui.new_model_dialog import count_parameters
from segstudio.gui.relay import on_gui
from segstudio.gui.workers import Job, start_job


def test_jobs_dropped_in_their_done_handler_outlive_their_threads(qtbot):
    """Regression: a caller drops its only reference to a job when the job is done (the window's
    ``self.job = None``; the new-model dialog's keeper object, deleteLater'd with the relay that held the
    job). The job's C++ object used to be deleted right there on the GUI thread while its worker was
    still finishing, and again by the ``deleteLater`` queued in that thread: a SIGBUS/SIGSEGV in
    ``QObject::~QObject`` (gdb), in about half the CI runs; this test crashed 3 of 3 runs that way. start_job
    must hold each job until its thread has finished, then let it go."""
    app = QCoreApplication.instance()
    results: list[int] = []
    workers_seen: set[int] = set()
    left = set(range(30))
    weak = []

    def work(i: int):
        def fn(job: Job) -> int:
            workers_seen.add(threading.get_ident())
            if i % 3:  # what the new-model dialog's jobs do (many Python objects: the cyclic GC runs here)
                count_parameters("lraspp", 5, {"encoder": "resnet18"})
            return i * i

        return fn

    for i in range(30):
        job = Job(f"square {i}", work(i))
        job.finished.connect(on_gui(results.append, app))
        keeper = QObject(app)

        def done(i=i, job=job, keeper=keeper) -> None:  # the closure holds the caller's only reference
            left.discard(i)
            keeper.deleteLater()  # ... which goes with the keeper's relay, on the GUI thread

        job.done.connect(on_gui(done, keeper))
        weak.append(weakref.ref(job))
        start_job(job, app)
        del job, keeper, done
    qtbot.waitUntil(lambda: not left and not workers._IN_FLIGHT, timeout=60_000)
    qtbot.wait(50)  # let the deferred deletes run
    assert sorted(results) == [i * i for i in range(30)]
    assert threading.get_ident() not in workers_seen  # the work ran off the GUI thread
    # Once its thread has finished and nothing references a job, it is gone: the in-flight set leaks none.
    gc.collect()
    assert [r for r in weak if r() is not None] == []
