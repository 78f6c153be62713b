"""numpy ↔ Qt image helpers."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """uint8 (H, W, 3) RGB → a QImage that owns a copy of the pixels."""
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def color_icon(rgb: tuple[int, int, int], size: int = 16) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(QColor(*rgb))
    return QIcon(pm)
