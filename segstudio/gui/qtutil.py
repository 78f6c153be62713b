"""numpy ↔ Qt image helpers and small widget helpers."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """uint8 (H, W, 3) RGB → a QImage that owns a copy of the pixels."""
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def color_icon(rgb: tuple[int, int, int], size: int = 16) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(QColor(*rgb))
    return QIcon(pm)


def add_dock(win: QMainWindow, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
    """Wrap ``widget`` in a dock titled (and object-named, for saved layouts) ``title`` and add it to ``win``."""
    dock = QDockWidget(title, win)
    dock.setObjectName(title)
    dock.setWidget(widget)
    win.addDockWidget(area, dock)
    return dock
