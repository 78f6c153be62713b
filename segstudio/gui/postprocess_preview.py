"""Post-processing in the labelling loop: DenseCRF / morphology as a preview the user accepts or discards.

The refinement itself is :func:`segstudio.postprocess.refine` (model probabilities → CRF → argmax →
morphology) or :func:`segstudio.postprocess.apply_morphology` (the current, possibly corrected, label map
→ morphology); it runs in a worker job. The result is drawn as a second label overlay above the document's;
Accept writes it into the :class:`~segstudio.core.Document` as ONE undo step (a patch over the changed
box), Discard just removes the preview.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.history import make_patch
from segstudio.core.provenance import PROV_CRF
from segstudio.gui.overlay import LabelOverlayItem
from segstudio.gui.relay import on_gui
from segstudio.gui.workers import Job
from segstudio.postprocess import CRFParams, MorphParams, apply_morphology, refine

log = logging.getLogger(__name__)

SOURCE_PREDICTION = "Model probabilities (CRF + morphology)"
SOURCE_LABELS = "Current labels (morphology only)"


class PostprocessPanel(QWidget):
    """Options + Preview / Accept / Discard buttons.

    Signals: previewRequested(), acceptRequested(), discardRequested().
    """

    previewRequested = Signal()
    acceptRequested = Signal()
    discardRequested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        self.source = QComboBox()
        self.source.addItems([SOURCE_PREDICTION, SOURCE_LABELS])
        self.source.currentTextChanged.connect(self._sync)
        lay.addWidget(self.source)
        d = CRFParams()
        self.crf_box = QGroupBox("Dense CRF (Krähenbühl && Koltun 2011)")  # && : a literal & (not a mnemonic)
        self.crf_box.setCheckable(True)
        self.crf_box.setChecked(True)
        f = QFormLayout(self.crf_box)
        self.iterations = QSpinBox()
        self.iterations.setRange(1, 50)
        self.iterations.setValue(d.iterations)
        f.addRow("Iterations", self.iterations)
        self.bi_w = QDoubleSpinBox()
        self.bi_w.setRange(0.0, 50.0)
        self.bi_w.setValue(d.bi_w)
        f.addRow("Bilateral weight", self.bi_w)
        self.bi_xy_std = QDoubleSpinBox()
        self.bi_xy_std.setRange(1.0, 500.0)
        self.bi_xy_std.setValue(d.bi_xy_std)
        f.addRow("Bilateral xy σ (px)", self.bi_xy_std)
        self.bi_rgb_std = QDoubleSpinBox()
        self.bi_rgb_std.setRange(0.5, 100.0)
        self.bi_rgb_std.setValue(d.bi_rgb_std)
        f.addRow("Bilateral rgb σ", self.bi_rgb_std)
        lay.addWidget(self.crf_box)
        morph = QGroupBox("Morphology (per class)")
        g = QFormLayout(morph)
        self.open_size, self.close_size, self.min_area, self.fill_holes = (QSpinBox() for _ in range(4))
        for sb, label, rng, val in (
            (self.open_size, "Opening (px, 0 = off)", 99, 0),
            (self.close_size, "Closing (px, 0 = off)", 99, 0),
            (self.min_area, "Remove regions < (px²)", 10_000_000, 64),
            (self.fill_holes, "Fill holes ≤ (px²)", 10_000_000, 0),
        ):
            sb.setRange(0, rng)
            sb.setValue(val)
            g.addRow(label, sb)
        lay.addWidget(morph)
        row = QHBoxLayout()
        self.preview = QPushButton("Preview")
        self.accept = QPushButton("Accept")
        self.discard = QPushButton("Discard")
        self.preview.clicked.connect(self.previewRequested)
        self.accept.clicked.connect(self.acceptRequested)
        self.discard.clicked.connect(self.discardRequested)
        for b in (self.preview, self.accept, self.discard):
            row.addWidget(b)
        lay.addLayout(row)
        self.status = QLabel("Preview a refinement; Accept applies it as one undo step (Ctrl+Z undoes it).")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.show_diff = QCheckBox("Show only the preview (hide current labels)")
        self.show_diff.setChecked(True)
        lay.addWidget(self.show_diff)
        lay.addStretch(1)
        self.set_has_preview(False)

    def _sync(self) -> None:
        self.crf_box.setEnabled(self.source.currentText() == SOURCE_PREDICTION)

    def set_has_preview(self, on: bool) -> None:
        """Accept / Discard are enabled only while a preview is shown."""
        self.accept.setEnabled(on)
        self.discard.setEnabled(on)

    def crf_params(self) -> CRFParams | None:
        """The CRF settings, or None when the CRF is off or the source is the current labels."""
        if self.source.currentText() != SOURCE_PREDICTION or not self.crf_box.isChecked():
            return None
        return CRFParams(
            iterations=self.iterations.value(),
            bi_w=self.bi_w.value(),
            bi_xy_std=self.bi_xy_std.value(),
            bi_rgb_std=self.bi_rgb_std.value(),
        )

    def morph_params(self) -> MorphParams:
        """The morphology settings as :class:`~segstudio.postprocess.MorphParams` (0 = step off)."""
        return MorphParams(
            open=self.open_size.value(),
            close=self.close_size.value(),
            min_area=self.min_area.value(),
            fill_holes=self.fill_holes.value(),
        )


class PostprocessPreview(QObject):
    """Runs refinements for the project's current document and manages the preview overlay on the canvas.

    Args:
        state: the :class:`~segstudio.gui.state.ProjectState` (current document, predictor, job runner).
        canvas: the :class:`~segstudio.gui.canvas.Canvas` the preview is drawn on (its overlay is hidden while a
            difference-only preview shows).
        panel: its :class:`PostprocessPanel`.
        parent: the QObject owning this controller.
    Attributes:
        preview: uint8 (H, W) label map being previewed, or None.
        job: the running refinement job, or None.
    Signals:
        previewReady(): a preview is shown. applied(): a preview was accepted.
    """

    previewReady = Signal()
    applied = Signal()
    MAX_CRF_PIXELS = 2048 * 2048  # whole-image probabilities + dense CRF above this would need several GB

    def __init__(self, state, canvas, panel: PostprocessPanel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state, self.canvas, self.panel = state, canvas, panel
        self.item = LabelOverlayItem()
        self.item.setZValue(4)
        self.item.hide()
        canvas.scene().addItem(self.item)
        self.preview: np.ndarray | None = None
        self._doc = None
        self.job: Job | None = None
        panel.previewRequested.connect(self.run)
        panel.acceptRequested.connect(self.accept)
        panel.discardRequested.connect(self.discard)
        panel.show_diff.toggled.connect(lambda _: self._sync_overlay())
        canvas.opacityChanged.connect(self.item.setOpacity)

    def run(self) -> bool:
        """Start computing the preview of the current document in a worker; False if nothing to do."""
        doc = self.state.current_doc()
        if doc is None or self.job is not None:
            return False
        crf, morph = self.panel.crf_params(), self.panel.morph_params()
        use_model = self.panel.source.currentText() == SOURCE_PREDICTION
        predictor = self.state.predictor
        if use_model and predictor is None:
            self.panel.status.setText("No model loaded: choose 'Current labels' or load a model.")
            return False
        if use_model and predictor.classes.num_classes != doc.classes.num_classes:
            self.panel.status.setText("The model's classes differ from the project's: fine-tune first, or refine the current labels.")
            return False
        h, w = doc.shape
        if use_model and h * w > self.MAX_CRF_PIXELS:
            self.panel.status.setText(
                f"{w}×{h} is too large for a CRF preview (the K×H×W probabilities and the dense CRF need too much "
                "memory); choose 'Current labels' for morphology, which works at any size."
            )
            return False
        image, labels = doc.image, doc.labels.copy()
        k = doc.classes.num_classes

        def work(job: Job):
            if use_model:
                job.report(0, 2, "refine: predicting probabilities…")
                proba = predictor.predict_proba(image)
                job.cancel_token.check()
                job.report(1, 2, "refine: dense CRF…" if crf is not None else "refine: morphology…")
                return refine(image, proba, crf, morph, num_classes=k)
            job.report(0, 1, "refine: morphology…")
            return apply_morphology(labels, morph, num_classes=k)

        self.discard()
        self._doc = doc
        self.job = Job("refine", work)
        self.job.failed.connect(on_gui(self.panel.status.setText, self))
        self.panel.preview.setEnabled(False)
        # The window's one job runner: a failure also reaches the status bar and the log.
        self.state.start(self.job, "refine", on_finished=self._on_result, on_progress=self._on_progress, on_done=self._on_done)
        return True

    def _on_progress(self, _done: int, _total: int, text: str) -> None:
        self.panel.status.setText(text)

    def _on_done(self) -> None:
        self.job = None
        self.panel.preview.setEnabled(True)

    def _on_result(self, labels: np.ndarray) -> None:
        doc = self.state.current_doc()
        if doc is not self._doc or labels.shape != doc.shape:
            self.panel.status.setText("The image changed while refining; preview dropped.")
            return
        self.preview = labels
        self.item.set_classes(doc.classes)
        self.item.set_labels(labels)
        self.item.setOpacity(self.canvas.overlay.opacity())
        changed = int((labels != doc.labels).sum())
        self.panel.status.setText(
            f"Preview: {changed} pixel(s) ({100 * changed / labels.size:.2f} %) change. Accept or Discard."
        )
        self.panel.set_has_preview(True)
        self._sync_overlay()
        self.previewReady.emit()

    def _sync_overlay(self) -> None:
        on = self.preview is not None
        self.item.setVisible(on)
        self.canvas.overlay.setVisible(self.canvas.overlay_on and not (on and self.panel.show_diff.isChecked()))

    def accept(self) -> bool:
        """Write the preview into the document as one undo step; False when there is no preview."""
        doc = self.state.current_doc()
        if self.preview is None or doc is None or doc is not self._doc:
            self.discard()
            return False
        patch = make_patch(doc.labels, 0, 0, self.preview)
        if patch is not None:
            doc.apply_patch(patch, origin=PROV_CRF)  # provenance: post-processing, not the human; its event repaints
        self.panel.status.setText(
            "Applied: one undo step (Ctrl+Z)." if patch is not None else "Nothing changed: the preview equals the labels."
        )
        self._clear()
        self.applied.emit()
        return patch is not None

    def discard(self) -> None:
        """Drop the preview (the document was never touched)."""
        if self.preview is not None:
            self.panel.status.setText("Preview discarded.")
        self._clear()

    def _clear(self) -> None:
        self.preview = None
        self._doc = None
        self.panel.set_has_preview(False)
        self._sync_overlay()

    def cancel(self) -> None:
        """Cancel a running refinement job (the window is closing)."""
        if self.job is not None:
            self.job.cancel()
