"""Run a plain Python callable on the GUI thread when a worker's signal fires.

PySide6 calls a lambda or function connected to a signal *in the emitting thread* (there is no receiver
object to queue to), so ``job.progress.connect(lambda ...: label.setText(...))`` would touch widgets from
a worker thread. :func:`on_gui` wraps the callable in a small ``QObject`` living on the GUI thread; the
bound method is then delivered as a queued call there.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject


class _Relay(QObject):
    def __init__(self, fn: Callable, parent: QObject) -> None:
        super().__init__(parent)
        self.fn = fn

    def call(self, *args) -> None:
        """Call the wrapped function with the signal's arguments (runs on this object's thread)."""
        self.fn(*args)


def on_gui(fn: Callable, parent: QObject) -> Callable:
    """A slot that calls ``fn(*signal args)`` on ``parent``'s (the GUI) thread; it lives as long as ``parent``.

    Use it for each connection of a worker signal to a lambda: ``job.done.connect(on_gui(lambda: ..., self))``.
    """
    return _Relay(fn, parent).call
