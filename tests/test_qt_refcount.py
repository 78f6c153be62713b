"""Guard against a PySide6 release that drops references to Python's shared singletons.

PySide6-Essentials 6.12.0 decrements ``True``'s reference count on every ``Signal.emit()`` from Python and
``None``'s on every Qt method that returns nothing (``setObjectName``, ``processEvents``...). After a few tens
of thousands of calls the count reaches zero and the interpreter aborts ("Fatal Python error: bool_dealloc") —
a labelling session would crash after hours. pyproject.toml excludes that release; this test fails on any
Qt binding that shows the bug again.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QCoreApplication, QObject, Signal


class _Emitter(QObject):
    fired = Signal()
    value = Signal(int)


def test_signal_emit_and_void_calls_keep_singleton_refcounts(qapp):
    o = _Emitter()
    got = []
    o.value.connect(got.append)
    n = 200
    before_true, before_none = sys.getrefcount(True), sys.getrefcount(None)
    for i in range(n):
        o.fired.emit()
        o.value.emit(i)
        o.setObjectName("x")
        QCoreApplication.processEvents()
    # Other code may take or drop a few references meanwhile; a buggy binding loses at least one per call.
    assert sys.getrefcount(True) - before_true > -n // 2, "Signal.emit() leaks a reference to True away"
    assert sys.getrefcount(None) - before_none > -n // 2, "void Qt calls drop references to None"
    assert got == list(range(n))
