"""Metrics dock: how the current model does on the images the user corrected.

Per-class IoU, mIoU and the confusion matrix (:class:`segstudio.metrics.ConfusionMatrix`) of the model's
predictions against the saved labels, split into images the model (or any model it was fine-tuned from)
trained on, images that selected its checkpoint (validation) and held-out images that neither saw, recognised
by content along the whole lineage, near-duplicates included (:mod:`segstudio.engine.heldout`), so the held-out
numbers are an honest estimate. The held-out and validation figures score only the pixels a person painted or
changed (:func:`segstudio.io.provenance_files.load_human_labels`): a model's prediction accepted unchanged is a training
label, never a grade for that model. Computed in a worker (:func:`evaluate_corrected`) after each fine-tune or on
request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from segstudio.core import IGNORE_INDEX, ClassSpec, validate_label_map
from segstudio.engine.heldout import ROLE_HELD_OUT, ROLE_TRAIN, ROLE_VAL, ImageRoles, card_lineage, classify_images
from segstudio.io import label_path_for, read_image, read_index_png
from segstudio.io.provenance_files import load_human_labels
from segstudio.metrics import ConfusionMatrix

log = logging.getLogger(__name__)

SCOPES = ("held-out", "validation", "training", "all")
_SCOPE_ROLE = {"held-out": ROLE_HELD_OUT, "validation": ROLE_VAL, "training": ROLE_TRAIN}
HUMAN_ONLY_SCOPES = ("held-out", "validation")
"""Scopes that grade the model: they count only pixels a person painted or changed."""


def training_roles(card: dict, paths: list[Path], max_depth: int = 32) -> dict[Path, str]:
    """Which of ``paths`` the model behind ``card`` (or any model it was fine-tuned from) has seen.

    By image content (SHA-1 recorded in the cards), so a copied or moved training image is still a training
    image; see :func:`segstudio.engine.heldout.image_roles`.

    Returns:
        ``{path: role}`` with role :data:`ROLE_TRAIN`, :data:`ROLE_VAL` (picked a checkpoint) or
        :data:`ROLE_HELD_OUT` (seen by neither training nor checkpoint selection).
    """
    return training_roles_report(card, paths, max_depth).roles


def training_roles_report(card: dict, paths: list[Path], max_depth: int = 32) -> ImageRoles:
    """:func:`training_roles` with the images recognised only as near-duplicates named
    (:func:`segstudio.engine.heldout.classify_images`)."""
    return classify_images(card_lineage(card, max_depth), paths)


@dataclass
class CorrectedEval:
    """Result of :func:`evaluate_corrected`.

    Attributes:
        classes: class names (K).
        per_image: ``{path: ConfusionMatrix}`` of each image with saved labels, over all its saved pixels.
        per_image_human: ``{path: ConfusionMatrix}`` over the pixels a person painted or changed only
            (:func:`segstudio.io.provenance_files.load_human_labels`): what the held-out and validation scopes score.
        roles: ``{path: role}`` (see :func:`training_roles`).
        near_duplicates: ``{path: Hamming distance}``: images that are training or validation images only by
            their perceptual key (a mirrored, re-encoded or resized copy), so not held out.
        model_name: display name of the evaluated model.
    """

    classes: list[str]
    per_image: dict[Path, ConfusionMatrix] = field(default_factory=dict)
    per_image_human: dict[Path, ConfusionMatrix] = field(default_factory=dict)
    roles: dict[Path, str] = field(default_factory=dict)
    near_duplicates: dict[Path, int] = field(default_factory=dict)
    model_name: str = ""

    def _in(self, p: Path, scope: str) -> bool:
        return scope == "all" or self.roles.get(p, ROLE_HELD_OUT) == _SCOPE_ROLE[scope]

    def matrix(self, scope: str = "all") -> ConfusionMatrix:
        """Summed confusion matrix over ``scope``: ``"held-out"`` (seen by neither training nor checkpoint
        selection: the honest estimate), ``"validation"`` (picked the checkpoint), ``"training"`` or ``"all"``.
        The held-out and validation scopes (:data:`HUMAN_ONLY_SCOPES`) count only the pixels a person painted or
        changed; training and all count every saved pixel."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        cm = ConfusionMatrix(len(self.classes))
        for p in self.per_image:
            m = self.image_matrix(p, scope)
            if m is not None and self._in(p, scope):
                cm.merge(m)
        return cm

    def image_matrix(self, path: Path, scope: str | None = None) -> ConfusionMatrix | None:
        """Confusion matrix of one image as ``scope`` scores it (default: the scope of the image's role): the
        person-labelled pixels in :data:`HUMAN_ONLY_SCOPES`, every saved pixel otherwise; ``None`` if not evaluated."""
        if scope is None:
            scope = next(s for s, role in _SCOPE_ROLE.items() if role == self.roles.get(path, ROLE_HELD_OUT))
        return (self.per_image_human if scope in HUMAN_ONLY_SCOPES else self.per_image).get(path)

    def scored_pixels(self, scope: str) -> int:
        """Pixels :meth:`matrix` counts for ``scope`` (person-labelled ones only in :data:`HUMAN_ONLY_SCOPES`)."""
        return int(self.matrix(scope).mat.sum())

    def count(self, scope: str) -> int:
        """Number of images in ``scope``."""
        if scope == "all":
            return len(self.per_image)
        return sum(self.roles.get(p, ROLE_HELD_OUT) == _SCOPE_ROLE[scope] for p in self.per_image)


def evaluate_corrected(
    predictor, paths: list[Path], classes: ClassSpec, card: dict, job=None, images: dict | None = None, lut: np.ndarray | None = None
) -> CorrectedEval:
    """Predict every image of ``paths`` that has saved labels and compare (worker-thread function).

    Args:
        predictor: :class:`segstudio.engine.Predictor` of the model to evaluate.
        paths: the folder's images; those without ``labels/<stem>.png`` are skipped.
        classes: the project's classes (K must equal the model's).
        card: the model's card (for :func:`training_roles`).
        job: optional :class:`~segstudio.gui.workers.Job` for progress and cancel.
        images: optional ``{path: uint8 (H, W, 3)}`` already in memory.
        lut: optional uint8 (256,) model class id → project class id (the project's class mapping, through its
            renames: :meth:`~segstudio.gui.state.ProjectState.model_lut`); without it the ids must agree. A pixel
            predicted as a class the project lacks counts as a miss of its true class (scored as the next class).
    Raises:
        ValueError: without ``lut``, the model predicts a different number of classes than the project has.
    """
    if lut is None and predictor.classes.num_classes != classes.num_classes:
        raise ValueError(
            f"the model predicts {predictor.classes.num_classes} classes but the project has {classes.num_classes}; fine-tune first"
        )
    labelled = [p for p in paths if label_path_for(p).is_file()]
    report = training_roles_report(card, labelled)
    out = CorrectedEval(list(classes.names), roles=report.roles, near_duplicates=report.near_duplicates,
                        model_name=card.get("name", ""))
    for i, p in enumerate(labelled):
        if job is not None:
            job.cancel_token.check()
            job.report(i, len(labelled), f"metrics: {p.name} ({i + 1}/{len(labelled)})")
        image = (images or {}).get(p)
        if image is None:
            image = read_image(p)
        target = validate_label_map(read_index_png(label_path_for(p)), classes.num_classes, image.shape[:2])
        try:
            human = load_human_labels(p, target)
        except (ValueError, OSError) as exc:  # unknown origin: not a grade (training figures still use it)
            log.warning("provenance of %s not usable (%s): none of its pixels is scored as held-out or validation", p.name, exc)
            human = np.full_like(target, IGNORE_INDEX)
        pred = predictor.predict(image)
        if lut is not None:
            pred = lut[pred]
            lost = pred == IGNORE_INDEX  # a class the project lacks (deleted): never right, a miss of the true class
            pred[lost] = (target[lost].astype(np.int64) + 1) % max(classes.num_classes, 1) if classes.num_classes > 1 else 0
        cm, cm_human = ConfusionMatrix(classes.num_classes), ConfusionMatrix(classes.num_classes)
        cm.update(target, pred)
        cm_human.update(human, pred)
        out.per_image[p] = cm
        out.per_image_human[p] = cm_human
    if job is not None:
        job.report(len(labelled), len(labelled), f"metrics on {len(labelled)} corrected image(s)")
    return out


def _pct(x: float | None) -> str:
    return "–" if x is None or x != x else f"{100 * x:.1f}"


class MetricsDock(QWidget):
    """mIoU summary, per-class IoU table, confusion-matrix heat-map and per-image table.

    Signals:
        recomputeRequested()
        imageActivated(Path): a row of the per-image table was double-clicked.
    """

    recomputeRequested = Signal()
    imageActivated = Signal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.result: CorrectedEval | None = None
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.scope = QComboBox()
        self.scope.addItems(SCOPES)
        self.scope.setToolTip("Which corrected images the table and the confusion matrix use")
        self.scope.currentTextChanged.connect(lambda _: self._show())
        row.addWidget(QLabel("Images"))
        row.addWidget(self.scope, 1)
        self.recompute = QPushButton("Recompute")
        self.recompute.clicked.connect(self.recomputeRequested)
        row.addWidget(self.recompute)
        lay.addLayout(row)
        self.summary = QLabel("Save corrected labels, then fine-tune or press Recompute.")
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)

        split = QSplitter(Qt.Orientation.Vertical)
        self.class_table = QTableWidget(0, 3)
        self.class_table.setHorizontalHeaderLabels(["class", "IoU %", "pixels"])
        self.class_table.verticalHeader().hide()
        self.class_table.horizontalHeader().setStretchLastSection(True)
        self.class_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        split.addWidget(self.class_table)
        self.cm_plot = pg.PlotWidget()
        self.cm_plot.setTitle("confusion matrix (row-normalised: true → predicted)")
        self.cm_plot.setLabel("left", "true")
        self.cm_plot.setLabel("bottom", "predicted")
        self.cm_plot.invertY(True)
        self.cm_plot.setAspectLocked(True)
        self.cm_plot.setMouseEnabled(False, False)
        self.cm_image = pg.ImageItem(axisOrder="row-major")
        cmap = pg.colormap.get("viridis")
        self.cm_image.setColorMap(cmap)
        self.cm_plot.addItem(self.cm_image)
        self.cm_bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=cmap, interactive=False, width=12)
        self.cm_bar.setImageItem(self.cm_image, insert_in=self.cm_plot.getPlotItem())
        self.cm_plot.setMinimumHeight(220)
        split.addWidget(self.cm_plot)
        self.image_table = QTableWidget(0, 3)
        self.image_table.setHorizontalHeaderLabels(["image", "role", "mIoU %"])
        self.image_table.verticalHeader().hide()
        self.image_table.horizontalHeader().setStretchLastSection(True)
        self.image_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.image_table.cellDoubleClicked.connect(self._on_image_row)
        split.addWidget(self.image_table)
        lay.addWidget(split, 1)

    def clear(self, text: str = "Save corrected labels, then fine-tune or press Recompute.") -> None:
        """Forget the shown result (another folder was opened): empty tables, no matrix, no class axes."""
        self.result = None
        self.summary.setText(text)
        self._clear_views("confusion matrix (row-normalised: true → predicted)")

    def _clear_views(self, title: str) -> None:
        self.class_table.setRowCount(0)
        self.image_table.setRowCount(0)
        self.cm_image.clear()
        for axis in ("bottom", "left"):
            self.cm_plot.getAxis(axis).setTicks([[]])
        self.cm_plot.setTitle(title)

    def set_busy(self, busy: bool, text: str = "") -> None:
        """Disable Recompute while a metrics job runs; ``text`` replaces the summary line."""
        self.recompute.setEnabled(not busy)
        if text:
            self.summary.setText(text)

    def set_result(self, result: CorrectedEval) -> None:
        """Show a new :class:`CorrectedEval`."""
        self.result = result
        if result.count(self.scope.currentText()) == 0:  # e.g. nothing held out yet: show what there is
            for s in SCOPES:
                if result.count(s):
                    self.scope.setCurrentText(s)
                    break
        self._show()

    def _show(self) -> None:
        r = self.result
        if r is None:
            return
        if not r.per_image:
            self.summary.setText("No corrected images yet: save labels (Ctrl+S) to measure the model on them.")
            self.class_table.setRowCount(0)
            self.image_table.setRowCount(0)
            self.cm_image.clear()
            return
        parts = []
        for s in ("held-out", "validation", "training"):
            n = r.count(s)
            if n:
                imgs = f"{n} image{'s' if n > 1 else ''}"
                if s in HUMAN_ONLY_SCOPES:
                    imgs += f", {r.scored_pixels(s):,} person-labelled pixels"
                parts.append(f"{s} mIoU {_pct(r.matrix(s).miou)} % ({imgs})")
        none_held_out = "" if r.count("held-out") else (
            "No held-out image: every corrected image trained this model or was set aside for its validation, so "
            "these figures do not estimate how it does on new images. Label an image it has not seen to measure that.<br>"
        )
        text = none_held_out + f"<b>{r.model_name}</b>: " + " · ".join(parts)
        if r.near_duplicates:
            k = len(r.near_duplicates)
            text += (f"<br>{k} image{'s' if k > 1 else ''} not held out: near-duplicate{'s' if k > 1 else ''} (mirrored, "
                     "re-encoded or resized copies) of images a model of this lineage trained or selected on")
        self.summary.setText(text)
        scope = self.scope.currentText()
        if not r.count(scope):
            self._clear_views(f"no {scope} images")
            return
        cm = r.matrix(scope)
        iou, support = cm.iou, cm.support
        if scope in HUMAN_ONLY_SCOPES:  # say what was scored
            self.class_table.setHorizontalHeaderLabels(["class", "IoU %", "person-labelled pixels"])
        else:
            self.class_table.setHorizontalHeaderLabels(["class", "IoU %", "pixels"])
        self.class_table.setRowCount(len(r.classes))
        for i, name in enumerate(r.classes):
            for j, text in enumerate((name, _pct(iou[i]), str(int(support[i])))):
                it = QTableWidgetItem(text)
                if j:
                    it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.class_table.setItem(i, j, it)
        self.class_table.resizeColumnsToContents()
        # Row-normalised matrix: each true class's pixels split over the predicted classes.
        mat = cm.mat.astype(np.float64)
        rows = mat.sum(1, keepdims=True)
        norm = np.divide(mat, rows, out=np.zeros_like(mat), where=rows > 0)
        self.cm_image.setImage(norm, levels=(0.0, 1.0))
        # Left axis: "1 Sky"...; bottom axis: the numbers only (names would overlap), as in the class legend.
        self.cm_plot.getAxis("bottom").setTicks([[(i + 0.5, str(i + 1)) for i in range(len(r.classes))]])
        self.cm_plot.getAxis("left").setTicks([[(i + 0.5, f"{i + 1} {n}") for i, n in enumerate(r.classes)]])
        k = len(r.classes)
        self.cm_plot.setRange(xRange=(0, k), yRange=(0, k), padding=0.02)
        self.cm_plot.setTitle(f"confusion matrix, {scope} images (row-normalised: true → predicted)")
        self.image_table.setRowCount(len(r.per_image))
        for i, p in enumerate(sorted(r.per_image, key=lambda q: q.name)):
            role = r.roles.get(p, ROLE_HELD_OUT)
            if p in r.near_duplicates:
                role += " (near-duplicate)"
            m = r.image_matrix(p)  # held-out / validation rows: person-labelled pixels only
            for j, text in enumerate((p.name, role, _pct(m.miou if m is not None else None))):
                it = QTableWidgetItem(text)
                it.setData(Qt.ItemDataRole.UserRole, p)
                if role.startswith(ROLE_TRAIN):
                    it.setForeground(QColor(120, 120, 120))
                self.image_table.setItem(i, j, it)
        self.image_table.resizeColumnsToContents()

    def _on_image_row(self, row: int, _col: int) -> None:
        it = self.image_table.item(row, 0)
        if it is not None:
            self.imageActivated.emit(it.data(Qt.ItemDataRole.UserRole))
