"""Helpers of the pytest-qt tests that drive a whole :class:`~segstudio.gui.main_window.MainWindow`."""

from __future__ import annotations

from segstudio.gui.main_window import MainWindow


def show_window(qtbot, model=None, active: bool = True) -> MainWindow:
    """A shown ``MainWindow(model)`` registered with ``qtbot`` (closed after the test).

    With ``active`` the window is activated and the helper waits until it is the active window: window-wide
    shortcuts (class keys, tool keys, review keys) only reach an active window.
    """
    win = MainWindow(model)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    if active:
        win.activateWindow()
        qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    return win


def wait_idle(qtbot, win: MainWindow, timeout: int = 120_000) -> None:
    """Wait (ms) until the window runs no job and the labelling loop is not busy (prediction, training)."""
    qtbot.waitUntil(lambda: win.job is None and not win.loop.busy(), timeout=timeout)
