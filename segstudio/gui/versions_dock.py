"""Model versions: the lineage of fine-tuned models of a project, switching between them, and an A/B view
of two versions' predictions on the current image (split slider or toggle) with their per-image mIoU.

The two predictions and the mIoU are computed in a :class:`~segstudio.gui.workers.Job`, never on the GUI thread.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSlider,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from segstudio.core import IGNORE_INDEX, ClassSpec, blend_overlay
from segstudio.engine import Predictor, load_checkpoint
from segstudio.gui.qtutil import rgb_to_qimage
from segstudio.gui.workers import Job
from segstudio.core.class_mapping import class_lut
from segstudio.io.project import ModelVersion
from segstudio.metrics import ConfusionMatrix

log = logging.getLogger(__name__)


def compare_label_maps(a: np.ndarray, b: np.ndarray, num_classes: int) -> dict:
    """Agreement of two label maps of one image (e.g. two model versions' predictions).

    IoU of class ``c`` is ``|A=c ∧ B=c| / |A=c ∨ B=c|`` over pixels labelled in both (symmetric in A, B);
    mIoU is its mean over classes present in either (the usual ``ConfusionMatrix`` definition).

    Args:
        a, b: uint8 (H, W) label maps with values ``0..K-1`` or ``IGNORE_INDEX``.
        num_classes: ``K``.

    Returns:
        ``{"miou": float 0..1 (NaN when no pixel is labelled in both), "iou": list of K floats or NaN,
        "differ": fraction 0..1 of both-labelled pixels whose classes differ, "pixels": both-labelled pixels}``.

    Raises:
        ValueError: shapes differ or a value is outside the classes.
    """
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in size: {a.shape} vs {b.shape}")
    both = (a != IGNORE_INDEX) & (b != IGNORE_INDEX)
    cm = ConfusionMatrix(num_classes)
    cm.update(a[both], b[both])
    n = int(both.sum())
    return {
        "miou": cm.miou if n else float("nan"),
        "iou": cm.iou.tolist(),
        "differ": float((a[both] != b[both]).mean()) if n else 0.0,
        "pixels": n,
    }


def make_ab_job(weights_a: Path, weights_b: Path, image: np.ndarray, classes: ClassSpec, device: str = "auto") -> Job:
    """A job (start it with :func:`~segstudio.gui.workers.start_job`) that predicts ``image`` (uint8 (H, W, 3)
    RGB) with two checkpoints and compares them.

    Each prediction is mapped to ``classes`` by class name (see :func:`segstudio.core.class_mapping.class_lut`).
    The job's ``finished`` signal carries ``{"a": uint8 (H, W), "b": uint8 (H, W), **compare_label_maps(...)}``.
    """

    def work(job: Job):
        out = {}
        for i, (key, weights) in enumerate((("a", weights_a), ("b", weights_b))):
            job.cancel_token.check()
            job.report(i, 2, f"A/B: predicting with {Path(weights).parent.name} ({key.upper()})")
            loaded = load_checkpoint(weights)
            pred = Predictor(loaded, device=device).predict(image)
            out[key] = class_lut(loaded.classes, classes)[pred]
        out.update(compare_label_maps(out["a"], out["b"], classes.num_classes))
        job.report(2, 2, f"A/B: mIoU between versions {100 * out['miou']:.1f}%")
        return out

    return Job("a/b compare", work)


class SplitView(QWidget):
    """Image with overlay A left of a vertical split and overlay B right of it; drag to move the split.

    Signals:
        splitChanged(float): split position, 0..1 of the width (0 = all B, 1 = all A).
    """

    splitChanged = Signal(float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 240)
        self._a = self._b = None
        self.split = 0.5
        self.names = ("A", "B")

    def set_images(self, rgb_a: np.ndarray, rgb_b: np.ndarray, names: tuple[str, str]) -> None:
        """Set the two blended RGB images (uint8 (H, W, 3), same size) and their labels."""
        self._a, self._b = rgb_to_qimage(rgb_a), rgb_to_qimage(rgb_b)
        self.names = names
        self.update()

    def set_split(self, value: float) -> None:
        value = min(max(float(value), 0.0), 1.0)
        if value != self.split:
            self.split = value
            self.splitChanged.emit(value)
            self.update()

    def _target(self) -> QRectF:
        w, h = self._a.width(), self._a.height()
        s = min(self.width() / w, self.height() / h)
        return QRectF((self.width() - w * s) / 2, (self.height() - h * s) / 2, w * s, h * s)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(40, 40, 40))
        if self._a is None:
            return
        t = self._target()
        w = self._a.width()
        xs = self.split * w
        if xs > 0:
            p.drawImage(QRectF(t.x(), t.y(), t.width() * self.split, t.height()), self._a, QRectF(0, 0, xs, self._a.height()))
        if xs < w:
            p.drawImage(
                QRectF(t.x() + t.width() * self.split, t.y(), t.width() * (1 - self.split), t.height()),
                self._b,
                QRectF(xs, 0, w - xs, self._b.height()),
            )
        x = t.x() + t.width() * self.split
        p.setPen(QPen(QColor(255, 255, 255), 2))
        p.drawLine(int(x), int(t.top()), int(x), int(t.bottom()))
        f = QFont(p.font())
        f.setBold(True)
        p.setFont(f)
        for text, left in ((self.names[0], True), (self.names[1], False)):
            r = p.fontMetrics().boundingRect(text).adjusted(-6, -3, 6, 3)
            r.moveTop(int(t.top()) + 8)
            r.moveLeft(int(x) - r.width() - 8 if left else int(x) + 8)
            p.fillRect(r, QColor(0, 0, 0, 170))
            p.setPen(QColor(255, 255, 255))
            p.drawText(r, Qt.AlignmentFlag.AlignCenter, text)

    def _drag(self, event) -> None:
        if self._a is not None:
            t = self._target()
            self.set_split((event.position().x() - t.x()) / max(t.width(), 1.0))

    def mousePressEvent(self, event) -> None:
        self._drag(event)

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._drag(event)


class ABCompareDialog(QDialog):
    """Two versions' predictions on one image: split slider, A/B toggle (T), mIoU between them, per-class IoU."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare model versions (A/B)")
        self.resize(900, 640)
        lay = QVBoxLayout(self)
        self.view = SplitView()
        lay.addWidget(self.view, 1)
        row = QHBoxLayout()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 1000)
        self.slider.setValue(500)
        self.slider.valueChanged.connect(lambda v: self.view.set_split(v / 1000))
        self.view.splitChanged.connect(lambda s: self.slider.setValue(round(1000 * s)))
        self.toggle = QPushButton("Toggle A/B (T)")
        self.toggle.setShortcut("T")
        self.toggle.clicked.connect(self.toggle_ab)
        row.addWidget(QLabel("A"))
        row.addWidget(self.slider, 1)
        row.addWidget(QLabel("B"))
        row.addWidget(self.toggle)
        lay.addLayout(row)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.summary)
        self.result: dict | None = None

    def toggle_ab(self) -> None:
        """Show all of A, then all of B, alternately (a split in between goes to A first)."""
        self.slider.setValue(0 if self.slider.value() == 1000 else 1000)

    def set_result(self, image: np.ndarray, result: dict, classes: ClassSpec, names: tuple[str, str], opacity: float = 0.5) -> None:
        """Show ``result`` of :func:`make_ab_job` over ``image`` (uint8 (H, W, 3))."""
        self.result = result
        self.view.set_images(
            blend_overlay(image, result["a"], classes, opacity), blend_overlay(image, result["b"], classes, opacity), names
        )
        ious = sorted(
            ((v, n) for v, n in zip(result["iou"], classes.names) if not math.isnan(v)), key=lambda t: t[0]
        )
        worst = ", ".join(f"{n} {100 * v:.0f}%" for v, n in ious[:4])
        self.summary.setText(
            f"<b>{names[0]}</b> (left) vs <b>{names[1]}</b> (right) on this image: "
            f"<b>mIoU {100 * result['miou']:.1f}%</b> between the two predictions · "
            f"{100 * result['differ']:.1f}% of pixels differ · least agreement: {worst or '—'}"
        )


class VersionsPanel(QWidget):
    """Model versions of the project as a lineage tree (parent → child) with time, data and metrics.

    Signals:
        useRequested(str): version name to switch to.
        compareRequested(str, str): version names A and B to compare on the current image.
    """

    useRequested = Signal(str)
    compareRequested = Signal(str, str)

    COLUMNS = ("Version", "Created", "Images", "val mIoU")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("QLabel { background: #fff3cd; color: #5c4400; border: 1px solid #e0c060; padding: 4px; }")
        self.notice.hide()
        lay.addWidget(self.notice)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(self.COLUMNS))
        self.tree.setHeaderLabels(list(self.COLUMNS))
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setRootIsDecorated(True)
        self.tree.itemDoubleClicked.connect(lambda it, _c: self.useRequested.emit(it.data(0, Qt.ItemDataRole.UserRole)))
        lay.addWidget(self.tree, 1)
        self.use = QPushButton("Use selected version")
        self.use.clicked.connect(self._use_selected)
        lay.addWidget(self.use)
        grid = QGridLayout()
        self.combo_a, self.combo_b = QComboBox(), QComboBox()
        grid.addWidget(QLabel("A"), 0, 0)
        grid.addWidget(self.combo_a, 0, 1)
        grid.addWidget(QLabel("B"), 1, 0)
        grid.addWidget(self.combo_b, 1, 1)
        lay.addLayout(grid)
        self.compare = QPushButton("Compare A/B on this image")
        self.compare.clicked.connect(lambda: self.compareRequested.emit(self.combo_a.currentText(), self.combo_b.currentText()))
        lay.addWidget(self.compare)
        self.versions: list[ModelVersion] = []
        self._user_picked = False
        for combo in (self.combo_a, self.combo_b):
            combo.activated.connect(self._on_user_pick)

    def _on_user_pick(self, _index: int) -> None:
        self._user_picked = True

    def _use_selected(self) -> None:
        it = self.tree.currentItem()
        if it is not None:
            self.useRequested.emit(it.data(0, Qt.ItemDataRole.UserRole))

    def set_notice(self, text: str) -> None:
        """Show a class-mapping notice ('' hides it)."""
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def set_versions(self, versions: list[ModelVersion], current: str | None, folder: Path | None) -> None:
        """Show ``versions`` as a tree (children under the version they were fine-tuned from); bold = in use."""
        self.versions = list(versions)
        self.tree.clear()
        by_path: dict[str, QTreeWidgetItem] = {}
        items = []

        def key_of(v: ModelVersion) -> str:
            return str(v.resolve(folder).resolve()) if folder is not None else v.path

        for v in versions:
            miou = v.val_miou
            created = (v.created or "")[:16].replace("T", " ")
            cancelled = getattr(v, "status", "finished") == "cancelled"
            it = QTreeWidgetItem(
                [v.name + (" (cancelled)" if cancelled else ""), created, str(v.data.get("images", "")),
                 f"{100 * miou:.1f}" if miou is not None else "—"]
            )
            it.setData(0, Qt.ItemDataRole.UserRole, v.name)
            it.setToolTip(
                0,
                ("cancelled fine-tune: these are the weights of its last good checkpoint\n" if cancelled else "")
                + f"weights: {v.path}\nparent: {v.parent or '—'}\ndata: {v.data or '—'}",
            )
            if cancelled:
                for c in range(len(self.COLUMNS)):
                    it.setForeground(c, QColor(140, 140, 140))
            if v.name == current:
                f = it.font(0)
                f.setBold(True)
                for c in range(len(self.COLUMNS)):
                    it.setFont(c, f)
            by_path[key_of(v)] = it
            items.append((v, it))
        for v, it in items:
            parent = by_path.get(str(Path(v.parent).resolve())) if v.parent else None
            if parent is not None and parent is not it:
                parent.addChild(it)
            else:
                self.tree.addTopLevelItem(it)
        self.tree.expandAll()
        # Until the user picks A and B: B = the version in use, A = its parent (else the one listed before it).
        names = [v.name for v in versions]
        b = current if current in names else (names[-1] if names else "")
        vb = next((v for v in versions if v.name == b), None)
        parent = next((v.name for v in versions if vb is not None and vb.parent and key_of(v) == str(Path(vb.parent).resolve())), None)
        a = parent or (names[max(names.index(b) - 1, 0)] if b in names else "")
        for combo, default in ((self.combo_a, a), (self.combo_b, b)):
            keep = combo.currentText() if self._user_picked else ""
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            combo.setCurrentText(keep if keep in names else default)
            combo.blockSignals(False)
        self.compare.setEnabled(len(names) >= 1)
