"""Helpers of the pytest-qt tests that drive a whole :class:`~segstudio.gui.main_window.MainWindow`."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

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


def left_click(canvas, x: float, y: float) -> None:
    """A left click (press + release) on ``canvas`` at image pixel ``(x, y)`` (its centre), as real mouse events."""
    pos = QPointF(canvas.mapFromScene(QPointF(x + 0.5, y + 0.5)))
    for kind, buttons in ((QMouseEvent.Type.MouseButtonPress, Qt.MouseButton.LeftButton), (QMouseEvent.Type.MouseButtonRelease, Qt.MouseButton.NoButton)):
        QApplication.sendEvent(canvas.viewport(), QMouseEvent(kind, pos, canvas.mapToGlobal(pos), Qt.MouseButton.LeftButton, buttons, Qt.KeyboardModifier.NoModifier))
