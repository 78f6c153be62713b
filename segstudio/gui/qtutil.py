"""numpy ↔ Qt image helpers and small widget helpers."""

from __future__ import annotations

import gc

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QColor, QIcon, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QMenu, QScrollArea, QWidget


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """uint8 (H, W, 3) RGB → a QImage that owns a copy of the pixels."""
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def color_icon(rgb: tuple[int, int, int], size: int = 16) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(QColor(*rgb))
    return QIcon(pm)


def add_dock(window: QMainWindow, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
    """Wrap ``widget`` in a dock titled (and object-named, for saved layouts) ``title`` and add it to ``window``.

    The widget sits in a frameless, resizable scroll area: a dock whose contents grow (more classes, a longer
    table) scrolls instead of raising the window's minimum size past the screen (issue 31)."""
    dock = QDockWidget(title, window)
    dock.setObjectName(title)
    scroll = QScrollArea()
    scroll.setObjectName(f"{title} scroll")
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(widget)
    dock.setWidget(scroll)
    window.addDockWidget(area, dock)
    return dock


_GC = None


def collect_garbage_on_gui_thread() -> None:
    """Run Python's cyclic garbage collector only on the GUI thread (idempotent; call from the GUI thread).

    A reference cycle holding a Qt wrapper (a closed dialog, a lambda capturing a widget) can otherwise be
    collected by whichever thread happens to allocate — a predict or fine-tune worker — and destroying a
    ``QObject`` there deadlocks or crashes PySide6 (seen as a hang in ``Shiboken::GilState::acquire`` under
    ``gc_collect_main`` in a worker). pyqtgraph's ``GarbageCollector`` disables automatic collection and
    collects from a 1 s ``QTimer`` on the GUI thread instead. The first call also collects once and
    ``gc.freeze()``s the objects alive at that point, so later full collections stay short.
    """
    global _GC
    if _GC is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _GC = GarbageCollector(interval=1.0)
        # Everything alive now (torch, numpy, Qt, the model...) goes to the permanent generation: a full
        # collection on the GUI thread then scans only what was created since, ~10x faster (measured: full
        # collections of 60-200 ms during a fine-tune stalled the GUI; gc.freeze, Python >= 3.7).
        gc.collect()
        gc.freeze()


def window_action(window: QMainWindow, text: str, slot, shortcuts=(), menu=None) -> QAction:
    """A ``QAction`` of ``window`` with window-wide shortcuts (``Qt.WindowShortcut``: they work whichever child has
    the focus), ``slot`` connected to ``triggered``, added to the window (so the shortcuts work with the menu
    bar hidden) and to ``menu`` if given.

    Args:
        shortcuts: key sequences as strings (``"Ctrl+Shift+R"``) or ``QKeySequence.StandardKey`` values.
    """
    act = QAction(text, window)
    act.setShortcuts([QKeySequence(s) for s in shortcuts])
    act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    act.triggered.connect(slot)
    window.addAction(act)
    if menu is not None:
        menu.addAction(act)
    return act


def window_menu(window: QMainWindow, title: str) -> QMenu:
    """``window``'s menu called ``title`` (ignoring ``&``), created at the end of the menu bar if missing."""
    for act in window.menuBar().actions():
        m = act.menu()
        if m is not None and m.title().replace("&", "") == title.replace("&", ""):
            return m
    return window.menuBar().addMenu(title)
