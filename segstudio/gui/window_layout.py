"""The window's size and dock layout: sized from the screen on a first start, restored from ``QSettings`` after.

The settings are an INI file in the user's config folder (``SegStudio/SegStudio.ini``); tests redirect it with
``QSettings.setPath`` (see ``tests/conftest.py``), so they never touch the user's settings.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QRect, QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QMenu, QWidget

LAYOUT_VERSION = 2
"""``saveState`` version: bump it when the docks change so an old layout is ignored, not half-applied
(2, issue 31: the Project table moved from the bottom to the right column's tabs)."""

FIRST_START_FRACTION = 0.9
"""A first start opens the window at this fraction of the screen's available width and height."""


def window_settings() -> QSettings:
    """The window's settings (geometry and dock layout)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "SegStudio", "SegStudio")


def default_geometry(available: QRect, fraction: float = FIRST_START_FRACTION) -> tuple[int, int, int, int]:
    """``(x, y, w, h)``: ``fraction`` of the screen's available geometry, centred."""
    w, h = int(available.width() * fraction), int(available.height() * fraction)
    return available.x() + (available.width() - w) // 2, available.y() + (available.height() - h) // 2, w, h


def _docks(window: QMainWindow) -> dict[str, QDockWidget]:
    return {d.objectName(): d for d in window.findChildren(QDockWidget)}


def first_start_layout(window: QMainWindow) -> None:
    """The canvas first: 90 % of the screen; on the left the image list (narrow); on the right the class palette
    above the Model | Versions | Project tabs; the bottom stays free (Training and Metrics show themselves there
    when used, and the Training dock goes again when a fine-tune is done), so the canvas keeps about two thirds
    of the window (issue 31: at least 60 %)."""
    docks = _docks(window)
    if "Model" in docks:
        for name in ("Versions", "Project"):
            if name in docks:
                if name == "Project":
                    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, docks[name])
                window.tabifyDockWidget(docks["Model"], docks[name])
        docks["Model"].raise_()
    for name in ("Training", "Metrics"):
        if name in docks:
            docks[name].hide()
    window.layout().invalidate()
    window.layout().activate()  # the minimum size without the hidden docks, before sizing the window
    screen = QApplication.primaryScreen()
    if screen is not None:
        window.setGeometry(*default_geometry(screen.availableGeometry()))
    sides = [(docks[n], max(int(window.width() * f), px)) for n, f, px in (("Images", 0.11, 180), ("Classes", 0.15, 240)) if n in docks]
    if sides:
        window.resizeDocks([d for d, _ in sides], [w for _, w in sides], Qt.Orientation.Horizontal)


def restore_layout(window: QMainWindow) -> bool:
    """Restore the last session's geometry and dock layout; a first start gets :func:`first_start_layout`.
    A restored geometry is clamped to the screen (:func:`fit_to_screen`): a window saved too tall (another
    monitor, an older version) never opens with its status bar off screen. Returns True when a saved layout
    was restored."""
    first_start_layout(window)
    s = window_settings()
    geo, state = s.value("window/geometry"), s.value("window/state")
    if geo is None or state is None:
        return False
    ok = bool(window.restoreGeometry(geo)) and bool(window.restoreState(state, LAYOUT_VERSION))
    fit_to_screen(window)
    return ok


def frame_margins(window: QWidget) -> tuple[int, int]:
    """``(extra width, extra height)`` of the window frame (title bar, borders) around the client area."""
    frame, geo = window.frameGeometry(), window.geometry()
    return max(frame.width() - geo.width(), 0), max(frame.height() - geo.height(), 0)


def fit_to_screen(window: QWidget) -> bool:
    """Shrink and move ``window`` so that its frame lies inside its screen's available geometry (a maximised or
    full-screen window is left alone). Returns True when the geometry changed.

    The window's own minimum size still wins where it is larger (keep the docks' minimums modest: see
    :meth:`~segstudio.gui.docks.ClassPanel.set_classes`)."""
    if window.isMaximized() or window.isFullScreen():
        return False
    screen = window.screen() or QApplication.primaryScreen()
    if screen is None:
        return False
    avail = screen.availableGeometry()
    dw, dh = frame_margins(window)
    geo = window.geometry()
    w, h = min(geo.width(), avail.width() - dw), min(geo.height(), avail.height() - dh)
    changed = False
    if (w, h) != (geo.width(), geo.height()):
        window.resize(max(w, 1), max(h, 1))
        changed = True
    frame = window.frameGeometry()
    x = min(max(frame.x(), avail.x()), avail.x() + avail.width() - frame.width())
    y = min(max(frame.y(), avail.y()), avail.y() + avail.height() - frame.height())
    x, y = max(x, avail.x()), max(y, avail.y())
    if (x, y) != (frame.x(), frame.y()):
        window.move(x, y)
        changed = True
    return changed


class ScreenGuard(QObject):
    """Keeps a window inside its screen after every layout change (a class edit, a folder switch, a dock shown):
    on the window's ``LayoutRequest`` events it schedules one :func:`fit_to_screen` (coalesced).

    Args:
        window: the window to watch (the guard is its child).
    """

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.window = window
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(lambda: fit_to_screen(self.window))
        window.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt name)
        """Schedule a fit after the window's layout changed or it was resized or moved."""
        if obj is self.window and event.type() in (QEvent.Type.LayoutRequest, QEvent.Type.Resize, QEvent.Type.Show):
            self._timer.start()
        return False


def save_layout(window: QMainWindow) -> None:
    """Remember ``window``'s geometry and dock layout for the next start."""
    s = window_settings()
    s.setValue("window/geometry", window.saveGeometry())
    s.setValue("window/state", window.saveState(LAYOUT_VERSION))
    s.sync()


def add_view_menu(window: QMainWindow) -> None:
    """View menu (before Help, the last menu by convention): show or hide each dock and the tool bar."""
    mb = window.menuBar()
    help_menu = next((a for a in mb.actions() if a.text() == "&Help"), None)
    menu = QMenu("&View", mb)
    if help_menu is not None:
        mb.insertMenu(help_menu, menu)
    else:
        mb.addMenu(menu)
    for name, dock in sorted(_docks(window).items()):
        menu.addAction(dock.toggleViewAction())
    if getattr(window, "tool_bar", None) is not None:
        menu.addAction(window.tool_bar.toggleViewAction())
