"""Helpers shared by the screenshot scripts (``scripts/*screenshots*.py``): run the Qt event loop until a
condition holds, and grab a window's pixels from the X server.

Not part of the package; the scripts import it as ``from _qtshots import pump, grab`` (``scripts/`` is on
``sys.path`` when a script in it runs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def pump(app, cond: Callable[[], bool] = lambda: True, timeout: float = 600.0, settle: float = 0.0) -> bool:
    """Process Qt events until ``cond()`` is true or ``timeout`` seconds passed, then let the window settle.

    Args:
        app: the ``QApplication``.
        cond: polled every 20 ms between event batches.
        timeout: seconds to wait at most for ``cond``.
        settle: seconds of further event processing after ``cond`` (repaints, queued signals); with 0, ten
            more event batches are processed.
    Returns:
        whether ``cond()`` held before the timeout.
    """
    t = time.time()
    ok = cond()
    while not ok and time.time() - t < timeout:
        app.processEvents()
        time.sleep(0.02)
        ok = cond()
    if settle > 0:
        t = time.time()
        while time.time() - t < settle:
            app.processEvents()
            time.sleep(0.02)
    else:
        for _ in range(10):
            app.processEvents()
    return ok


def grab(app, win, path: Path) -> None:
    """Save the X server's pixels of ``win``'s frame (``QScreen.grabWindow`` of the root window, cropped to the
    frame geometry, so window decorations and overlapping popups are what a user sees) to ``path`` (PNG)."""
    g = win.frameGeometry()
    shot = app.primaryScreen().grabWindow(0, g.x(), g.y(), g.width(), g.height())
    shot.save(str(path))
    print("wrote", path, shot.width(), "x", shot.height())
