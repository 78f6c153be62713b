"""Cancellation of long engine jobs: a :class:`CancelToken` shared by the worker running a job (training, predicting
a folder) and whoever may stop it (the GUI's Cancel button, a test), and the :class:`Cancelled` exception the job
raises at its next check. Pure Python (a :class:`threading.Event`): no torch, no Qt.
"""

from __future__ import annotations

import threading


class Cancelled(Exception):
    """Raised inside the training loop when its :class:`CancelToken` was set."""


class CancelToken:
    """Thread-safe cancel flag shared by a worker and whoever may cancel it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` when cancelled."""
        if self._event.is_set():
            raise Cancelled()
