"""Active learning in the GUI: an uncertainty heat-map layer on the canvas and a "Correct next" list.

The maps come from :mod:`segstudio.engine.uncertainty` (entropy or margin of the softmax probabilities,
Settles 2009); they are computed in worker jobs, never on the GUI thread.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap, QTransform
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsPixmapItem,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from segstudio.engine.uncertainty import METHODS, uncertainty_map

_LUT = pg.colormap.get("inferno").getLookupTable(0.0, 1.0, 256, alpha=False).astype(np.uint8)  # (256, 3)


def heatmap_rgba(umap: np.ndarray, max_alpha: int = 200) -> np.ndarray:
    """Colour an uncertainty map for display over the image.

    Args:
        umap: float (H, W) in [0, 1] (0 = certain), or uint8 (H, W) already scaled to 0..255.
        max_alpha: opacity (0..255) of the most uncertain pixels; certain pixels are transparent, so
            the image and labels stay visible where the model is sure.
    Returns:
        uint8 (H, W, 4) RGBA: inferno colour map, alpha proportional to uncertainty.
    """
    u = umap if umap.dtype == np.uint8 else np.round(np.clip(umap, 0.0, 1.0) * 255).astype(np.uint8)
    rgba = np.empty((*u.shape, 4), np.uint8)
    rgba[..., :3] = _LUT[u]
    rgba[..., 3] = (u.astype(np.uint16) * max_alpha // 255).astype(np.uint8)
    return rgba


def quantize(umap: np.ndarray) -> np.ndarray:
    """float (H, W) in [0, 1] → uint8 (H, W) 0..255 (a quarter of the memory, for caching maps)."""
    return np.round(np.clip(umap, 0.0, 1.0) * 255).astype(np.uint8)


class UncertaintyLayer(QGraphicsPixmapItem):
    """The heat-map as a separate pixmap item above the label overlay of the canvas's scene.

    Attributes:
        path: image whose map is shown (None: nothing).
        umap: uint8 (H, W) map shown, 0..255.
    """

    Z = 5  # above image (0) and label overlay (0), below the brush cursor (10)

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(self.Z)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # painting goes to the canvas
        self.path: Path | None = None
        self.umap: np.ndarray | None = None
        self.hide()

    def set_map(self, path: Path | None, umap: np.ndarray | None, image_shape: tuple[int, int] | None = None) -> None:
        """Show ``umap`` (uint8 or float (h, w)) for image ``path``; ``None`` clears.

        ``image_shape`` ``(H, W)``: the image's size when the map was computed on a downscaled copy (large
        images); the layer is then stretched to cover the image.
        """
        self.path = path
        self.setTransform(QTransform())
        if umap is None:
            self.umap = None
            self.setPixmap(QPixmap())
            return
        self.umap = umap if umap.dtype == np.uint8 else quantize(umap)
        rgba = np.ascontiguousarray(heatmap_rgba(self.umap))
        h, w = self.umap.shape
        self.setPixmap(QPixmap.fromImage(QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()))
        if image_shape is not None and tuple(image_shape) != (h, w):
            self.setTransform(QTransform.fromScale(image_shape[1] / w, image_shape[0] / h))


def image_uncertainty(predictor, image: np.ndarray, method: str, max_pixels: int = 2048 * 2048) -> np.ndarray:
    """uint8 (h, w) uncertainty map of ``image`` (worker-thread function).

    Images above ``max_pixels`` are first downscaled (area interpolation) to at most ``max_pixels``, so the
    K × h × w probabilities stay bounded (about 185 MB for K = 11) whatever the image size; the map is then
    a coarser guide, shown stretched over the image.
    """
    h, w = image.shape[:2]
    if h * w > max_pixels:
        s = (max_pixels / (h * w)) ** 0.5
        image = cv2.resize(image, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
    return quantize(uncertainty_map(predictor.predict_proba(image), method))


class CorrectNextPanel(QWidget):
    """Unlabelled images ranked by mean uncertainty, most uncertain first.

    Signals:
        rankRequested(str method): the user asked to (re)rank with ``"entropy"`` or ``"margin"``.
        cancelRequested()
        imageActivated(Path): an entry was double-clicked / "Open" pressed.
    """

    rankRequested = Signal(str)
    cancelRequested = Signal()
    imageActivated = Signal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Uncertainty"))
        self.method = QComboBox()
        self.method.addItems(METHODS)
        row.addWidget(self.method, 1)
        self.rank_button = QPushButton("Rank unlabelled")
        self.rank_button.clicked.connect(lambda: self.rankRequested.emit(self.method.currentText()))
        row.addWidget(self.rank_button)
        lay.addLayout(row)
        self.status = QLabel("Rank the images without saved labels: fix the most uncertain first.")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.list = QListWidget()
        self.list.itemActivated.connect(lambda it: self.imageActivated.emit(it.data(Qt.ItemDataRole.UserRole)))
        lay.addWidget(self.list, 1)
        row2 = QHBoxLayout()
        self.open_button = QPushButton("Open next")
        self.open_button.setToolTip("Go to the most uncertain image still unlabelled")
        self.open_button.clicked.connect(self._open_first)
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancelRequested)
        row2.addWidget(self.open_button)
        row2.addWidget(self.cancel_button)
        lay.addLayout(row2)
        self.ranking: list[tuple[Path, float]] = []

    def set_busy(self, busy: bool, text: str = "") -> None:
        """Enable Stop (and disable Rank) while a ranking job runs; ``text`` replaces the status line."""
        self.rank_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        if text:
            self.status.setText(text)

    def set_ranking(self, ranking: list[tuple[Path, float]], method: str) -> None:
        """Show ``[(path, mean uncertainty in [0, 1]), ...]`` (already sorted, most uncertain first)."""
        self.ranking = list(ranking)
        self.list.clear()
        for i, (path, score) in enumerate(self.ranking):
            item = QListWidgetItem(f"{i + 1:>3}. {path.name}   {100 * score:5.1f}")
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip(f"{path}\nmean {method}: {score:.4f}")
            self.list.addItem(item)
        self.status.setText(
            f"{len(self.ranking)} unlabelled image(s) by mean {method} (%, higher = less certain)"
            if self.ranking
            else "Every image has saved labels."
        )

    def remove(self, path: Path) -> None:
        """Drop ``path`` from the list (it got saved labels)."""
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == path:
                self.list.takeItem(i)
                self.ranking = [r for r in self.ranking if r[0] != path]
                return

    def _open_first(self) -> None:
        if self.list.count():
            self.imageActivated.emit(self.list.item(0).data(Qt.ItemDataRole.UserRole))
